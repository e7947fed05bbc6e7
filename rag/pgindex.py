"""The vector index of a knowledge base kept in PostgreSQL with pgvector, for knowledge bases whose
store is in PostgreSQL (kb.location): every API worker searches the same vectors, and a worker
that syncs after an ingest embeds only what no other worker embedded yet.

One table per index name in the bot's schema, `vectors_<name>(chunk_id, embedding vector(dim))`,
and its state (store revision, embedding model, dimension) in the store's meta table. Like the
FAISS index (rag/index.py), search is an exact inner-product scan below `hnsw_threshold` vectors
and pgvector's HNSW index above it, with the same graph settings.

    >>> index = PgVectorIndex(store, "passages")               # doctest: +SKIP
    >>> index.sync(store, embedder).message                     # doctest: +SKIP
    'Built the passages index: embedded 120.'
"""

from __future__ import annotations

import json
from typing import Callable

import numpy as np

from kb.records import Chunk
from kb.store import Store
from rag.vectors import HNSW_EF_CONSTRUCTION, HNSW_M, HNSW_THRESHOLD, SyncReport, VectorIndexBase, passage_text, sync_message

INSERT_BATCH = 2000  # chunks embedded and written per step: a crash loses at most one step's work


class PgVectorIndex(VectorIndexBase):
    """Unit vectors of chunks in a pgvector table, searched by inner product (= cosine)."""

    def __init__(self, store: Store, name: str = "passages", text_of: Callable[[Chunk], str | None] = passage_text,
                 hnsw_threshold: int = HNSW_THRESHOLD, label: str = ""):
        self.db = store.db
        self.name = name
        self.label = label or f"{name} index"
        self.text_of = text_of
        self.hnsw_threshold = hnsw_threshold
        self.table = f"vectors_{name}"
        self.graph = f"{self.table}_hnsw"
        self._meta_key = f"index:{name}"
        self.revision, self.model, self.dim, self.count = -1, "", 0, 0
        self._synced_here = False

    def __len__(self) -> int:
        return self.count

    @property
    def kind(self) -> str:
        return "hnsw" if self.count >= self.hnsw_threshold else "flat"

    def load(self, db=None) -> str:
        """Read the index's state from the database (through `db`, else the shared connection).
        Returns "" (a table that does not match its state is found by `sync`, which repairs it)."""
        db = db or self.db
        row = db.execute("SELECT value FROM meta WHERE key = ?", (self._meta_key,)).fetchone()
        meta = json.loads(row[0]) if row else {}
        self.revision, self.model, self.dim = int(meta.get("revision", -1)), str(meta.get("model", "")), int(meta.get("dim", 0))
        self.count = (db.execute(f"SELECT COUNT(*) FROM {self.table}").fetchone()[0]
                      if self.dim and db.has_table(self.table) else 0)
        return ""

    # -- keeping in step with the store --------------------------------------------------------
    def sync(self, store: Store, embedder, chunks: list[Chunk] | None = None) -> SyncReport:
        """Bring the table in line with the store: embed new chunks, drop deleted ones. One worker
        at a time syncs an index, on a connection of its own, committing batch by batch: the
        bot's other writes and this worker's other queries go on meanwhile, and a worker that
        waited finds the work done."""
        revision = store.revision
        if chunks is None:
            chunks = store.chunks()
        wanted = {c.id: text for c in chunks if (text := self.text_of(c)) is not None}
        report = SyncReport()
        if self._synced_here and self.revision == revision and self.count == len(wanted):
            return report  # nothing moved since this worker last looked
        fingerprint = embedder.fingerprint
        self.load()
        if self._current(self.db, revision, len(wanted), fingerprint):
            self._synced_here = True
            return report  # another worker brought it up to date: no connection of its own needed
        with self.db.alone(f"sync {self.table}") as db:
            self.load(db)
            rebuilt = bool(self.dim) and self.model != fingerprint
            if rebuilt or not self.dim:
                self._create(db, embedder.dim, fingerprint)
            elif self.revision == revision and self.count == len(wanted):
                self._fit_graph(db)
                self._synced_here = True
                return report  # another worker brought it up to date
            old_revision = self.revision
            have = {r[0] for r in db.execute(f"SELECT chunk_id FROM {self.table}")}
            new_ids = [cid for cid in wanted if cid not in have]
            gone = [cid for cid in have if cid not in wanted]
            if gone:
                db.execute(f"DELETE FROM {self.table} WHERE chunk_id = ANY(?)", (gone,))
            for start in range(0, len(new_ids), INSERT_BATCH):
                part = new_ids[start:start + INSERT_BATCH]
                vectors = np.asarray(embedder.embed([wanted[cid] for cid in part]), dtype=np.float32)
                db.copy_rows(self.table, ("chunk_id", "embedding"), zip(part, vectors), ("text", "vector"))
            self.count = len(wanted)
            self._fit_graph(db)
            self.revision, self.model = revision, fingerprint
            self._save_meta(db)
        self._synced_here = True
        report.added, report.removed, report.rebuilt = len(new_ids), len(gone), rebuilt
        report.message = sync_message(self.label, report, because="it was built with another embedding model" if rebuilt else "",
                                      first=old_revision < 0)
        return report

    def _current(self, db, revision: int, n: int, fingerprint: str) -> bool:
        """Whether the table holds this store revision's n vectors of this model, with the graph
        index its size wants."""
        return (bool(self.dim) and self.model == fingerprint and self.revision == revision and self.count == n
                and db.has_table(self.graph) == (self.kind == "hnsw"))

    def _create(self, db, dim: int, model: str) -> None:
        db.execute(f"DROP TABLE IF EXISTS {self.table}")
        db.execute(f"CREATE TABLE {self.table} (chunk_id TEXT PRIMARY KEY, embedding vector({int(dim)}) NOT NULL)")
        self.dim, self.count, self.revision, self.model = int(dim), 0, -1, model
        self._save_meta(db)  # a sync stopped half-way is taken up by the next one, with this model

    def _save_meta(self, db) -> None:
        meta = json.dumps({"revision": self.revision, "model": self.model, "dim": self.dim})
        db.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                   (self._meta_key, meta))

    def _fit_graph(self, db) -> None:
        """An HNSW index from `hnsw_threshold` vectors on (built once; pgvector keeps it up to date
        on every insert and delete), none below (an exact scan is fast and never wrong there)."""
        if self.kind == "hnsw":
            db.execute("SET maintenance_work_mem = '1GB'")  # the graph is built in memory: much faster
            db.execute(f"CREATE INDEX IF NOT EXISTS {self.graph} ON {self.table} USING hnsw (embedding vector_ip_ops) "
                            f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})")
        else:
            db.execute(f"DROP INDEX IF EXISTS {self.graph}")

    # -- searching -----------------------------------------------------------------------------
    def search(self, query_vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The k nearest chunks as (chunk id, cosine), best first. `<#>` is the negative inner
        product, the order pgvector's index serves."""
        if not self.count or k <= 0:
            return []
        q = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        rows = self.db.execute(f"SELECT chunk_id, embedding <#> ? AS distance FROM {self.table} ORDER BY distance LIMIT ?",
                               (q, int(k)))
        return [(cid, -float(d)) for cid, d in rows]

    def scores(self, query_vector: np.ndarray, chunk_ids: list[str]) -> list[float | None]:
        """The exact cosine of the query with each chunk (None for chunks not in the index)."""
        if not chunk_ids or not self.count:
            return [None] * len(chunk_ids)
        q = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        rows = self.db.execute(f"SELECT chunk_id, embedding <#> ? FROM {self.table} WHERE chunk_id = ANY(?)",
                               (q, list(chunk_ids)))
        found = {cid: -float(d) for cid, d in rows}
        return [found.get(cid) for cid in chunk_ids]
