"""Retrieval with the real packaged MiniLM (loaded once per session) on sample_data's FAQ and price
list: index round trips, incremental syncs, repairs, BM25 exact strings, HNSW recall, FAQ fast path."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from kb.errors import ModelMissing
from kb.ingest import ingest
from kb.settings import Settings
from kb.store import Store
from rag.embed import Embedder
from rag.index import VectorIndex
from rag.lexical import Lexical, tokenize
from rag.retrieve import Hit, Retriever

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"

FILES = ("faq.csv", "price_list.md")


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    e = Embedder()
    e.embed(["warm up"])  # loads the model once for the whole session (Embedder caches it per process)
    return e


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in FILES:
        shutil.copy(SAMPLE / name, folder / name)
    return folder


@pytest.fixture
def kb(tmp_path, docs, embedder):
    """A fresh knowledge base of the sample FAQ and price list, indexed."""
    store = Store(tmp_path / "kb")
    assert not [r for r in ingest(store, [str(docs)], Settings()) if r.failed]
    yield store
    store.close()


@pytest.fixture(scope="module")
def indexed_kb_dir(tmp_path_factory, embedder):
    """A closed, indexed knowledge base folder that tests copy before damaging it."""
    folder = tmp_path_factory.mktemp("indexed") / "kb"
    with Store(folder) as store:
        list(ingest(store, [str(SAMPLE / n) for n in FILES], Settings()))
        Retriever(store).sync()
    return folder


@pytest.fixture(scope="module")
def shared_retriever(tmp_path_factory, embedder):
    """One read-only indexed knowledge base for the tests that only search."""
    folder = tmp_path_factory.mktemp("shared")
    store = Store(folder / "kb")
    list(ingest(store, [str(SAMPLE / n) for n in FILES], Settings()))
    retriever = Retriever(store)
    retriever.sync()
    yield retriever
    store.close()


def top_ids(retriever: Retriever, query: str, k: int = 5) -> list[tuple[str, float]]:
    return [(h.chunk.id, round(h.score, 5)) for h in retriever.search(query, k)]


# -- the embedder ------------------------------------------------------------------------------
def test_embedder_gives_normalized_float32_rows(embedder):
    vectors = embedder.embed(["When are you open?", "Opening hours", "How much is clay?"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert embedder.embed([]).shape == (0, 384)


def test_missing_model_folder_says_which_setting_to_fix(kb):
    retriever = Retriever(kb, Settings(embedder_path="/no/such/model"))
    with pytest.raises(ModelMissing, match="embedding model folder /no/such/model does not exist. Fix the 'embedder_path' setting"):
        retriever.search("opening hours")


# -- the persistent index ----------------------------------------------------------------------
def test_index_round_trip_gives_the_same_hits_without_embedding_again(kb):
    first = Retriever(kb)
    assert first.sync() == ["Built the passage index: embedded 67.", "Built the FAQ question index: embedded 53.",
                            "Built the FAQ answer index: embedded 53."]
    query = "how much is a taster session"
    before = top_ids(first, query)

    fresh = Retriever(kb)  # a new process would start like this: everything read from disk
    assert fresh.sync() == []  # nothing embedded, nothing to say
    assert top_ids(fresh, query) == before
    assert fresh.passages.ids == first.passages.ids and np.array_equal(fresh.passages.vectors, first.passages.vectors)


def test_reingest_embeds_only_changed_chunks_and_remove_source_drops_them(kb, docs):
    retriever = Retriever(kb)
    retriever.sync()
    faq = docs / "faq.csv"
    faq.write_text(faq.read_text().replace("Speckled Brown stoneware for $30", "Speckled Brown stoneware for $31"))
    list(ingest(kb, [str(docs)], Settings()))

    report = retriever.passages.sync(kb, retriever.embedder)
    assert (report.added, report.removed, report.rebuilt) == (1, 1, False)
    # The FAQ's chunk id changed with its answer, so its question is embedded again under the new id.
    assert retriever.sync() == ["Updated the FAQ question index: embedded 1 new, removed 1.",
                                "Updated the FAQ answer index: embedded 1 new, removed 1."]
    assert "Speckled Brown stoneware for $31" in retriever.search("Speckled Brown $31", 1)[0].chunk.text

    price_list = str((docs / "price_list.md").resolve())
    n = kb.remove_source(price_list)
    assert retriever.sync() == [f"Updated the passage index: embedded 0 new, removed {n}."]
    assert set(retriever.passages.ids) == kb.chunk_ids()
    assert all(h.chunk.source != price_list for h in retriever.search("price of clay per bag", 10))
    assert Retriever(kb).sync() == []  # the removal was saved


def _tamper_revision_and_ids(index: VectorIndex, kb: Store) -> None:
    """Drop one vector but keep the saved revision: the store 'changed behind its back'."""
    index.remove(index.ids[:1])
    index.save()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda idx, kb: idx.path.unlink(), r"^Built the passage index: embedded 67\.$"),
        (lambda idx, kb: idx.path.write_bytes(b"not a zip"), r"^Rebuilt the passage index because the saved vector index passages.vectors.npz is damaged or not a kbchat index file: embedded 67\.$"),
        (lambda idx, kb: kb.remove_source(next(s.uri for s in kb.sources() if s.uri.endswith("price_list.md"))),
         r"^The saved passage index was older than the knowledge base; updated it: embedded 0 new, removed 14\.$"),
        (_tamper_revision_and_ids, r"^The saved passage index did not match the knowledge base; resynced it: embedded 1 new, removed 0\.$"),
        (lambda idx, kb: (setattr(idx, "model", "another-model"), idx.save()), r"^Rebuilt the passage index because it was built with another embedding model: embedded 67\.$"),
    ],
    ids=["deleted", "corrupt", "store-changed", "same-revision-other-ids", "other-model"],
)
def test_a_saved_index_that_does_not_match_is_fixed_with_a_message(indexed_kb_dir, tmp_path, damage, message):
    shutil.copytree(indexed_kb_dir, tmp_path / "kb")
    kb = Store(tmp_path / "kb")
    index = VectorIndex(kb.dir)
    index.load()
    damage(index, kb)

    retriever = Retriever(kb)
    messages = retriever.sync()
    assert any(re.search(message, m) for m in messages), messages
    assert set(retriever.passages.ids) == {c.id for c in kb.chunks()}
    assert retriever.search("phone number", 1)  # and it works
    kb.close()


# -- BM25 --------------------------------------------------------------------------------------
def test_tokenizer_keeps_prices_numbers_and_phone_numbers():
    assert tokenize("Call (555) 314-2760 for the $1,595 plan, 6 weeks") == [
        "call", "5553142760", "555", "314", "2760", "$1595", "1595", "plan", "6", "week"]
    assert "5553142760" in tokenize("555-314-2760") and "5553142760" in tokenize("+1 555.314.2760")


@pytest.mark.parametrize(
    "query, expected",
    [("(555) 314-2760", "(555) 314-2760"), ("555-314-2760", "(555) 314-2760"), ("$45", "$45"),
     ("hello@copperkilnpottery.com", "hello@copperkilnpottery.com"), ("Millbrook Buff", "Millbrook Buff")],
)
def test_exact_strings_are_found_by_bm25_and_by_hybrid_search(shared_retriever, query, expected):
    assert expected in shared_retriever.search(query, 1, mode="lexical")[0].chunk.text
    hits = shared_retriever.search(query, 3)
    assert any(expected in h.chunk.text for h in hits)


def test_bm25_over_nothing_or_unknown_words_finds_nothing():
    assert Lexical([]).search("anything", 5) == []
    assert Lexical([]).scores("anything").shape == (0,)


# -- hybrid search -----------------------------------------------------------------------------
def test_search_returns_hits_with_both_scores(shared_retriever):
    hits = shared_retriever.search("How much does the beginner wheel-throwing course cost?", 3)
    assert len(hits) == 3 and all(isinstance(h, Hit) for h in hits)
    assert hits[0].chunk.faq and hits[0].chunk.faq.question == "How much does the beginner wheel-throwing course cost?"
    assert all(h.dense is not None and h.lexical is not None for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].dense <= hits[0].score <= hits[0].dense + shared_retriever.lexical_weight + 1e-6
    assert shared_retriever.search("   ", 3) == []


# -- HNSW --------------------------------------------------------------------------------------
def test_hnsw_recall_against_exact_search_and_deletes(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3000, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"c{i}" for i in range(len(vectors))]
    exact = VectorIndex(tmp_path / "exact", hnsw_threshold=10**9)
    hnsw = VectorIndex(tmp_path / "hnsw", hnsw_threshold=1000)
    exact.add(ids, vectors)
    hnsw.add(ids, vectors)
    assert (exact.kind, hnsw.kind) == ("flat", "hnsw")
    queries = rng.normal(size=(50, 384)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    def recall(a: VectorIndex, b: VectorIndex) -> float:
        return float(np.mean([len({c for c, _ in a.search(q, 10)} & {c for c, _ in b.search(q, 10)}) / 10 for q in queries]))

    assert recall(exact, hnsw) >= 0.9
    # HNSW cannot delete: removed chunks must still never come back in results.
    for index in (exact, hnsw):
        index.remove(ids[:300])
    assert not {c for q in queries for c, _ in hnsw.search(q, 10)} & set(ids[:300])
    assert recall(exact, hnsw) >= 0.9
    for index in (exact, hnsw):  # deleted and added back: live again, and only once
        index.add(ids[:10], vectors[:10])
    found = [c for c, _ in hnsw.search(vectors[0], 5)]
    assert found[0] == "c0" and len(set(found)) == len(found)
    hnsw.save()
    reloaded = VectorIndex(tmp_path / "hnsw", hnsw_threshold=1000)
    assert reloaded.load() == "" and len(reloaded) == 2710
    assert recall(exact, reloaded) >= 0.9 and reloaded.search(queries[0], 5) == hnsw.search(queries[0], 5)


def test_retriever_over_hnsw_finds_what_exact_search_finds(indexed_kb_dir, tmp_path):
    shutil.copytree(indexed_kb_dir, tmp_path / "kb")
    with Store(tmp_path / "kb") as kb:
        exact, hnsw = Retriever(kb), Retriever(kb, hnsw_threshold=10)
        assert hnsw.sync() == []  # same vectors, only the search structure differs: nothing to embed
        assert hnsw.passages.kind == "hnsw" and exact.passages.kind == "flat"
        for query in ("how much is a taster session", "can I bring my own clay", "phone number"):
            assert [h.chunk.id for h in hnsw.search(query, 3)] == [h.chunk.id for h in exact.search(query, 3)]


# -- the FAQ fast path -------------------------------------------------------------------------
def test_faq_fast_path_matches_a_reworded_question(shared_retriever):
    chunk, score = shared_retriever.match_faq("what are your hours")
    assert chunk.faq.question == "What are your opening hours?"
    answer = shared_retriever.faq_answer("do you sell gift cards at all?")
    assert answer and answer[0].faq.question == "Do you sell gift cards?" and answer[1] >= shared_retriever.faq_threshold


def test_faq_match_weighs_the_curated_answer_too(shared_retriever):
    question = "Can I pay with a credit card?"
    # The curated question alone points at the wrong FAQ...
    nearest_question = shared_retriever.faqs.search(shared_retriever.query_vector(question), 1)[0][0]
    assert shared_retriever.store.get_chunks([nearest_question])[0].faq.question == "Can I get cash back for a gift card?"
    # ...the answer that lists the cards taken decides.
    chunk, _ = shared_retriever.match_faq(question)
    assert chunk.faq.question == "What payment methods do you accept?"
    fast = shared_retriever.faq_answer("do you have any pottery classes for kids?")
    assert fast and fast[0].faq.question == "Do you have pottery classes for kids?"
    # Issue 15: a different question that only looks alike gets no curated answer word for word
    # (whether a kid will enjoy it is not what the curated answer says).
    assert shared_retriever.faq_answer("will my kid enjoy the clay club") is None


def test_faq_fast_path_gives_a_low_score_to_an_unrelated_question(shared_retriever):
    chunk, score = shared_retriever.match_faq("Can you recommend a good dentist?")
    assert score < 0.5
    assert shared_retriever.faq_answer("Can you recommend a good dentist?") is None


def test_status_says_whether_the_saved_index_matches_the_knowledge_base(kb, docs):
    fresh = Retriever(kb).status()  # nothing indexed yet: read from disk, no model needed
    assert not fresh["up_to_date"] and fresh["passages"] == 0 and fresh["want_passages"] == len(kb.chunks())
    retriever = Retriever(kb)
    retriever.sync()
    synced = retriever.status()
    assert synced["up_to_date"] and synced["passages"] == len(kb.chunks()) and synced["faqs"] == synced["want_faqs"]
    assert Retriever(kb).status()["up_to_date"]  # another process sees the saved index as current too


def test_only_quoted_values_count_as_numbers_to_look_up():
    from rag.retrieve import lookup_values

    # prices, phone and order numbers, times: the customer looks that value up (phones whole, as rag.facts keys them)
    assert lookup_values("Is the Speckled Brown $31 now?") == {"31"}
    assert lookup_values("I called (555) 314-2760 about order 4471") == {"5553142760", "4471"}
    assert lookup_values("Is it $1,200 or less?") == {"1200"}
    # small counts describe the customer: every passage with a 9 or a 3 is not therefore about them
    assert lookup_values("My 9 year old wants to join; can she miss week 3?") == set()


def test_fast_search_embeds_in_bfloat16_only_where_the_cpu_has_it_and_ranks_as_float32(embedder, shared_retriever):
    """The fast_search setting (on by default) runs the search model in bfloat16 on a CPU with
    bfloat16 instructions: the vectors stay within a hair of float32's, so the same passages win.
    Off, or on a CPU without them, the vectors are float32's exactly."""
    from rag.embed import BATCH_SIZE, cpu_has_bf16

    texts = [c.text for c in shared_retriever.store.chunks()]
    questions = ["How much is the beginner wheel-throwing course?", "Do you sell gift cards?",
                 "When can I pick up my fired pieces?", "Can I bring my own clay?"]
    exact = Embedder(Settings(fast_search=False))
    fast = Embedder(Settings(fast_search=True))
    assert not exact.bf16 and fast.bf16 == cpu_has_bf16()
    p32, q32 = exact.embed(texts), exact.embed(questions)
    assert np.array_equal(p32, embedder.model.encode(texts, batch_size=BATCH_SIZE, normalize_embeddings=True,
                                                                convert_to_numpy=True))
    p16, q16 = fast.embed(texts), fast.embed(questions)
    assert np.array_equal(p16, p32) != fast.bf16  # bfloat16 did run where the CPU has it
    assert p16.dtype == np.float32 and p16.shape == p32.shape
    assert np.allclose(np.linalg.norm(p16, axis=1), 1.0, atol=1e-3)
    assert np.abs(q16 @ p16.T - q32 @ p32.T).max() < 0.02
    assert list((q16 @ p16.T).argmax(1)) == list((q32 @ p32.T).argmax(1))

