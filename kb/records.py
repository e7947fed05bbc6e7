"""The record types that flow through every stage of kbchat.

A reader turns one file or page into a `Document` (sections of text and/or FAQ pairs); the chunker
turns a Document into `Chunk`s; the store keeps Chunks and one `Source` row per file or page.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FaqPair:
    """One curated question and its answer, e.g. a spreadsheet row."""

    question: str
    answer: str
    location: str = ""  # where it came from, e.g. "row 12" or "Sheet1 row 12"


@dataclass(frozen=True)
class Section:
    """A run of text that belongs together: a PDF page, the body under one heading."""

    text: str
    location: str = ""  # "page 3", "Prices > Classes"; empty for a file without structure


@dataclass
class Document:
    """What a reader makes of one file or page, before chunking."""

    kind: str  # "faq", "pdf", "markdown", "text", "html", "docx"
    title: str = ""
    sections: list[Section] = field(default_factory=list)
    faqs: list[FaqPair] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # e.g. "row 7: the answer is empty; skipped"


@dataclass(frozen=True)
class Chunk:
    """A passage that is embedded, retrieved and cited. An FAQ pair is always exactly one chunk."""

    id: str  # stable: derived from the source and the text, see chunk_id()
    source: str  # the Source uri
    location: str
    text: str
    faq: FaqPair | None = None

    @property
    def is_faq(self) -> bool:
        return self.faq is not None


@dataclass(frozen=True)
class Source:
    """One ingested file or web page."""

    uri: str  # absolute file path or URL
    kind: str
    title: str
    content_hash: str  # changes when the content or the chunking settings change
    size_bytes: int
    ingested_at: str  # ISO 8601, UTC
    n_chunks: int = 0
    n_faqs: int = 0


def chunk_id(source: str, text: str, seen: set[str] | None = None) -> str:
    """A 16-hex-digit id from the source and text, so an unchanged passage keeps its id across
    re-ingests (its embedding can then be reused). `seen` de-duplicates repeats within a source.

    >>> chunk_id("faq.csv", "Q: Hours?\\nA: 9-5") == chunk_id("faq.csv", "Q: Hours?\\nA: 9-5")
    True
    """
    base = hashlib.sha256(f"{source}\x00{text}".encode()).hexdigest()[:16]
    if seen is None:
        return base
    cid, n = base, 1
    while cid in seen:
        n += 1
        cid = f"{base}-{n}"
    seen.add(cid)
    return cid
