"""The vector index of a knowledge base, saved in its folder and kept in step with the store.

Vectors are cached by chunk id. A chunk id is derived from its source and text, so after a
re-ingest only new or changed passages are embedded; `sync` adds and removes just those.

On disk, per index name (e.g. "passages", "faq", "faq_answers"):
  <name>.vectors.npz   ids, vectors, and meta (store revision, embedding model, dim), in ONE file
                       replaced atomically, so ids and vectors can never disagree after a crash;
  <name>.hnsw.faiss    only for big indexes: the HNSW graph, which is slow to rebuild. It may lag
                       the .npz after a crash; `load` reconciles the two from the ids the graph holds.

Search is exact inner product (IndexFlatIP) below `hnsw_threshold` vectors: on a small business's
few thousand passages it takes about a millisecond and is never wrong. Above it, HNSW.

    >>> index = VectorIndex(store.dir)                          # doctest: +SKIP
    >>> report = index.sync(store, embedder)                    # doctest: +SKIP
    >>> index.search(embedder.embed_one("opening hours"), 5)    # doctest: +SKIP
    [('3f2a...', 0.71), ...]
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from kb.files import atomic_write
from kb.records import Chunk
from kb.store import Store
from rag.vectors import (HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, HNSW_THRESHOLD, SyncReport, VectorIndexBase,
                         passage_text, sync_message)

TOMBSTONE_LIMIT = 0.2  # HNSW cannot delete; rebuild the graph once this share of it is deleted chunks
FORMAT_VERSION = 1


def faiss_key(chunk_id: str) -> int:
    """A stable positive int64 for a chunk id (FAISS ids are integers). Collisions are ~n^2/2^64:
    about 1e-9 at 100k chunks."""
    return int.from_bytes(hashlib.blake2b(chunk_id.encode(), digest_size=8).digest(), "little") >> 1


class VectorIndex(VectorIndexBase):
    """Unit vectors of chunks, keyed by chunk id, searched by inner product (= cosine)."""

    def __init__(
        self,
        kb_dir: str | os.PathLike,
        name: str = "passages",
        text_of: Callable[[Chunk], str | None] = passage_text,
        hnsw_threshold: int = HNSW_THRESHOLD,
        label: str = "",
    ):
        self.dir = Path(kb_dir)
        self.name = name
        self.label = label or f"{name} index"  # how messages name it
        self.text_of = text_of  # what to embed for a chunk; None leaves the chunk out
        self.hnsw_threshold = hnsw_threshold
        self.path = self.dir / f"{name}.vectors.npz"
        self.hnsw_path = self.dir / f"{name}.hnsw.faiss"
        self.ids: list[str] = []
        self.vectors = np.zeros((0, 0), dtype=np.float32)
        self.revision = -1  # the store revision the index matches; -1: never synced
        self.model = ""  # the embedder fingerprint the vectors came from
        self._row: dict[str, int] = {}
        self._faiss = None  # IndexIDMap2 over IndexFlatIP or IndexHNSWFlat
        self._key_to_id: dict[int, str] = {}
        self._tombstones: set[int] = set()  # HNSW keys of deleted chunks, filtered out of results
        self._loaded = False
        self._synced_here = False  # once this object has synced, a new store revision is a routine update

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def kind(self) -> str:
        return "hnsw" if len(self.ids) >= self.hnsw_threshold else "flat"

    # -- loading and saving --------------------------------------------------------------------
    def load(self) -> str:
        """Read the saved index. Returns "" when it was read (or there is none yet), else why it
        could not be used; the caller's next `sync` then rebuilds it."""
        self._loaded = True
        if not self.path.exists():
            return ""
        if not zipfile.is_zipfile(self.path):  # np.load would try to unpickle it
            return f"the saved vector index {self.path.name} is damaged or not a kbchat index file"
        try:
            with np.load(self.path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                ids = [str(i) for i in data["ids"]]
                vectors = np.ascontiguousarray(data["vectors"], dtype=np.float32)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as e:
            return f"the saved vector index {self.path.name} could not be read ({type(e).__name__}: {e})"
        if meta.get("format") != FORMAT_VERSION:
            return f"the saved vector index {self.path.name} has an unknown format {meta.get('format')!r}"
        if vectors.ndim != 2 or vectors.shape[0] != len(ids) or len(set(ids)) != len(ids):
            return f"the saved vector index {self.path.name} is inconsistent ({len(ids)} ids, vectors of shape {vectors.shape})"
        if not np.isfinite(vectors).all():
            return f"the saved vector index {self.path.name} holds invalid numbers"
        self.ids, self.vectors = ids, vectors
        self.revision, self.model = int(meta["revision"]), str(meta["model"])
        self._row = {cid: i for i, cid in enumerate(ids)}
        self._key_to_id = {faiss_key(cid): cid for cid in ids}
        self._faiss = None
        if self.ids:
            self._faiss = self._load_hnsw() if self.kind == "hnsw" else self._build_faiss()
        return ""

    def _load_hnsw(self):
        """The saved graph, brought level with the vectors (it may lag them after a crash)."""
        import faiss

        try:
            index = faiss.read_index(str(self.hnsw_path))
            graph_keys = set(faiss.vector_to_array(index.id_map).tolist())
            if index.d != self.vectors.shape[1]:
                raise ValueError("dimension differs")
        except (RuntimeError, ValueError, AttributeError):
            return self._build_faiss()  # unreadable or missing graph: rebuild it from the vectors
        live = set(self._key_to_id)
        missing = [self._row[self._key_to_id[key]] for key in live - graph_keys]
        if missing:
            index.add_with_ids(self.vectors[missing], np.array([faiss_key(self.ids[r]) for r in missing], dtype=np.int64))
        self._tombstones = graph_keys - live
        return index

    def save(self) -> None:
        """Write the vectors (and the HNSW graph if any) atomically: temp file, then os.replace."""
        self.dir.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT_VERSION, "revision": self.revision, "model": self.model, "dim": int(self.vectors.shape[1])}
        ids = np.array(self.ids, dtype=str) if self.ids else np.zeros(0, dtype="<U1")
        atomic_write(self.path, lambda f: np.savez(f, vectors=self.vectors, ids=ids, meta=np.array(json.dumps(meta))))
        if self.kind == "hnsw" and self._faiss is not None:
            import faiss

            atomic_write(self.hnsw_path, lambda f: f.write(faiss.serialize_index(self._faiss).tobytes()))
        elif self.hnsw_path.exists():
            self.hnsw_path.unlink()  # shrank below the threshold: a stale graph must not be reloaded later

    # -- keeping in step with the store --------------------------------------------------------
    def sync(self, store: Store, embedder, chunks: list[Chunk] | None = None) -> SyncReport:
        """Bring the index in line with the store: embed new chunks, drop deleted ones, save.
        `chunks` may be passed when the caller already read them (it must be store.chunks())."""
        problem = "" if self._loaded else self.load()
        revision = store.revision
        if chunks is None:
            chunks = store.chunks()
        wanted = {c.id: text for c in chunks if (text := self.text_of(c)) is not None}
        fingerprint = embedder.fingerprint
        report = SyncReport()
        if not problem and self.ids and self.model != fingerprint:
            problem = "it was built with another embedding model"
        if problem:
            self._reset()
            report.rebuilt = True
        elif self.revision == revision and len(wanted) == len(self.ids) and all(i in self._row for i in wanted):
            return report  # the common case: nothing changed since the last sync

        old_revision = self.revision
        have = set(self.ids)
        new_ids = [cid for cid in wanted if cid not in have]
        gone = [cid for cid in self.ids if cid not in wanted]
        stale_on_disk = old_revision >= 0 and old_revision != revision and not self._synced_here
        behind_its_back = old_revision == revision and bool(new_ids or gone)
        self.remove(gone)
        if new_ids:
            self.add(new_ids, embedder.embed([wanted[cid] for cid in new_ids]))
        self.revision, self.model = revision, fingerprint
        self.save()
        self._synced_here = True

        report.added, report.removed = len(new_ids), len(gone)
        counts = f"embedded {len(new_ids)} new, removed {len(gone)}"
        if behind_its_back:
            report.message = f"The saved {self.label} did not match the knowledge base; resynced it: {counts}."
        elif stale_on_disk:
            report.message = f"The saved {self.label} was older than the knowledge base; updated it: {counts}."
        else:
            report.message = sync_message(self.label, report, because=problem, first=old_revision < 0)
        return report

    def _reset(self) -> None:
        self.ids, self.vectors, self._row, self._key_to_id = [], np.zeros((0, 0), dtype=np.float32), {}, {}
        self._faiss, self._tombstones, self.revision = None, set(), -1

    def add(self, ids: list[str], vectors: np.ndarray) -> None:
        """Add vectors for chunk ids that are not in the index (sync does this for new chunks)."""
        start = len(self.ids)
        self.vectors = vectors if start == 0 else np.concatenate([self.vectors, vectors])
        self.ids.extend(ids)
        for i, cid in enumerate(ids, start=start):
            self._row[cid] = i
            self._key_to_id[faiss_key(cid)] = cid
        want = self.kind
        if self._faiss is None or want != self._faiss_kind:
            self._faiss = self._build_faiss()  # first vectors, or just crossed the HNSW threshold
        else:
            keys = [faiss_key(cid) for cid in ids]
            # A chunk deleted and added back is still in the HNSW graph with the same vector (same
            # id, same text, same model): bring it back to life instead of adding a duplicate.
            fresh = [i for i, key in enumerate(keys) if key not in self._tombstones]
            self._tombstones -= set(keys)
            if fresh:
                self._faiss.add_with_ids(vectors[fresh], np.array([keys[i] for i in fresh], dtype=np.int64))

    def remove(self, ids: list[str]) -> None:
        """Drop chunk ids from the index; ids it does not hold are ignored."""
        if not ids:
            return
        gone = set(ids)
        keep = [i for i, cid in enumerate(self.ids) if cid not in gone]
        self.ids = [self.ids[i] for i in keep]
        self.vectors = self.vectors[keep]
        self._row = {cid: i for i, cid in enumerate(self.ids)}
        keys = [faiss_key(cid) for cid in gone]
        for key in keys:
            self._key_to_id.pop(key, None)
        if self._faiss is None:
            return
        if not self.ids or self.kind != self._faiss_kind:
            self._faiss = self._build_faiss() if self.ids else None  # dropped below the threshold
        elif self._faiss_kind == "flat":
            import faiss

            self._faiss.remove_ids(faiss.IDSelectorBatch(np.array(keys, dtype=np.int64)))
        else:
            self._tombstones |= set(keys)
            if len(self._tombstones) > TOMBSTONE_LIMIT * self._faiss.ntotal:
                self._faiss = self._build_faiss()

    @property
    def _faiss_kind(self) -> str:
        if self._faiss is None:
            return ""
        import faiss

        return "hnsw" if isinstance(faiss.downcast_index(self._faiss.index), faiss.IndexHNSWFlat) else "flat"

    def _build_faiss(self):
        import faiss

        dim = self.vectors.shape[1]
        if self.kind == "hnsw":
            inner = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            inner.hnsw.efSearch = HNSW_EF_SEARCH
        else:
            inner = faiss.IndexFlatIP(dim)
        index = faiss.IndexIDMap2(inner)
        index.add_with_ids(self.vectors, np.array([faiss_key(cid) for cid in self.ids], dtype=np.int64))
        self._tombstones = set()
        return index

    # -- searching -----------------------------------------------------------------------------
    def search(self, query_vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The k nearest chunks as (chunk id, cosine), best first."""
        if self._faiss is None or k <= 0:
            return []
        q = np.ascontiguousarray(query_vector, dtype=np.float32).reshape(1, -1)
        k = min(k, len(self.ids))
        params = None
        if self._tombstones:
            import faiss

            # Deleted chunks stay in an HNSW graph until the next rebuild; keep them out of results.
            self._exclude = faiss.IDSelectorNot(faiss.IDSelectorBatch(np.array(sorted(self._tombstones), dtype=np.int64)))
            params = faiss.SearchParametersHNSW(sel=self._exclude, efSearch=HNSW_EF_SEARCH)
        scores, keys = self._faiss.search(q, k, params=params) if params else self._faiss.search(q, k)
        return [(self._key_to_id[key], float(s)) for key, s in zip(keys[0].tolist(), scores[0].tolist()) if key in self._key_to_id]

    def scores(self, query_vector: np.ndarray, chunk_ids: list[str]) -> list[float | None]:
        """The exact cosine of the query with each chunk (None for chunks not in the index)."""
        rows = [self._row.get(cid) for cid in chunk_ids]
        present = [r for r in rows if r is not None]
        sims = iter((self.vectors[present] @ np.asarray(query_vector, dtype=np.float32)).tolist()) if present else iter(())
        return [next(sims) if r is not None else None for r in rows]

