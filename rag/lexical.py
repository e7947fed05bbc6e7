"""BM25 keyword search over chunk texts, with `bm25s`.

Dense vectors blur exact strings: "$45", "(555) 314-2760" or a name like "Nandakumar" are where
keyword search earns its place. The tokenizer therefore keeps numbers (even one digit), prices
with their "$", and phone numbers as one token besides their parts.

    >>> tokenize("Call (555) 314-2760; taster $45, 2 hours")
    ['call', '5553142760', '555', '314', '2760', 'taster', '$45', '45', '2', 'hour']

The index is rebuilt in memory when the store revision changes: 10k chunks take well under a
second, so nothing is saved to disk.
"""

from __future__ import annotations

import re
import threading

import numpy as np

from kb.records import Chunk
from kb.store import Store

# A phone number: optional +1, then 3-3-4 digits with the usual separators.
_PHONE = re.compile(r"(?<!\d)(?:\+?1[\s.-]?)?\(?(\d{3})\)?[\s.-]?(\d{3})[\s.-]?(\d{4})(?!\d)")
# A price ($1,595 / $3.50), a number (3,200 / 2.5 / 50%), or a word (with inner apostrophes).
_TOKEN = re.compile(r"\$\s?\d[\d,]*(?:\.\d+)?|\d[\d,]*(?:\.\d+)?|[^\W\d_]+(?:'[^\W\d_]+)*")
_STOPWORDS = frozenset(
    """a an and are as at be but by can could did do does for from had has have how i if in into is it its
    me my of on or our so than that the their them then there these they this to was we were what when where
    which who why will with would you your i'm i'd you're we're it's don't""".split()
)


def _stem(word: str) -> str:
    """Plural and possessive endings only: "classes" finds "class", "kids'" finds "kid"; enough for
    FAQ-sized text without pulling in a stemming library."""
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    text = text.lower().replace("\u2019", "'")
    tokens: list[str] = []
    pos = 0
    for phone in _PHONE.finditer(text):
        tokens += _plain_tokens(text[pos : phone.start()])
        tokens += ["".join(phone.groups()), *phone.groups()]  # "(555) 314-2760" == "555-314-2760"
        pos = phone.end()
    tokens += _plain_tokens(text[pos:])
    return tokens


def _plain_tokens(text: str) -> list[str]:
    tokens = []
    for match in _TOKEN.finditer(text):
        tok = match.group().replace(",", "").replace(" ", "").rstrip(".")
        if tok.startswith("$"):
            tokens += [tok, tok[1:]]  # "$45" matches "$45" exactly and "45 dollars" loosely
        elif tok[0].isdigit():
            tokens.append(tok)
        elif tok not in _STOPWORDS and len(tok) > 1:
            tokens.append(_stem(tok.strip("'")))
    return tokens


class Lexical:
    """BM25 over a list of chunks; `search` gives (chunk id, BM25 score) best first."""

    def __init__(self, chunks: list[Chunk], revision: int = -1):
        import bm25s

        self.revision = revision
        self.ids = [c.id for c in chunks]
        self.row = {cid: i for i, cid in enumerate(self.ids)}  # chunk id -> position in scores()
        self._bm25 = None
        corpus = [tokenize(c.text) for c in chunks]
        if any(corpus):
            self._bm25 = bm25s.BM25()
            self._bm25.index(corpus, show_progress=False)

    def scores(self, query: str) -> np.ndarray:
        """The BM25 score of every chunk, in `self.ids` order (zeros when no query word is known)."""
        tokens = [t for t in tokenize(query) if self._bm25 is not None and t in self._bm25.vocab_dict]
        if not tokens:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        scores = self.scores(query)
        if not len(scores) or k <= 0:
            return []
        top = np.argsort(-scores, kind="stable")[:k]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]


_cache: dict[str, Lexical] = {}  # knowledge base folder -> index at some revision
_cache_lock = threading.Lock()


def lexical_for(store: Store, chunks: list[Chunk] | None = None) -> Lexical:
    """The BM25 index of a store at its current revision, built once per revision per process."""
    key = str(store.dir.resolve())
    revision = store.revision
    with _cache_lock:
        index = _cache.get(key)
        stale = index is None or index.revision != revision
        if not stale and chunks is not None:
            stale = index.ids != [c.id for c in chunks]  # a store rebuilt behind our back at the same revision
        if stale:
            index = _cache[key] = Lexical(store.chunks() if chunks is None else chunks, revision)
        return index
