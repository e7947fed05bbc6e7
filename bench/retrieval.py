"""Retrieval benchmark: quality of dense / BM25 / fused search, the FAQ threshold, and latency.

    .venv/bin/python bench/retrieval.py            # full: 10k and 100k chunk knowledge bases
    .venv/bin/python bench/retrieval.py --quick    # a smoke run: 2k chunks, fewer queries
    .venv/bin/python bench/retrieval.py --quick --rules   # also each FAQ field rule at each exact-word weight
    .venv/bin/python bench/retrieval.py --quick --rescore # also the answer writer re-scoring close passages
    .venv/bin/python bench/retrieval.py --precision       # only: search vectors in bfloat16 against float32
    .venv/bin/python bench/retrieval.py --expand          # only: passages also found by questions the writer wrote for them

Every figure is printed with its ratio to a baseline from the same run: kbchat's hit@1 against the
better of two plain cosine rankings, search p50 against the 20 ms goal, embedding throughput against
the 90 sentences/s measured on 2 cores (shared/MODELS.md).

Ranking sets, each searched by kbchat (`Retriever.search`), and by plain cosine over every passage
with each FAQ entry as indexed (its question and answer) or by its question alone:
  * sample_data/eval_questions.jsonl: sample_data ingested as a user would; a question with a
    `faq_question` is right when that FAQ's entry is found; a document question (`source`) when a
    passage holding one of its `expected` strings is.
  * ../shared/data/covidqa_question_similarity_en.csv: question_1 of the similar==1 rows become FAQ
    entries (question only); question_2 is the query; right when its question_1 is found.
  * bench/businesses/groomer and bikeshop (written apart from the sample): each in-scope question is
    right when a passage holding one of its `expected` strings is found.

Synthetic knowledge bases for latency: chunk texts are generated business sentences, each with a
unique reference so every chunk differs. Embedding 100k chunks with MiniLM takes ~20 min on 2 cores,
so only a pool of distinct base sentences is embedded with the real model; each chunk's vector is
its base sentence's vector plus small Gaussian noise, re-normalized. Queries are embedded for real.
The index structure (flat below 20k vectors, HNSW above), BM25 corpus size and the per-query work
are those of a real knowledge base of that size.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kb.ingest import ingest  # noqa: E402
from kb.records import Chunk, FaqPair, Source, chunk_id, question_key  # noqa: E402
from kb.settings import Settings  # noqa: E402
from kb.store import Store, now_iso  # noqa: E402
from rag.embed import Embedder  # noqa: E402
from rag.retrieve import Retriever  # noqa: E402

SAMPLE = ROOT / "sample_data"
COVIDQA = ROOT.parent / "shared" / "data" / "covidqa_question_similarity_en.csv"
BUSINESSES = ROOT / "bench" / "businesses"
SEARCH_GOAL_MS = 20.0
BASELINE_EMBED_PER_S = 90.0  # shared/MODELS.md, short questions, 2 cores


# -- quality -----------------------------------------------------------------------------------
def sample_store(folder: Path) -> Store:
    store = Store(folder)
    failed = [r for r in ingest(store, [str(SAMPLE)], Settings()) if r.failed]
    if failed:
        raise SystemExit(f"sample_data did not ingest: {[(r.target, r.reason) for r in failed]}")
    return store


def eval_rows() -> list[dict]:
    return [json.loads(line) for line in (SAMPLE / "eval_questions.jsonl").read_text().splitlines() if line.strip()]


def covidqa_store(folder: Path) -> tuple[Store, list[tuple[str, str]]]:
    with open(COVIDQA, newline="", encoding="utf-8") as f:
        pairs = [(r["question_2"], r["question_1"]) for r in csv.DictReader(f) if r["similar"].strip() == "1"]
    questions = list(dict.fromkeys(q1 for _, q1 in pairs))
    seen: dict[str, int] = {}
    chunks = [Chunk(chunk_id("covidqa", q, seen), "covidqa", f"row {i}", q, FaqPair(q, "", f"row {i}")) for i, q in enumerate(questions)]
    store = Store(folder)
    store.replace_source(Source("covidqa", "faq", "covidqa", "-", 0, now_iso()), chunks)
    return store, pairs


def business_store(name: str, folder: Path) -> tuple[Store, list[dict]]:
    """A business of bench/businesses (written apart from the sample) and its in-scope questions."""
    store = Store(folder)
    failed = [r for r in ingest(store, [str(BUSINESSES / name)], Settings()) if r.failed]
    if failed:
        raise SystemExit(f"{name} did not ingest: {[(r.target, r.reason) for r in failed]}")
    rows = [json.loads(line) for line in (BUSINESSES / name / "questions.jsonl").read_text().splitlines() if line.strip()]
    return store, [r for r in rows if r.get("in_scope", True) and r.get("expected")]


def ranked(retriever: Retriever, query: str, rule: str, k: int = 5) -> list[Chunk]:
    """The top k passages by kbchat's search, or by a plain cosine over every passage: with each FAQ
    entry as indexed (its question and answer: "pair") or by its question alone ("question");
    documents by their text. "faq mean": the FAQ entries alone, no document passage, each by the
    mean of its question's, answer's and pair's cosines (the fast path's match)."""
    if rule == "kbchat":
        return [h.chunk for h in retriever.search(query, k)]
    chunks = retriever.store.chunks()
    qvec = retriever.query_vector(query)
    scores = retriever.passages.scores(qvec, [c.id for c in chunks])
    if rule == "question":
        faq = [i for i, c in enumerate(chunks) if c.faq]
        for i, s in zip(faq, retriever.faqs.scores(qvec, [chunks[i].id for i in faq])):
            scores[i] = s
    if rule == "faq mean":  # the FAQ entries alone, each by the fast path's match score
        chunks = [c for c in chunks if c.faq]
        scores = retriever.faq_scores(qvec, [c.id for c in chunks])
    order = sorted(range(len(chunks)), key=lambda i: -(scores[i] if scores[i] is not None else -9))
    return [chunks[i] for i in order[:k]]


def rank_figures(retriever: Retriever, cases: list[tuple[str, Callable[[Chunk], bool]]], rule: str) -> tuple[float, float, float]:
    """hit@1, hit@5 and MRR: the rank of the first passage `right` accepts."""
    ranks = [next((n for n, c in enumerate(ranked(retriever, query, rule), start=1) if right(c)), None)
             for query, right in cases]
    n = len(ranks)
    return sum(r == 1 for r in ranks) / n, sum(r is not None for r in ranks) / n, sum(1 / r for r in ranks if r) / n


def read_share(retriever: Retriever, cases: list[tuple[str, Callable[[Chunk], bool]]]) -> float:
    """The share of questions whose right passage is among those the writer reads: kbchat's top_k,
    kept within passage_margin of the best (rag.retrieve.close_to_best), as a written answer reads them."""
    from rag.retrieve import close_to_best

    answers = retriever.settings.answers
    return sum(any(right(h.chunk) for h in close_to_best(retriever.search(query, answers.top_k), answers.passage_margin))
               for query, right in cases) / len(cases)


def holds(expected: list[str]) -> Callable[[Chunk], bool]:
    return lambda c: any(e.lower() in c.text.lower() for e in expected)


def is_faq(question: str) -> Callable[[Chunk], bool]:
    return lambda c: bool(c.faq) and question_key(c.faq.question) == question_key(question)


def ranking_sets(tmp: Path, settings: Settings | None = None) -> list[tuple[str, Retriever, list[tuple[str, Callable[[Chunk], bool]]]]]:
    """(name, its retriever with the index built, its cases) for each ranking set, in knowledge
    bases under `tmp`, searched with `settings` (None: each knowledge base's own, the defaults)."""
    rows = eval_rows()

    def synced(store: Store) -> Retriever:
        retriever = Retriever(store, settings)
        retriever.sync()
        return retriever

    sample = synced(sample_store(tmp / "sample"))
    store, covid_pairs = covidqa_store(tmp / "covidqa")
    covid = synced(store)
    sets = [
        (f"sample, reworded FAQ questions -> that FAQ (n={sum('faq_question' in r for r in rows)})", sample,
         [(r["question"], is_faq(r["faq_question"])) for r in rows if "faq_question" in r]),
        (f"sample, document questions -> the fact (n={sum('source' in r for r in rows)})", sample,
         [(r["question"], holds(r["expected"])) for r in rows if "source" in r]),
        (f"covidqa paraphrases -> that question (n={len(covid_pairs)})", covid, [(q, is_faq(faq_q)) for q, faq_q in covid_pairs]),
    ]
    for name in ("groomer", "bikeshop"):
        store, questions = business_store(name, tmp / name)
        sets.append((f"{name} (bench/businesses), questions -> the fact (n={len(questions)})", synced(store),
                     [(r["question"], holds(r["expected"])) for r in questions]))
    return sets


def quality(tmp: Path, rules: bool = False, rescore: bool = False) -> None:
    """Per set: kbchat's search beside plain cosine, with the right FAQ entry (or a passage holding
    the expected fact) at rank 1, in the top 5, and its mean reciprocal rank; then the fast path."""
    sets = ranking_sets(tmp)
    sample = sets[0][1]
    print(f"\n== Ranking: kbchat's search (fusion weight {sample.lexical_weight}) against plain cosine; hit@1 / hit@5 / MRR ==")
    for name, retriever, cases in sets:
        figures = {rule: rank_figures(retriever, cases, rule) for rule in ("kbchat", "pair", "question")}
        best = max(figures["pair"][0], figures["question"][0]) or 1e-9
        print(f"{name}\n   kbchat {'/'.join(f'{x:.3f}' for x in figures['kbchat'])}"
              f" (right passage among those the writer reads: {read_share(retriever, cases):.3f})"
              f" | plain cosine, FAQ as indexed (question + answer) {'/'.join(f'{x:.3f}' for x in figures['pair'])}"
              f" | plain cosine, FAQ question only {'/'.join(f'{x:.3f}' for x in figures['question'])}"
              f" | hit@1 ratio to the better plain cosine {figures['kbchat'][0] / best:.2f}")
        if name.startswith("sample, reworded"):
            print(f"   the FAQ entries alone, each by the mean of its three cosines (no document passage competes): "
                  f"{'/'.join(f'{x:.3f}' for x in rank_figures(retriever, cases, 'faq mean'))}")
    if rules:
        field_rules(rewording_sets(sets) + sets)
    if rescore:
        writer_rescoring(sets)
    faq_threshold(sample, eval_rows())


def adapted(tmp: Path) -> None:
    """kbchat's search with a copy of the search model trained on each knowledge base's own FAQ
    (bench/ceiling.adapted_copy), beside the packaged model and the better plain cosine: hit@1 /
    hit@5 / MRR per set, and how long the training took. The evaluation questions are never
    trained on; the copy learns the FAQ's question-answer pairs and kbchat's rule rewordings."""
    import shutil

    from ceiling import adapted_copy

    sets = ranking_sets(tmp / "packaged")
    print("\n== Ranking with the search model trained on each knowledge base's FAQ; hit@1 / hit@5 / MRR ==")
    made: dict[str, tuple[Retriever, float]] = {}
    for name, retriever, cases in sets:
        key = str(retriever.store.dir)
        if key not in made:
            copy = tmp / f"copy-{len(made)}"
            shutil.copytree(key, copy)
            start = time.perf_counter()
            path = adapted_copy(retriever.store.faqs(), tmp / f"model-{len(made)}", base=str(retriever.embedder.path))
            seconds = time.perf_counter() - start
            again = Retriever(Store(copy), Settings(embedder_path=path))
            again.sync()
            made[key] = (again, seconds)
        again, seconds = made[key]
        packaged, trained = rank_figures(retriever, cases, "kbchat"), rank_figures(again, cases, "kbchat")
        plain = max(rank_figures(retriever, cases, rule)[0] for rule in ("pair", "question")) or 1e-9
        print(f"{name}\n   packaged {'/'.join(f'{x:.3f}' for x in packaged)} | trained {'/'.join(f'{x:.3f}' for x in trained)}"
              f" ({seconds:.0f} s to train) | hit@1 ratio to the better plain cosine: packaged {packaged[0] / plain:.2f},"
              f" trained {trained[0] / plain:.2f}")


EXPAND_PROMPT = ("You help a small business's website chat find the right passage. Given a passage from the business's "
                 "documents, write 4 short questions that different customers might type in a chat which this passage "
                 "answers. Word them as customers would, in everyday words, not copying the passage's words. One question "
                 "per line, nothing else.")
EXPAND_RULES = {  # a passage's score from its cosine ("passage", FAQ entries as indexed) and its questions' best one
    "questions only": lambda passage, asked: asked,
    "max of the two": np.maximum,
    "mean of the two": lambda passage, asked: (passage + asked) / 2,
    "0.7 passage + 0.3 questions": lambda passage, asked: 0.7 * passage + 0.3 * asked,
}


def expanded(tmp: Path) -> None:
    """Passages found also by the questions customers might ask of them ("doc2query"): the writer
    writes 4 for each passage (EXPAND_PROMPT), they are embedded, and a passage is scored from its
    own cosine and its best question's (EXPAND_RULES), with kbchat's exact-word and number boosts.
    hit@1 per set beside kbchat's search, and what writing the questions costs per passage."""
    from rag.generate import Generator
    from rag.retrieve import fuse

    writer = Generator.for_settings(Settings())
    sets = ranking_sets(tmp)
    written: dict[str, list[str]] = {}  # passage id -> its questions, once per knowledge base
    seconds = []
    for _, retriever, _ in sets:
        for c in retriever.store.chunks():
            if c.id in written:
                continue
            text = f"Question: {c.faq.question}\nAnswer: {c.faq.answer}" if c.faq else c.text
            start = time.perf_counter()
            reply = writer.complete([{"role": "system", "content": EXPAND_PROMPT},
                                     {"role": "user", "content": "Passage:\n" + text}], max_new_tokens=90).text
            seconds.append(time.perf_counter() - start)
            lines = [re.sub(r"^\s*(\d+[.)]|[-*])\s*", "", line).strip() for line in reply.splitlines()]
            written[c.id] = list(dict.fromkeys(q for q in lines if len(q) > 8))[:4]
    print(f"\n== Passages also found by questions the writer ({writer.model_id}) wrote for them: hit@1, "
          f"{len(written)} passages, {statistics.median(seconds):.1f} s each at p50 on this machine ==")
    vectors: dict[str, list[np.ndarray]] = {}  # each passage's questions' vectors, once per knowledge base
    for name, retriever, cases in sets:
        chunks = retriever.store.chunks()
        ids = [c.id for c in chunks]
        new = [(i, q) for i in ids if i not in vectors for q in written[i]]
        for (i, _), v in zip(new, retriever.embedder.embed([q for _, q in new]) if new else []):
            vectors.setdefault(i, []).append(v)
        hits = {rule: 0 for rule in ["kbchat", *EXPAND_RULES]}
        for query, right in cases:
            qvec = retriever.query_vector(query)
            passage = np.array([x if x is not None else -1.0 for x in retriever.passages.scores(qvec, ids)])
            asked = np.array([max(float(v @ qvec) for v in vectors[i]) if i in vectors else p for i, p in zip(ids, passage)])
            bm, share = boosts(retriever, query, chunks)
            hits["kbchat"] += right(retriever.search(query, 1)[0].chunk)
            for rule, score in EXPAND_RULES.items():
                fused = fuse(score(passage, asked), bm, float(bm.max(initial=0.0)), retriever.lexical_weight, share)
                hits[rule] += right(chunks[int(np.argmax(fused))])
        print(f"{name}\n   " + " | ".join(f"{rule} {n / len(cases):.3f}" for rule, n in hits.items()))


def precision(tmp: Path) -> None:
    """The search model in bfloat16 (the fast_search setting) against float32, each on its own copy
    of every set: the time to build the knowledge bases' indexes and to embed every set's
    questions, and kbchat's hit@1 / hit@5 / MRR with each."""
    from rag.embed import cpu_has_bf16

    if not cpu_has_bf16():
        print("\n== Search in bfloat16: this CPU has no bfloat16 instructions, so fast_search keeps float32 here ==")
        return
    measured = {}
    for fast in (False, True):  # the model loaded and warmed up first, so neither pays for that
        Embedder(Settings(fast_search=fast)).embed(["warm up", "When are you open on Saturdays?"])
    for fast in (False, True):
        start = time.perf_counter()
        sets = ranking_sets(tmp / f"fast-{fast}", Settings(fast_search=fast))
        built = time.perf_counter() - start
        start = time.perf_counter()
        for _, retriever, cases in sets:
            retriever.embedder.embed([q for q, _ in cases])
        asked = time.perf_counter() - start
        measured[fast] = (built, asked, [(name, rank_figures(retriever, cases, "kbchat")) for name, retriever, cases in sets])
    (b32, a32, f32), (b16, a16, f16) = measured[False], measured[True]
    print(f"\n== Search in bfloat16 (fast_search) against float32, {Settings().models.embedder} ==")
    print(f"building the five indexes (ingest included): {b32:.1f} s -> {b16:.1f} s (ratio {b32 / b16:.2f}x faster)")
    print(f"embedding every set's questions: {a32:.1f} s -> {a16:.1f} s (ratio {a32 / a16:.2f}x faster)")
    for (name, x), (_, y) in zip(f32, f16):
        print(f"{name}\n   float32 {'/'.join(f'{v:.3f}' for v in x)} | bfloat16 {'/'.join(f'{v:.3f}' for v in y)}"
              f" | hit@1 ratio {y[0] / (x[0] or 1e-9):.2f}")


# Ways to score an FAQ entry against a question, from its three cosines (its question and answer
# as indexed: "pair", its question, its answer); documents keep their passage's cosine.
FIELD_RULES = {
    "pair (as kbchat indexes)": lambda pair, question, answer: pair,
    "question only": lambda pair, question, answer: question,
    "max of pair and question": lambda pair, question, answer: np.maximum(pair, question),
    "mean of pair and question": lambda pair, question, answer: (pair + question) / 2,
    "mean of the three": lambda pair, question, answer: (pair + question + answer) / 3,
    "max of the three": lambda pair, question, answer: np.maximum(np.maximum(pair, question), answer),
}
RULE_WEIGHTS = (0.0, 0.03, 0.05, 0.1, 0.15)


def boosts(retriever: Retriever, query: str, chunks: list[Chunk]) -> tuple[np.ndarray, np.ndarray]:
    """For each passage, what kbchat's fusion (rag.retrieve.fuse) adds to its cosine from: its BM25
    score, and the share of the question's exact values it holds."""
    from rag.facts import facts
    from rag.retrieve import lookup_values

    lexical, wanted = retriever.lexical, lookup_values(query)
    bm25 = lexical.scores(query)
    bm = np.array([bm25[lexical.row[c.id]] if c.id in lexical.row else 0.0 for c in chunks])
    share = np.array([len(wanted.intersection(facts(c.text))) / len(wanted) if wanted else 0.0 for c in chunks])
    return bm, share


def field_rules(sets: list[tuple[str, Retriever, list[tuple[str, Callable[[Chunk], bool]]]]]) -> None:
    """hit@1 per set for each FAQ field rule at each exact-word weight, with the number boost as
    kbchat adds it (rag.retrieve.fuse): which rule to keep is the one that adds on every set."""
    from rag.retrieve import fuse

    print("\n== FAQ field rules x exact-word weight: hit@1 (weights " + ", ".join(map(str, RULE_WEIGHTS)) + ") ==")
    for name, retriever, cases in sets:
        chunks = retriever.store.chunks()
        ids = [c.id for c in chunks]
        hits = {(rule, w): 0 for rule in FIELD_RULES for w in RULE_WEIGHTS}
        for query, right in cases:
            qvec = retriever.query_vector(query)
            pair = np.array([x if x is not None else -1.0 for x in retriever.passages.scores(qvec, ids)])
            question = np.array([x if x is not None else np.nan for x in retriever.faqs.scores(qvec, ids)], float)
            answer = np.array([x if x is not None else np.nan for x in retriever.faq_answers.scores(qvec, ids)], float)
            is_faq = ~np.isnan(question)
            question = np.where(is_faq, question, pair)
            answer = np.where(np.isnan(answer), question, answer)
            bm, share = boosts(retriever, query, chunks)
            rights = [right(c) for c in chunks]
            for rule, score in FIELD_RULES.items():
                dense = np.where(is_faq, score(pair, question, answer), pair)
                for w in RULE_WEIGHTS:  # fuse's arithmetic takes whole arrays
                    hits[(rule, w)] += rights[int(np.argmax(fuse(dense, bm, float(bm.max(initial=0.0)), w, share)))]
        print(name)
        for rule in FIELD_RULES:
            print(f"   {rule:28} " + "  ".join(f"{hits[(rule, w)] / len(cases):.3f}" for w in RULE_WEIGHTS))


def rewording_sets(sets: list[tuple[str, Retriever, list]]) -> list[tuple[str, Retriever, list]]:
    """Per knowledge base with curated answers: the owner's own FAQ questions reworded by kbchat's
    rules, as calibration asks them (rag.calibrate.owner_rewordings), each right when its FAQ is
    found. A weighting of the FAQ's fields chosen per business would be chosen on these."""
    from rag.calibrate import owner_rewordings

    out, seen = [], set()
    for name, retriever, _ in sets:
        faqs = [c.faq for c in retriever.store.chunks() if c.faq]
        if id(retriever) in seen or not any(f.answer for f in faqs):
            continue
        seen.add(id(retriever))
        cases = [(q, is_faq(key)) for q, key in owner_rewordings(faqs)]  # a key is a question_key: the same again
        out.append((f"{name.split(',')[0].split(' (')[0]}: the owner's FAQ reworded by kbchat's rules (n={len(cases)})", retriever, cases))
    return out


RESCORE_GAP = 0.05  # re-scored when the first two passages' cosines are closer than this
RESCORE_TOP = 3  # passages the writer reads, one at a time
RESCORE_WEIGHTS = (0.05, 0.1, 0.2, 0.4, 1.0)


def writer_yes(writer, question: str, chunk: Chunk) -> float:
    """The writer's P(yes) that this passage alone answers the question: the answerability check's
    own prompt (rag.prompts.check_messages) with one passage."""
    from rag.prompts import check_messages, source_text

    return writer.yes_probability(check_messages(question, [source_text(chunk)[0]]))


def close_at_top(hits: list) -> bool:
    """Whether the writer would re-score these hits: the first two are within RESCORE_GAP cosine."""
    return len(hits) >= 2 and None not in (hits[0].dense, hits[1].dense) and hits[0].dense - hits[1].dense < RESCORE_GAP


def rescored(hits: list, question: str, writer, weight: float) -> tuple[list, bool]:
    """The hits re-ordered by the writer where the first two are close (close_at_top): the top
    RESCORE_TOP by search score + weight * P(yes) (writer_yes), the rest after them as they were;
    and whether the writer was asked."""
    if not close_at_top(hits):
        return hits, False
    top = hits[:RESCORE_TOP]
    yes = [writer_yes(writer, question, h.chunk) for h in top]
    order = sorted(range(len(top)), key=lambda i: -(top[i].score + weight * yes[i]))
    return [top[i] for i in order] + hits[RESCORE_TOP:], True


def writer_rescoring(sets: list[tuple[str, Retriever, list]]) -> None:
    """The answer writer re-scores the top passages where the first two are close (`rescored`), at
    each weight: hit@1 beside kbchat's search, and what the re-scoring costs per question re-scored.
    bench/answers.py --rescore W measures what it changes in whole answers."""
    from rag.generate import Generator

    writer = Generator.for_settings(Settings())
    print(f"\n== The writer ({writer.model_id}) re-scores the top {RESCORE_TOP} passages when the first two are within "
          f"{RESCORE_GAP} cosine; hit@1 at weights {', '.join(map(str, RESCORE_WEIGHTS))} ==")

    for name, retriever, cases in sets:
        base, asked, seconds = 0, 0, []
        new = {w: 0 for w in RESCORE_WEIGHTS}
        for query, right in cases:
            hits = retriever.search(query, 5)
            base += right(hits[0].chunk)
            top = hits[:RESCORE_TOP]
            if not close_at_top(hits):
                for w in RESCORE_WEIGHTS:
                    new[w] += right(hits[0].chunk)
                continue
            start = time.perf_counter()
            yes = [writer_yes(writer, query, h.chunk) for h in top]
            seconds.append(time.perf_counter() - start)
            asked += 1
            for w in RESCORE_WEIGHTS:
                new[w] += right(max(zip(top, yes), key=lambda t: t[0].score + w * t[1])[0].chunk)
        n = len(cases)
        print(f"{name}\n   kbchat {base / n:.3f} | re-scored " + "  ".join(f"{new[w] / n:.3f}" for w in RESCORE_WEIGHTS)
              + f" | best ratio to kbchat {max(new.values()) / max(base, 1):.2f} | re-scored {asked} of {n} questions,"
              f" {statistics.median(seconds) if seconds else 0:.2f} s each at p50")


def faq_threshold(retriever: Retriever, rows: list[dict]) -> None:
    """Best-FAQ match score for reworded FAQ questions (right and wrong matches apart), doc-only and
    out-of-scope questions, and what each threshold would let through: on the score alone, and with
    the fast path's other rules (hybrid search agrees, the same question: Retriever.faq_candidate).
    The calibrated threshold (rag.calibrate, measured on the knowledge base, not on these rows) is
    marked."""
    groups: dict[str, list[tuple[float, bool]]] = {"faq, right match": [], "faq, wrong match": [], "doc-only": [], "out of scope": []}
    for row in rows:
        chunk, score = retriever.match_faq(row["question"])
        passes = retriever.faq_candidate(row["question"]) is not None
        if "faq_question" in row:
            group = "faq, right match" if chunk.faq.question == row["faq_question"] else "faq, wrong match"
        else:
            group = "doc-only" if row.get("in_scope") else "out of scope"
        groups[group].append((score, passes))
    calibrated = retriever.faq_threshold
    print("\n== FAQ fast path: match score of the best FAQ (mean cosine to its question, answer and pair) ==")
    for name, values in groups.items():
        if values:
            q = np.percentile([s for s, _ in values], [0, 25, 50, 75, 100])
            print(f"{name:18} n={len(values):3}  min {q[0]:.2f}  p25 {q[1]:.2f}  median {q[2]:.2f}  p75 {q[3]:.2f}  max {q[4]:.2f}")
    n_faq = len(groups["faq, right match"]) + len(groups["faq, wrong match"])
    for rules in (False, True):
        print("score >= threshold" + (" and the fast path's rules (search agrees, same question):" if rules else " alone:"))
        print("  threshold  right FAQ given   wrong FAQ  doc-only  out-of-scope  precision")
        for t in sorted({0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, round(calibrated, 3)}):
            n = {g: sum(s >= t and (a or not rules) for s, a in v) for g, v in groups.items()}
            right, wrong = n["faq, right match"], n["faq, wrong match"] + n["doc-only"] + n["out of scope"]
            mark = "  <- calibrated on the knowledge base" if rules and abs(t - calibrated) < 1e-9 else ""
            print(f"    {t:.3f}   {right:3}/{n_faq} ({right / max(n_faq, 1):.2f})   {n['faq, wrong match']:3}"
                  f"        {n['doc-only']:3}       {n['out of scope']:3}          {right / max(right + wrong, 1):.3f}{mark}")


# -- speed -------------------------------------------------------------------------------------
_SUBJECTS = ["The beginner course", "Our studio", "The membership", "Kids' Clay Club", "The glaze kitchen", "Open studio",
             "The private lesson", "Firing", "The gift card", "The shop", "Parking", "The kiln room", "A taster session"]
_VERBS = ["costs", "includes", "runs on", "is limited to", "needs", "is booked through", "opens at", "closes after", "covers"]
_OBJECTS = ["$45 per person", "six weekly sessions", "25 lb of clay", "Tuesday evenings", "8 students", "a staff escort",
            "cone 6 glazes", "the front desk", "10 am to 9 pm", "14 pottery wheels", "a 24-inch shelf", "(555) 314-2760"]


def synthetic_text(rng: random.Random) -> str:
    return " ".join(f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}." for _ in range(rng.randint(3, 6)))


class PooledEmbedder(Embedder):
    """Bench only: embeds each distinct base sentence once with the real model and gives every
    chunk built on it a noisy copy (see the module docstring). Queries go through unchanged."""

    def __init__(self, pool_vectors: dict[str, np.ndarray], seed: int = 0):
        super().__init__()
        self.pool = pool_vectors
        self.rng = np.random.default_rng(seed)

    def embed(self, texts, batch_size=64):
        bases = [t.split(" [ref ")[0] for t in texts]
        if not all(b in self.pool for b in bases):
            return super().embed(texts, batch_size)
        v = np.stack([self.pool[b] for b in bases]) + self.rng.normal(0, 0.03, (len(texts), len(next(iter(self.pool.values())))))
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def speed(tmp: Path, sizes: list[int], pool_size: int, n_queries: int) -> None:
    rng = random.Random(7)
    embedder = Embedder()
    base_texts = list(dict.fromkeys(synthetic_text(rng) for _ in range(pool_size)))
    embedder.embed(base_texts[:8])  # load and warm the model before timing
    start = time.perf_counter()
    base_vectors = embedder.embed(base_texts)
    rate = len(base_texts) / (time.perf_counter() - start)
    print(f"\n== Speed (device {embedder.device}) ==")
    print(f"embedding throughput: {rate:.0f} chunks/s on {len(base_texts)} chunks of ~{int(np.mean([len(t) for t in base_texts]))} chars"
          f" ({rate / BASELINE_EMBED_PER_S:.2f}x the {BASELINE_EMBED_PER_S:.0f}/s short-question baseline)")
    pool = dict(zip(base_texts, base_vectors))
    queries = [q for q, _ in covidqa_pairs_for_queries()][:n_queries] + [
        "how much is a taster session", "what is your phone number", "(555) 314-2760", "do you sell gift cards"]
    for n in sizes:
        store = Store(tmp / f"synthetic{n}")
        per_source = 1000
        for s in range(0, n, per_source):
            seen: dict[str, int] = {}
            uri = f"synthetic://{s // per_source}"
            texts = [f"{rng.choice(base_texts)} [ref {s + i}]" for i in range(min(per_source, n - s))]
            store.replace_source(Source(uri, "text", uri, str(s), 0, now_iso()),
                                 [Chunk(chunk_id(uri, t, seen), uri, f"part {i}", t) for i, t in enumerate(texts)])
        retriever = Retriever(store)
        retriever.embedder = PooledEmbedder(pool)
        start = time.perf_counter()
        retriever.sync()
        build_s = time.perf_counter() - start
        retriever.embedder = embedder  # queries: the real model
        timings: dict[str, list[float]] = {"search": [], "embed query": [], "dense": [], "bm25": []}
        for q in queries:
            t0 = time.perf_counter()
            retriever.search(q, 5)
            t1 = time.perf_counter()
            qv = embedder.embed_one(q)
            t2 = time.perf_counter()
            retriever.passages.search(qv, 50)
            t3 = time.perf_counter()
            retriever.lexical.scores(q)
            t4 = time.perf_counter()
            for name, dt in zip(timings, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                timings[name].append(dt * 1000)
        p50 = statistics.median(timings["search"])
        p95 = float(np.percentile(timings["search"], 95))
        print(f"{n:>7} chunks ({retriever.passages.kind}, index built in {build_s:.1f} s): search p50 {p50:.1f} ms"
              f" ({p50 / SEARCH_GOAL_MS:.2f}x the {SEARCH_GOAL_MS:.0f} ms goal), p95 {p95:.1f} ms; of which p50 "
              + ", ".join(f"{k} {statistics.median(v):.1f} ms" for k, v in timings.items() if k != "search"))
        store.close()


def covidqa_pairs_for_queries() -> list[tuple[str, str]]:
    with open(COVIDQA, newline="", encoding="utf-8") as f:
        return [(r["question_2"], r["question_1"]) for r in csv.DictReader(f)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run of the speed part (2k chunks, 20 queries); the quality part is always full")
    parser.add_argument("--sizes", type=int, nargs="+", help="knowledge base sizes in chunks (default 10000 100000)")
    parser.add_argument("--rules", action="store_true",
                        help="also every way of scoring an FAQ entry (its question, answer, both) at several exact-word weights")
    parser.add_argument("--rescore", action="store_true",
                        help="also the answer writer re-scoring the top passages where the first two are close (slow: minutes)")
    parser.add_argument("--precision", action="store_true",
                        help="only the search model in bfloat16 (fast_search) against float32: time and ranking per set")
    parser.add_argument("--adapt", action="store_true",
                        help="only: the search model trained on each knowledge base's own FAQ against the packaged one (slow: minutes per set)")
    parser.add_argument("--expand", action="store_true",
                        help="only: passages also found by questions the writer wrote for them (slow: ~10 min)")
    args = parser.parse_args()
    if args.expand:
        with tempfile.TemporaryDirectory() as tmp:
            expanded(Path(tmp))
        return
    if args.adapt:
        with tempfile.TemporaryDirectory() as tmp:
            adapted(Path(tmp))
        return
    if args.precision:
        with tempfile.TemporaryDirectory() as tmp:
            precision(Path(tmp))
        return
    sizes, pool, n_queries = ([2000], 200, 20) if args.quick else ([10_000, 100_000], 2000, 200)
    sizes = args.sizes or sizes
    with tempfile.TemporaryDirectory() as tmp:
        quality(Path(tmp), args.rules, args.rescore)
        speed(Path(tmp), sizes, pool, n_queries)


if __name__ == "__main__":
    main()
