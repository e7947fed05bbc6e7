"""What every vector index of a knowledge base shares, whichever engine holds it: FAISS files in its
folder (rag.index) or a pgvector table when the store is in PostgreSQL (rag.pgindex). The texts an
index embeds, its graph settings, what a sync reports, and the methods both implement
(`VectorIndexBase`); rag.retrieve opens the right one (`open_index`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from kb.records import Chunk
from kb.store import Store

HNSW_THRESHOLD = 20_000  # flat search of 20k x 384 floats is ~3 ms on 2 cores; past that HNSW pays off
HNSW_M = 32  # graph degree: recall above 0.95 on MiniLM vectors, ~1.3x the memory of the vectors
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128  # the recall/latency knob at query time


def passage_text(chunk: Chunk) -> str | None:
    return chunk.text


def faq_question(chunk: Chunk) -> str | None:
    """The curated question of an FAQ chunk (one of the texts the FAQ fast path matches)."""
    return chunk.faq.question if chunk.faq else None


def faq_answer(chunk: Chunk) -> str | None:
    """The curated answer of an FAQ chunk (the FAQ fast path matches it too); None when empty."""
    return chunk.faq.answer if chunk.faq and chunk.faq.answer.strip() else None


@dataclass
class SyncReport:
    added: int = 0
    removed: int = 0
    rebuilt: bool = False  # every vector was embedded again (no usable saved index, or another model)
    message: str = ""  # plain words for the user; empty when nothing changed

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.rebuilt)


def sync_message(what: str, report: SyncReport, because: str = "", first: bool = False) -> str:
    """What a sync did, in plain words ("" when nothing changed). `because`: why every vector
    was embedded again; `first`: the index did not exist before."""
    if because:
        return f"Rebuilt the {what} because {because}: embedded {report.added}."
    if not report.changed:
        return ""
    if first:
        return f"Built the {what}: embedded {report.added}."
    return f"Updated the {what}: embedded {report.added} new, removed {report.removed}."


class VectorIndexBase(ABC):
    """Unit vectors of chunks, kept in step with the store and searched by inner product (= cosine)."""

    name: str
    label: str

    @abstractmethod
    def __len__(self) -> int: ...

    @property
    @abstractmethod
    def kind(self) -> str:
        """"flat" (exact search) or "hnsw" (approximate, for big indexes)."""

    @abstractmethod
    def load(self) -> str:
        """Read the saved index; a message in plain words when it cannot be used as it is."""

    @abstractmethod
    def sync(self, store: Store, embedder, chunks: list[Chunk] | None = None) -> SyncReport:
        """Embed what the store has and the index lacks, drop what the store no longer has."""

    @abstractmethod
    def search(self, query_vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The `k` nearest chunk ids with their cosines, best first."""

    @abstractmethod
    def scores(self, query_vector: np.ndarray, chunk_ids: list[str]) -> list[float | None]:
        """The cosine of each given chunk (None for one not in the index)."""
