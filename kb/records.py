"""The record types that flow through every stage of kbchat.

A reader turns one file or page into a `Document` (sections of text and/or FAQ pairs); the chunker
turns a Document into `Chunk`s; the store keeps Chunks and one `Source` row per file or page.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import asdict, dataclass, field


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

    kind: str  # "faq", "pdf", "markdown", "text", "html", "docx", "subtitles"
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


def question_key(text: str) -> str:
    """The comparable form of a question: case, spacing, punctuation and curly quotes ignored. The
    one rule for "the same question" everywhere: FAQ checks, owner answers, the fast path's tie,
    evaluation against training data.

    >>> question_key("What's  your ADDRESS?") == question_key("whats your address")
    True
    """
    text = unicodedata.normalize("NFKC", text).casefold().replace("\u2019", "'").replace("\u2018", "'")
    return " ".join(re.sub(r"[\W_]+", " ", text.replace("'", "")).split())


def chunk_id(source: str, text: str, seen: dict[str, int] | None = None) -> str:
    """A 16-hex-digit id from the source and text, so an unchanged passage keeps its id across
    re-ingests (its embedding can then be reused). `seen` de-duplicates repeats within a source:
    it counts each id given, and the n-th repeat of a text gets "-n" (in constant time, so a log
    of one line repeated 70,000 times chunks in a moment).

    >>> chunk_id("faq.csv", "Q: Hours?\\nA: 9-5") == chunk_id("faq.csv", "Q: Hours?\\nA: 9-5")
    True
    >>> seen = {}
    >>> [chunk_id("log.txt", "GET /", seen)[16:] for _ in range(3)]
    ['', '-2', '-3']
    """
    base = hashlib.sha256(f"{source}\x00{text}".encode()).hexdigest()[:16]
    if seen is None:
        return base
    seen[base] = n = seen.get(base, 0) + 1
    return base if n == 1 else f"{base}-{n}"


@dataclass(frozen=True)
class Citation:
    """A passage an answer relies on. `n` is the number the answer text cites it by ([1], [2])."""

    n: int
    chunk_id: str
    source: str  # the Source uri
    location: str
    snippet: str  # the cited passage, shortened for display
    score: float  # how well the passage matched the question (cosine, or fused score)


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of a conversation, as the answer paths read it: what the visitor said,
    what the bot answered, and the question search was given for it (`searched`: the visitor's
    words, or with the conversation's topic added when they did not stand alone)."""

    question: str
    answer: str
    searched: str = ""


@dataclass(frozen=True)
class Step:
    """What an answer path is doing before its words come, for whoever waits for them (a path's
    stream yields these only when asked: `stream(..., steps=True)`). `name` is one of STEP_WORDS."""

    name: str

    @property
    def words(self) -> str:
        return STEP_WORDS[self.name]


STEP_WORDS = {"searching": "Looking in our documents\u2026", "checking": "Checking our documents answer this\u2026",
              "writing": "Writing the answer\u2026"}


@dataclass(frozen=True)
class Decision:
    """What the rag path decided to do with a question, and why (rag.decide): give the curated FAQ
    answer, decline, check whether the passages answer it, or write from them."""

    action: str  # "faq", "decline", "check" or "write"
    reason: str  # in the owner's words: "Declined: the best passage matches 0.21, below this knowledge base's 0.34."
    scores: dict = field(default_factory=dict)  # what was measured: faq, passage, answerable (0..1)
    thresholds: dict = field(default_factory=dict)  # what each score was held against
    advice: str = ""  # the kind of advice the question asks for ("safety", ...): every sentence must then be the passages' own


# How an answer's text was made (Answer.method), in the owner's words: the CLI and the app show these.
METHOD_WORDS = {
    "faq": "a curated FAQ answer, word for word",
    "generated": "written by the model from your documents, citing them",
    "quoted": "quoted from your documents, without the model",
    "refused": "your fallback message: your documents do not answer this",
    "model": "the model alone, without your documents",
}


# The answer paths, by name (Answer.path): compare.paths builds them, settings and interfaces name them.
PATH_NAMES = ("rag", "base", "tuned", "rag+tuned")


@dataclass
class Answer:
    """What every answer path returns (rag, base, tuned, rag+tuned), so comparison, UI and API
    never need to know which path made it.

    `method` says how the text was made: "faq" (a curated FAQ answer, word for word), "generated"
    (written by the model from the cited passages), "quoted" (the best passage's own sentences:
    the rag_writer setting), "model" (a path without retrieval), or
    "refused" (the owner's fallback message: nothing matched, or the model found no answer in the
    passages).
    """

    path: str
    question: str
    text: str
    method: str
    citations: list[Citation] = field(default_factory=list)
    confidence: float = 0.0  # 0..1, how sure retrieval is that the knowledge base covers the question
    retrieval_ms: float = 0.0
    generation_ms: float = 0.0
    n_tokens: int = 0  # tokens the model generated (0 when it did not run)
    model: str = ""  # the model (and adapter) that wrote the text; "" when no model ran
    notes: list[str] = field(default_factory=list)  # plain words for the owner: truncation, language, staleness
    why: str = ""  # why this answer was given, declined or written, in the owner's words (rag.decide)
    held_back: list[str] = field(default_factory=list)  # written sentences not shown: facts no passage holds
    searched: str = ""  # what search was given: the question, or with the chat's topic added (rag.followup)
    language: str = "en"  # the visitor's language, which the answer is in (kb.languages)

    @property
    def refused(self) -> bool:
        return self.method == "refused"

    @property
    def from_faq(self) -> bool:
        return self.method == "faq"

    @property
    def tokens_per_s(self) -> float | None:
        return self.n_tokens / (self.generation_ms / 1000) if self.n_tokens and self.generation_ms > 0 else None

    @property
    def total_ms(self) -> float:
        return self.retrieval_ms + self.generation_ms

    def to_dict(self) -> dict:
        """A JSON-ready dict with the derived fields spelled out."""
        d = asdict(self)
        d.update(refused=self.refused, from_faq=self.from_faq, tokens_per_s=self.tokens_per_s, total_ms=self.total_ms)
        for key in ("confidence", "retrieval_ms", "generation_ms", "total_ms", "tokens_per_s"):
            if d[key] is not None:
                d[key] = round(d[key], 3 if key == "confidence" else 1)
        for c in d["citations"]:
            c["score"] = round(c["score"], 3)
        return d
