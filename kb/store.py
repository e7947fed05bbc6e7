"""The knowledge base's sources and chunks: one SQLite file in the knowledge base folder, or the
bot's schema in a shared PostgreSQL database (kb.db, kb.location).

Every change is one transaction: a source is replaced with all its chunks or not at all, so a
crash or Ctrl-C leaves the previous consistent state. A `revision` number goes up with every
change, so derived data (the vector index, a fine-tuned adapter) can tell it is out of date.

    >>> store = Store(tmp_dir)                       # doctest: +SKIP
    >>> [s.uri for s in store.sources()]             # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import shutil
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from kb.db import DB_FILE, Database
from kb.errors import BadInput, EmptyKnowledgeBase, NotFound
from kb.location import DATABASE_FILE, describe
from kb.records import Chunk, FaqPair, Source

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    uri TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    ingested_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL REFERENCES sources(uri) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    location TEXT NOT NULL,
    text TEXT NOT NULL,
    question TEXT,
    answer TEXT
);
CREATE INDEX IF NOT EXISTS chunks_by_source ON chunks(source, position);
"""


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


class Store:
    """The sources and chunks of one knowledge base (SQLite, or a bot in PostgreSQL)."""

    def __init__(self, kb_dir: str | os.PathLike, create: bool = True):
        self.dir = Path(kb_dir)
        if self.dir.exists() and not self.dir.is_dir():
            raise BadInput(f"{self.dir} is a file, not a knowledge base folder. Choose another --kb folder.")
        if not create and not Store.exists(self.dir):
            raise NotFound(f"There is no knowledge base at {describe(self.dir)}. Add documents with: kbchat ingest PATH")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db = Database.open(self.dir)  # one connection, shared by the API's worker threads
        self.path = self.dir / DB_FILE
        self.db.script(_SCHEMA)
        version = self._meta("schema_version")
        if version is None:
            self._set_meta("schema_version", str(SCHEMA_VERSION))
        elif int(version) > SCHEMA_VERSION:
            raise BadInput(f"{self.where} was written by a newer kbchat; upgrade kbchat to open it.")

    @staticmethod
    def exists(kb_dir: str | os.PathLike) -> bool:
        """Whether there is a knowledge base here (something was ingested into it once)."""
        return Database.exists(kb_dir)

    @property
    def where(self) -> str:
        """How messages name this knowledge base: its database file, or its bot and database."""
        return self.db.where

    @property
    def _lock(self):
        return self.db.lock

    def close(self) -> None:
        self.db.close()

    def copy_to(self, kb_dir: str | os.PathLike) -> "Store":
        """A copy of this knowledge base in another folder, always a SQLite one: every file
        (indexes, adapters) and a consistent snapshot of the sources and chunks, taken while
        the knowledge base is in use."""
        dest = Path(kb_dir)
        shutil.copytree(self.dir, dest, ignore=shutil.ignore_patterns(f"{DB_FILE}*", DATABASE_FILE, "eval"),
                        dirs_exist_ok=True)
        if self.db.kind == "sqlite":
            self.db.backup_to(dest / DB_FILE)
            return Store(dest, create=False)
        copy = Store(dest)
        with self.db.transaction():  # one consistent snapshot: no writer in between
            revision = self.revision
            sources = self.sources()
            by_source: dict[str, list[Chunk]] = {}
            for c in self.chunks():
                by_source.setdefault(c.source, []).append(c)
        with copy.db.transaction():
            for s in sources:
                copy._replace(s, by_source.get(s.uri, []))
            copy._set_meta("revision", str(revision))
        return copy

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- meta ----------------------------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        (key, value))

    @property
    def revision(self) -> int:
        """Goes up by one with every change to the sources or chunks."""
        return int(self._meta("revision") or 0)

    def _bump(self) -> None:
        self._set_meta("revision", str(int(self._meta("revision") or 0) + 1))

    # -- reading -------------------------------------------------------------------------------
    _SOURCES_SQL = """SELECT s.uri, s.kind, s.title, s.content_hash, s.size_bytes, s.ingested_at,
                             COUNT(c.id), COUNT(c.question)
                      FROM sources s LEFT JOIN chunks c ON c.source = s.uri {where}
                      GROUP BY s.uri ORDER BY s.ingested_at, s.uri"""

    def sources(self) -> list[Source]:
        with self._lock:
            return [Source(*row) for row in self.db.execute(self._SOURCES_SQL.format(where=""))]

    def source(self, uri: str) -> Source | None:
        with self._lock:
            row = self.db.execute(self._SOURCES_SQL.format(where="WHERE s.uri = ?"), (uri,)).fetchone()
        return Source(*row) if row else None

    def chunks(self, source: str | None = None, faqs_only: bool = False) -> list[Chunk]:
        sql = "SELECT id, source, location, text, question, answer FROM chunks WHERE 1 = 1"
        args: tuple = ()
        if source is not None:
            sql += " AND source = ?"
            args = (source,)
        if faqs_only:
            sql += " AND question IS NOT NULL"
        with self._lock:
            return [_chunk(row) for row in self.db.execute(sql + " ORDER BY source, position", args)]

    def get_chunks(self, ids: list[str]) -> list[Chunk]:
        """The chunks with these ids, in the order asked; ids not in the store are left out."""
        found: dict[str, Chunk] = {}
        with self._lock:
            for start in range(0, len(ids), 500):  # SQLite limits the number of ? parameters
                part = ids[start : start + 500]
                sql = f"SELECT id, source, location, text, question, answer FROM chunks WHERE id IN ({','.join('?' * len(part))})"
                found.update((row[0], _chunk(row)) for row in self.db.execute(sql, part))
        return [found[i] for i in ids if i in found]

    def chunk_ids(self) -> set[str]:
        with self._lock:
            return {row[0] for row in self.db.execute("SELECT id FROM chunks")}

    def faqs(self) -> list[Chunk]:
        """Every FAQ pair in the knowledge base, as its chunk (chunk.faq holds the pair)."""
        return self.chunks(faqs_only=True)

    def faq_hash(self) -> str:
        """A fingerprint of the FAQ content: a fine-tuned adapter records it to tell when it is stale."""
        h = hashlib.sha256()
        for q, a in sorted((c.faq.question, c.faq.answer) for c in self.faqs()):
            h.update(f"{q}\x00{a}\x00".encode())
        return h.hexdigest()[:16]

    def count(self) -> tuple[int, int]:
        """(number of sources, number of chunks)"""
        with self._lock:
            return (
                self.db.execute("SELECT COUNT(*) FROM sources").fetchone()[0],
                self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0],
            )

    def require_documents(self) -> None:
        """Raise EmptyKnowledgeBase, saying what to do, when there is nothing to answer from."""
        if not self.count()[1]:
            raise EmptyKnowledgeBase(f"The knowledge base at {self.dir} has no documents yet. Ingest something first: kbchat ingest PATH_OR_URL")

    def find_source(self, name: str) -> Source:
        """A source by its uri, by a path that resolves to it, or by a unique file name."""
        sources = self.sources()
        for s in sources:
            if s.uri == name:
                return s
        resolved = str(Path(name).expanduser().resolve())
        for s in sources:
            if s.uri == resolved:
                return s
        matches = [s for s in sources if Path(s.uri).name == name or s.uri.rstrip("/").endswith("/" + name)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise BadInput(f"'{name}' matches {len(matches)} sources; give the full path or URL: " + ", ".join(s.uri for s in matches))
        raise NotFound(f"No source named '{name}' in the knowledge base. See the list with: kbchat sources")

    # -- writing -------------------------------------------------------------------------------
    @contextmanager
    def _transaction(self):
        """One change, all or nothing (kb.db), that moves the revision."""
        with self.db.transaction():
            yield
            self._bump()

    def replace_source(self, source: Source, chunks: list[Chunk]) -> str:
        """Store a source and exactly its chunks, replacing any previous version, atomically.
        Returns "added" or "updated"."""
        with self._transaction():
            return self._replace(source, chunks)

    def _replace(self, source: Source, chunks: list[Chunk]) -> str:
        existed = self.db.execute("SELECT 1 FROM sources WHERE uri = ?", (source.uri,)).fetchone()
        self.db.execute("DELETE FROM sources WHERE uri = ?", (source.uri,))  # cascades to chunks
        self.db.execute(
            "INSERT INTO sources(uri, kind, title, content_hash, size_bytes, ingested_at) VALUES (?,?,?,?,?,?)",
            (source.uri, source.kind, source.title, source.content_hash, source.size_bytes, source.ingested_at),
        )
        self.db.executemany(
            "INSERT INTO chunks(id, source, position, location, text, question, answer) VALUES (?,?,?,?,?,?,?)",
            [
                (c.id, source.uri, i, c.location, c.text, c.faq.question if c.faq else None, c.faq.answer if c.faq else None)
                for i, c in enumerate(chunks)
            ],
        )
        return "updated" if existed else "added"

    def faq_pairs(self) -> list[FaqPair]:
        """The FAQ pairs, located by file name as well as row, since a knowledge base may hold
        several FAQ files and "row 12" alone does not say which."""
        pairs = []
        for chunk in self.faqs():
            name = chunk.source.rstrip("/").rsplit("/", 1)[-1] or chunk.source
            location = f"{name} {chunk.faq.location}".strip()
            pairs.append(FaqPair(chunk.faq.question, chunk.faq.answer, location))
        return pairs

    def remove_source(self, uri: str) -> int:
        """Delete a source and its chunks; returns how many chunks went."""
        with self._transaction():
            n = self.db.execute("SELECT COUNT(*) FROM chunks WHERE source = ?", (uri,)).fetchone()[0]
            if not self.db.execute("DELETE FROM sources WHERE uri = ?", (uri,)).rowcount:
                raise NotFound(f"No source '{uri}' in the knowledge base. See the list with: kbchat sources")
        return n


def _chunk(row) -> Chunk:
    cid, source, location, text, question, answer = row
    faq = FaqPair(question, answer, location) if question is not None else None
    return Chunk(cid, source, location, text, faq)
