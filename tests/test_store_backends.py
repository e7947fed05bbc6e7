"""The same store tests on both backends: a SQLite folder, and a bot in a real PostgreSQL server
with pgvector (bench/services.py). Sources and chunks, atomic replacement, the chatbot's records,
settings, and search give the same results on both; PostgreSQL also holds several businesses in
one database, follows another worker's changes, and an unreachable database gets one plain sentence."""

from __future__ import annotations

import subprocess
import threading
import uuid
from pathlib import Path

import pytest
from conftest import SAMPLE, Cli, bot_url, kbchat_command

from kb.bot import BotRecords
from kb.errors import NotFound, ServiceUnavailable
from kb.ingest import ingest
from kb.location import database_of, resolve
from kb.records import Answer, Chunk, FaqPair, Source
from kb.settings import Settings
from kb.store import Store
from rag.retrieve import Retriever

QUESTIONS = ["How much is a guest pass?", "When are you open on Sundays?", "Can I get a refund for a course?",
             "Do you sell clay?", "Is there parking?"]


def _source(uri: str, n: int) -> tuple[Source, list[Chunk]]:
    chunks = [Chunk(f"{uri}-{i}", uri, f"row {i}", f"Q: question {i}?\nA: answer {i}.", FaqPair(f"question {i}?", f"answer {i}.", f"row {i}"))
              for i in range(n)]
    return Source(uri, "faq", uri, f"hash-{uri}-{n}", 100 * n, "2026-12-03T00:00:00+00:00"), chunks


def test_sources_and_chunks_round_trip_and_replace_atomically(any_kb):
    with Store(any_kb) as store:
        assert store.revision == 0 and store.count() == (0, 0)
        assert store.replace_source(*_source("a.csv", 3)) == "added"
        assert store.replace_source(*_source("b.csv", 2)) == "added"
        assert store.count() == (2, 5) and store.revision == 2
        assert [s.uri for s in store.sources()] == ["a.csv", "b.csv"]
        assert [s.n_chunks for s in store.sources()] == [3, 2]
        assert [c.id for c in store.get_chunks(["b.csv-1", "missing", "a.csv-0"])] == ["b.csv-1", "a.csv-0"]
        assert store.chunks("a.csv")[2].faq == FaqPair("question 2?", "answer 2.", "row 2")
        before = store.faq_hash()

        source, chunks = _source("a.csv", 4)

        def interrupted():
            yield from chunks[:2]
            raise KeyboardInterrupt  # Ctrl-C half-way through writing the new version

        with pytest.raises(KeyboardInterrupt):
            store.replace_source(source, interrupted())
        assert store.count() == (2, 5) and store.revision == 2 and store.faq_hash() == before

        assert store.replace_source(source, chunks) == "updated"
        assert store.count() == (2, 6) and store.faq_hash() != before
        assert store.remove_source("b.csv") == 2
        with pytest.raises(NotFound):
            store.remove_source("b.csv")
        assert store.count() == (1, 4) and store.revision == 4
    with Store(any_kb, create=False) as again:  # what was written is there for the next process
        assert again.count() == (1, 4) and again.revision == 4


def test_a_copy_is_a_sqlite_folder_with_the_same_content(any_kb, tmp_path):
    with Store(any_kb) as store:
        store.replace_source(*_source("a.csv", 3))
        (store.dir / "calibration.json").write_text("{}")
        copy = store.copy_to(tmp_path / "copy")
        assert copy.db.kind == "sqlite" and (tmp_path / "copy" / "calibration.json").exists()
        assert not (tmp_path / "copy" / "database.toml").exists()
        assert [c.id for c in copy.chunks()] == [c.id for c in store.chunks()]
        assert copy.revision == store.revision and copy.faq_hash() == store.faq_hash()
        copy.close()


def test_the_chatbot_records_work_the_same(any_kb):
    Store(any_kb).close()
    with BotRecords(any_kb) as records:
        token = records.ensure_keys()
        assert token and records.is_admin_token(token) and records.ensure_keys() is None
        assert records.is_public_key(records.public_key()) and not records.is_public_key("pk_guess")
        answer = Answer(question="How much is a guest pass?", path="rag", text="$20 per visit.", method="faq", confidence=0.9)
        first = records.log("visitor-1", answer)
        second = records.log("visitor-2", Answer(question="Do you teach welding?", path="rag", text="I don't know.",
                                                 method="refused", confidence=0.1))
        assert second == first + 1
        records.feedback(first, "visitor-1", helpful=True)
        with pytest.raises(NotFound):
            records.feedback(first, "visitor-2", helpful=False)  # only the chat that got the answer may rate it
        insights = records.insights()
        assert (insights["questions"], insights["sessions"], insights["refused"], insights["helpful"]) == (2, 2, 1, 1)
        assert insights["content_gaps"][0]["question"] == "Do you teach welding?"

        lead = records.add_lead("visitor-1", "Ada", "ada@example.com", "Call me", consent=True)
        assert [x.id for x in records.leads()] == [lead.id]
        handoff, new = records.ask_for_person("visitor-2", "welding?")
        assert new and handoff.state == "waiting" and not records.ask_for_person("visitor-2")[1]
        reply = records.add_message("visitor-2", "team", "We don't, sorry!")
        assert records.handoff("visitor-2").state == "live" and records.messages("visitor-2")[0].id == reply.id
        records.hand_back("visitor-2")
        assert not records.with_person("visitor-2")

        gone = records.erase_visitor(email="ADA@example.com")
        assert (gone["exchanges"], gone["leads"]) == (1, 1)
        with pytest.raises(NotFound):
            records.erase_visitor(session="nobody")
        with pytest.raises(NotFound):
            records.visitor_data(email="nobody@example.com")  # no chat left a lead with it: nothing to find
        assert [e.session for e in records.exchanges()] == ["visitor-2"]
        records.db.execute("UPDATE exchanges SET at = ?", ("2020-01-01T00:00:00+00:00",))  # an old chat
        assert records.forget_older_than(30)["exchanges"] == 1 and records.exchanges() == []


def test_settings_are_saved_and_their_changes_seen(any_kb):
    assert Settings.load(any_kb) == Settings() and Settings.stamp(any_kb) == ()
    Settings().updated(bot_name="Ask the bakery", chunk_size="600").save(any_kb)
    first = Settings.stamp(any_kb)
    loaded = Settings.load(any_kb)
    assert (loaded.widget.bot_name, loaded.ingest.chunk_size) == ("Ask the bakery", 600)
    loaded.updated(bot_name="Ask us").save(any_kb)
    assert Settings.stamp(any_kb) != first and Settings.load(any_kb).widget.bot_name == "Ask us"


@pytest.fixture(scope="module")
def sample_sqlite(tmp_path_factory):
    kb = tmp_path_factory.mktemp("sample") / "kb"
    with Store(kb) as store:
        assert not [r for r in ingest(store, [str(SAMPLE)], Settings()) if r.failed]
    return kb


def test_search_finds_the_same_passages_on_pgvector_as_on_faiss(sample_sqlite, pg_kb):
    with Store(pg_kb) as store:
        assert not [r for r in ingest(store, [str(SAMPLE)], Settings()) if r.failed]
        with Store(sample_sqlite, create=False) as local:
            faiss, pg = Retriever(local), Retriever(store)
            assert any("Built the passage index" in m for m in pg.sync())
            for question in QUESTIONS:
                want = [(h.chunk.id, round(h.score, 4)) for h in faiss.search(question, 5)]
                assert [(h.chunk.id, round(h.score, 4)) for h in pg.search(question, 5)] == want, question
            assert faiss.match_faq("Can members bring guests?")[0].id == pg.match_faq("Can members bring guests?")[0].id
        # Past the HNSW threshold pgvector builds its graph index; the answers stay the same.
        graph = Retriever(store, hnsw_threshold=50)
        graph.sync()
        assert graph.passages.kind == "hnsw"
        assert ("vectors_passages_hnsw",) in store.db.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'vectors_passages' AND schemaname = ?", (store.db.schema,)).fetchall()
        for question in QUESTIONS:
            assert graph.search(question, 1)[0].chunk.id == pg.search(question, 1)[0].chunk.id


class _PowerCutOnSecondBatch:
    """The real embedder. While the sync embeds its first batch, another thread writes to the bot
    (which must not wait for the sync); at the second batch the machine "loses power"."""

    def __init__(self, embedder, store: Store):
        self.embedder, self.store, self.calls, self.write_done = embedder, store, 0, threading.Event()
        self.fingerprint, self.dim = embedder.fingerprint, embedder.dim

    def embed(self, texts):
        self.calls += 1
        if self.calls == 1:
            threading.Thread(target=self._write, daemon=True).start()
            assert self.write_done.wait(120), "a write to the bot waited for the index sync"
        elif self.calls == 2:
            raise RuntimeError("power cut")
        return self.embedder.embed(texts)

    def _write(self):
        self.store.replace_source(*_source("b.csv", 1))
        self.write_done.set()


def test_a_long_sync_lets_the_bot_work_and_a_stopped_one_is_taken_up(pg_kb, monkeypatch):
    from rag import pgindex

    monkeypatch.setattr(pgindex, "INSERT_BATCH", 2)
    with Store(pg_kb) as store:
        store.replace_source(*_source("a.csv", 6))
        embedder = Retriever(store).embedder
        cut = _PowerCutOnSecondBatch(embedder, store)
        with pytest.raises(RuntimeError, match="power cut"):
            pgindex.PgVectorIndex(store).sync(store, cut)
        assert cut.write_done.is_set() and store.count() == (2, 7)
        assert store.db.execute("SELECT COUNT(*) FROM vectors_passages").fetchone()[0] == 2  # the first batch was kept

        again = pgindex.PgVectorIndex(store)
        report = again.sync(store, embedder)
        assert (report.added, report.removed, len(again)) == (5, 0, 7)  # only what the stopped sync had not done
        assert again.sync(store, embedder).message == ""
        query = embedder.embed_one("question 4?")
        assert again.search(query, 1)[0][0] == "a.csv-4"


def test_several_businesses_share_one_database_and_see_only_their_own(postgres_url, tmp_path, monkeypatch):
    from kb.db import drop_bot

    monkeypatch.setenv("KBCHAT_FILES", str(tmp_path / "files"))
    names = [f"t_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    folders = [resolve(bot_url(postgres_url, name)) for name in names]
    try:
        for folder, n in zip(folders, (2, 5)):
            with Store(folder) as store:
                store.replace_source(*_source(f"{folder.name}.csv", n))
        for folder, n in zip(folders, (2, 5)):
            with Store(folder, create=False) as store:
                assert [s.uri for s in store.sources()] == [f"{folder.name}.csv"] and store.count() == (1, n)
        assert folders[0] != folders[1] and (folders[0] / "database.toml").stat().st_mode & 0o077 == 0
        listed = Cli(folders[0])("sources").output
        assert f"Knowledge base: bot '{names[0]}' in " in listed and str(folders[0]) not in listed  # named, not its folder
        with pytest.raises(NotFound, match="no knowledge base"):
            Store(resolve(bot_url(postgres_url, "t_never_made")), create=False)
    finally:
        for name in names:
            drop_bot(*database_of(resolve(bot_url(postgres_url, name))))


def test_a_worker_follows_what_another_worker_ingested(pg_kb, tmp_path, model_cache, monkeypatch):
    """Two processes on one bot: this one searches, a separate `kbchat ingest` adds a document;
    the next search here sees it, and embedding is not repeated by the worker that did not ingest."""
    import os

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "hours.md").write_text("# Opening hours\n\nThe bakery opens at 7 am every day except Monday.\n")
    with Store(pg_kb) as store:
        store.replace_source(*_source("a.csv", 3))
        retriever = Retriever(store)
        retriever.sync()
        url, bot = database_of(pg_kb)
        env = {**os.environ, "KBCHAT_CACHE": str(model_cache)}
        done = subprocess.run([*kbchat_command(), "--kb", bot_url(url, bot), "ingest", str(docs)], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        from kb.db import PostgresDatabase

        opened = []
        real_alone = PostgresDatabase.alone
        monkeypatch.setattr(PostgresDatabase, "alone", lambda db, work: opened.append(work) or real_alone(db, work))
        hit = retriever.search("When does the bakery open?", 1)[0]
        assert opened == []  # up to date already: no connection of its own, no lock waited for
        assert hit.chunk.source.endswith("hours.md")
        assert not [m for m in retriever.messages if "embedded" in m]  # the ingesting worker embedded it


def test_an_unreachable_database_gets_a_plain_message(tmp_path, monkeypatch):
    monkeypatch.setenv("KBCHAT_FILES", str(tmp_path / "files"))
    kb = resolve("postgresql://kbchat@127.0.0.1:1/kbchat?bot=shop")  # nothing listens on port 1
    with pytest.raises(ServiceUnavailable, match="cannot reach the database"):
        Store(kb)
    result = Cli(kb)("sources")
    assert result.exit_code == 1 and "cannot reach the database" in result.output and "Traceback" not in result.output
    bad = Cli(tmp_path)  # a bot name that is not usable
    from ui.cli import cli

    out = bad.runner.invoke(cli, ["--kb", "postgresql://127.0.0.1/kbchat?bot=No Spaces", "sources"])
    assert out.exit_code != 0 and "bot name" in out.output and "Traceback" not in out.output
    out = bad.runner.invoke(cli, ["--kb", "mysql://127.0.0.1/kbchat", "ingest", str(SAMPLE)])
    assert out.exit_code != 0 and "mysql://" in out.output and "Traceback" not in out.output
    assert not list(tmp_path.glob("mysql*")) and not list(Path.cwd().glob("mysql*"))  # no folder made for it
