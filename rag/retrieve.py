"""Hybrid retrieval: dense vectors first, BM25 and the question's own numbers as small boosts, and the
FAQ fast path.

Fusion rule (see `fuse`): score = cosine + LEXICAL_WEIGHT * bm25 / max_bm25 + NUMBER_WEIGHT * the
share of the question's numbers the passage has, over the union of the dense and BM25 candidates,
every candidate scored by all three (its exact cosine is read from the index). Cosine stays the main
signal; the boosts only re-order passages whose cosines are close, which is where an exact price,
name or phone number should win. Reciprocal rank fusion was measured and rejected:
it throws away how far apart the scores are, and on paraphrased FAQ questions it let a weak BM25
list pull the right answer down (top-1 0.95 -> 0.85 on a public FAQ paraphrase set).

    >>> retriever = Retriever(store, settings)             # doctest: +SKIP
    >>> [h.chunk.location for h in retriever.search("how much is a taster session", 3)]  # doctest: +SKIP
    >>> retriever.match_faq("when do you open")             # doctest: +SKIP
    (Chunk(..., faq=FaqPair(question='What are your opening hours?', ...)), 0.83)
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from kb import corrections
from kb.errors import BadInput
from kb.records import Chunk, FaqPair, question_key
from kb.settings import Settings
from kb.store import Store
from rag.embed import Embedder
from rag.facts import facts
from rag.grounding import numbers, terms
from rag.index import VectorIndex
from rag.lexical import Lexical, lexical_for
from rag.pgindex import PgVectorIndex
from rag.vectors import HNSW_THRESHOLD, SyncReport, VectorIndexBase, faq_answer, faq_question, passage_text

# The default of the `lexical_weight` setting: 0.05 (0 is dense only). Measured per set against
# plain cosine (bench/retrieval.py, quality profile, hit@1): at 0.05 kbchat's search is level with
# or ahead of the better plain cosine on every set at hand (sample FAQ rewordings 0.675 = 0.675,
# sample document questions 0.697 > 0.636, covidqa 0.848 > 0.828, the two businesses written apart
# 0.958 = 0.958 and 1.000 = 1.000); at 0.15 it was behind on both businesses (0.875 and 0.875), and
# the team's check on real customer queries found the word boost behind plain cosine too. The
# weight moves the passages the answerability check reads, so it was measured with the decline
# (bench/decline.py --lexical-weight, 272 questions of three businesses): 0.05 declined one more
# out-of-scope question than 0.15 and wrongly declined the same number of answerable ones. Since
# the search model runs in bfloat16 (fast_search), plain cosine ranks one more groomer question
# right (1.000) and kbchat is one behind ("What cards do you take?" finds the loyalty card); 0.03
# would be level everywhere, but its whole answers gave two made-up answers 0.05 declines (README,
# "How well search ranks").
LEXICAL_WEIGHT = Settings().answers.lexical_weight
# A question that quotes a price, a phone number, an order or model number ("the $31 clay", "order
# 4471") means the passage that has it. Small counts do not: "my 9 year old", "week 3 of my course"
# describe the customer, and on sample_data's reworded FAQ questions a boost for them cost 3 of 117
# right FAQs. So the question's facts (rag.facts: phones, codes, e-mails, web addresses, numbers)
# count, except plain numbers of one or two digits not after a currency sign (`lookup_values`). The boost carries exact values without the word boost (with lexical_weight
# 0.05 "Speckled Brown $31" still finds the $31 price); 0.1 lets the passage with the value win a
# near-tie, never a clear dense lead.
NUMBER_WEIGHT = 0.1
_CURRENCY = re.compile(r"[$€£]\s?(\d[\d,]*(?:\.\d+)?)")
CANDIDATES = 50  # from each of dense and BM25; the fused top-k is re-ranked within their union
FAQ_CANDIDATES = 10  # from each of the curated-question and curated-answer indexes
QUERIES_KEPT = 4  # embeddings of the last texts asked about (a follow-up asks about three)


def open_index(store: Store, name: str = "passages", text_of: Callable[[Chunk], str | None] = passage_text,
               hnsw_threshold: int = HNSW_THRESHOLD, label: str = "") -> VectorIndexBase:
    """The vector index of a knowledge base: FAISS files in its folder (rag.index), or a pgvector
    table when its store is in PostgreSQL (rag.pgindex)."""
    if store.db.kind == "postgres":
        return PgVectorIndex(store, name, text_of, hnsw_threshold, label)
    return VectorIndex(store.dir, name, text_of, hnsw_threshold, label)


@dataclass
class Hit:
    chunk: Chunk
    score: float  # the fused score the hits are ranked by
    dense: float | None  # cosine of the question and the passage
    lexical: float | None  # raw BM25 score; 0.0 when no query word is in the passage


def close_to_best(hits: list[Hit], margin: float, keep: int = 2) -> list[Hit]:
    """The hits worth the writer's reading: the first `keep`, and any other whose cosine is within
    `margin` of the first one's (AnswerSettings.passage_margin).

    >>> hits = [Hit(None, s, s, 0.0) for s in (0.71, 0.66, 0.60, 0.52, None)]
    >>> [h.dense for h in close_to_best(hits, 0.15)]
    [0.71, 0.66, 0.6]
    """
    if not hits or hits[0].dense is None:
        return hits
    floor = hits[0].dense - margin
    return [h for i, h in enumerate(hits) if i < keep or (h.dense is not None and h.dense >= floor)]


def fuse(dense: float, bm25: float, bm25_max: float, weight: float = LEXICAL_WEIGHT, numbers_share: float = 0.0) -> float:
    """Cosine plus a bounded BM25 bonus (at most `weight`) and a bounded bonus for the question's
    numbers in the passage (at most NUMBER_WEIGHT, none when `weight` is 0), so exact words and
    numbers decide between passages whose cosines are close, never overturn a clear dense winner.

    >>> round(fuse(0.62, 4.0, 8.0, weight=0.1), 3), round(fuse(0.60, 8.0, 8.0, weight=0.1), 3)
    (0.67, 0.7)
    >>> round(fuse(0.50, 4.0, 8.0, weight=0.05, numbers_share=1.0), 3)
    0.625
    """
    number = NUMBER_WEIGHT * numbers_share if weight > 0 else 0.0
    return dense + (weight * bm25 / bm25_max if bm25_max > 0 else 0.0) + number


class Retriever:
    """Searches one knowledge base. Cheap to build; the embedding model loads on the first search,
    and the indexes are synced with the store whenever its revision moves."""

    def __init__(
        self,
        store: Store,
        settings: Settings | None = None,
        lexical_weight: float | None = None,
        faq_threshold: float | None = None,
        hnsw_threshold: int = HNSW_THRESHOLD,
    ):
        self.store = store
        self.settings = settings or Settings.load(store.dir)
        self.lexical_weight = self.settings.answers.lexical_weight if lexical_weight is None else lexical_weight
        self._faq_threshold = self.settings.answers.faq_threshold if faq_threshold is None else faq_threshold
        self._refusal_threshold = self.settings.answers.refusal_threshold
        self._answerable_threshold = self.settings.answers.answerable_threshold
        self._calibration = None
        if self.lexical_weight < 0:
            raise BadInput(f"lexical_weight must be 0 or more, not {self.lexical_weight}.")
        self.embedder = Embedder(self.settings)
        self.passages = open_index(store, "passages", hnsw_threshold=hnsw_threshold, label="passage index")
        self.faqs = open_index(store, "faq", text_of=faq_question, hnsw_threshold=hnsw_threshold, label="FAQ question index")
        self.faq_answers = open_index(store, "faq_answers", text_of=faq_answer, hnsw_threshold=hnsw_threshold,
                                      label="FAQ answer index")
        self.lexical: Lexical | None = None
        self.messages: list[str] = []  # what the last sync had to fix or update, for the caller to show
        self._synced_revision: int | None = None
        self._lock = threading.RLock()
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()  # the last few embedded, see query_vector

    def query_vector(self, query: str) -> np.ndarray:
        """The question's embedding. One answer asks for it several times (FAQ match, search,
        quoting, relevance checks), and a follow-up for the message, its chat's topic and both
        together in turn, so the last few are kept: each text is embedded once."""
        with self._lock:
            if query in self._queries:
                self._queries.move_to_end(query)
            else:
                self._queries[query] = self.embedder.embed_one(query)
                if len(self._queries) > QUERIES_KEPT:
                    self._queries.popitem(last=False)
            return self._queries[query]

    def sync(self) -> list[str]:
        """Bring the vector indexes, BM25 and the calibrated thresholds in line with the store;
        returns what was done, in words (empty when nothing changed). Search calls this itself when
        the store moved."""
        with self._lock:
            revision = self.store.revision
            chunks = self.store.chunks()
            reports: list[SyncReport] = [
                self.passages.sync(self.store, self.embedder, chunks),
                self.faqs.sync(self.store, self.embedder, chunks),
                self.faq_answers.sync(self.store, self.embedder, chunks),
            ]
            self.lexical = lexical_for(self.store, chunks)
            self._synced_revision = revision
            self.messages = [r.message for r in reports if r.message]
            if self._faq_threshold is None or self._refusal_threshold is None:
                self.calibration()  # measured here, with the index: ingesting does it, not the first visitor
            return self.messages

    def status(self) -> dict:
        """What the saved search index holds and whether it matches the knowledge base, read from
        disk without loading the embedding model (for the app's Knowledge page)."""
        with self._lock:
            revision = self.store.revision
            current = self._synced_revision == revision  # in memory already: no need to read the disk
            indexes = (self.passages, self.faqs, self.faq_answers)
            problems = [] if current else [p for p in (i.load() for i in indexes) if p]
            chunks = self.store.chunks()
            want_faqs = sum(1 for c in chunks if faq_question(c) is not None)
            want_answers = sum(1 for c in chunks if faq_answer(c) is not None)
            up_to_date = (not problems and len(self.passages) == len(chunks) and len(self.faqs) == want_faqs
                          and len(self.faq_answers) == want_answers
                          and (not chunks or all(i.revision == revision for i in indexes)))
            return {"passages": len(self.passages), "faqs": len(self.faqs), "kind": self.passages.kind,
                    "up_to_date": up_to_date, "problems": problems, "want_passages": len(chunks), "want_faqs": want_faqs}

    def _ensure_synced(self) -> None:
        if self._synced_revision is None or self._synced_revision != self.store.revision:
            self.sync()

    def search(self, query: str, k: int = 5, mode: str = "hybrid") -> list[Hit]:
        """The k best passages for a question. `mode` "dense" or "lexical" uses one signal only
        (for evaluation)."""
        if mode not in ("hybrid", "dense", "lexical"):
            raise BadInput(f"Search mode must be 'hybrid', 'dense' or 'lexical', not {mode!r}.")
        if not query.strip() or k <= 0:
            return []
        self._ensure_synced()
        if not self.lexical.ids:
            return []  # an empty knowledge base: no need to load the model
        with self._lock:
            ranked = self._rank(query, k, mode, None if mode == "lexical" else self.query_vector(query))
        chunks = {c.id: c for c in self.store.get_chunks([cid for cid, *_ in ranked])}
        return [Hit(chunks[cid], score, dense, lex) for cid, score, dense, lex in ranked if cid in chunks]

    def _rank(self, query: str, k: int, mode: str, qvec) -> list[tuple[str, float, float | None, float | None]]:
        lexical = self.lexical
        bm25 = lexical.scores(query) if mode != "dense" else None
        if mode == "lexical":
            top = [i for i in np.argsort(-bm25, kind="stable")[:k] if bm25[i] > 0]
            return [(lexical.ids[i], float(bm25[i]), None, float(bm25[i])) for i in top]
        dense_hits = self.passages.search(qvec, max(k, CANDIDATES))
        if mode == "dense":
            return [(cid, s, s, None) for cid, s in dense_hits[:k]]
        candidates = dict(dense_hits)
        bm25_max = float(bm25.max(initial=0.0))
        if bm25_max > 0:
            for i in np.argsort(-bm25, kind="stable")[:CANDIDATES]:
                if bm25[i] > 0:
                    candidates.setdefault(lexical.ids[i], None)
            missing = [cid for cid, s in candidates.items() if s is None]
            candidates.update(zip(missing, self.passages.scores(qvec, missing)))
        row = lexical.row
        shares = self._number_shares(query, list(candidates)) if self.lexical_weight > 0 else {}
        fused = []
        for cid, cos in candidates.items():
            if cos is None:  # in BM25 but not embedded: cannot happen after a sync, skip rather than guess
                continue
            lex = float(bm25[row[cid]]) if cid in row else 0.0
            fused.append((cid, fuse(cos, lex, bm25_max, self.lexical_weight, shares.get(cid, 0.0)), cos, lex))
        fused.sort(key=lambda t: -t[1])
        return fused[:k]

    def _number_shares(self, query: str, chunk_ids: list[str]) -> dict[str, float]:
        """For a question that quotes exact values (`lookup_values`): the share of them each passage
        has ({} without any)."""
        wanted = lookup_values(query)
        if not wanted:
            return {}
        return {c.id: len(wanted.intersection(facts(c.text))) / len(wanted) for c in self.store.get_chunks(chunk_ids)}

    def cosines(self, text: str, chunk_ids: list[str]) -> list[float]:
        """The cosine of a text with each of these passages (0.0 for one not in the index)."""
        self._ensure_synced()
        vector = self.query_vector(text)
        with self._lock:
            return [c or 0.0 for c in self.passages.scores(vector, chunk_ids)]

    def match_faq(self, query: str) -> tuple[Chunk, float] | None:
        """The curated FAQ that best matches this question, with its score (see `_match_faq`); None
        when the knowledge base has no FAQs. The caller compares the score with `faq_threshold`."""
        if not query.strip():
            return None
        self._ensure_synced()
        with self._lock:
            return self._match_faq(self.query_vector(query))

    def _match_faq(self, qvec) -> tuple[Chunk, float] | None:
        """The best FAQ by the mean of the question's cosines to the FAQ's question, its answer and
        the whole pair as indexed (two when the answer is empty). Customers rarely word a question
        the way the owner did, and the answer often shares more with it: on the reworded questions
        of sample_data, MiniLM ranks the right FAQ first for 56% of them by the curated question
        alone and for 70% by this mean (bench/ceiling.py). When the same question is in several FAQ
        files (the owner corrected an answer in kbchat), the owner's own answer (kb/corrections.py)
        wins."""
        candidates = dict.fromkeys(cid for index in (self.faqs, self.faq_answers)
                                   for cid, _ in index.search(qvec, FAQ_CANDIDATES))
        ids = list(candidates)
        scored = [(score, cid) for cid, score in zip(ids, self.faq_scores(qvec, ids)) if score is not None]
        if not scored:
            return None
        best = max(score for score, _ in scored)
        tied = [cid for score, cid in scored if score >= best - 1e-5]
        chunks = self.store.get_chunks(tied)
        if not chunks:
            return None
        owner = [c for c in chunks if Path(c.source).name == corrections.FILE]
        return (owner or chunks)[0], best

    def faq_scores(self, qvec, chunk_ids: list[str]) -> list[float | None]:
        """Each passage's FAQ match score (see `_match_faq`): the mean of the question's cosines to
        its curated question, its answer and the pair as indexed; None for a passage that is not a
        curated FAQ entry."""
        columns = [index.scores(qvec, chunk_ids) for index in (self.faqs, self.faq_answers, self.passages)]
        out: list[float | None] = []
        for cosines in zip(*columns):
            present = [c for c in cosines if c is not None]
            out.append(sum(present) / len(present) if cosines[0] is not None else None)  # every FAQ has a question
        return out

    def faq_answer(self, query: str) -> tuple[Chunk, float] | None:
        """The fast path's decision: `faq_candidate`, kept when its match reaches `faq_threshold`."""
        match = self.faq_candidate(query)
        return match if match is not None and match[1] >= self.faq_threshold else None

    def faq_candidate(self, query: str) -> tuple[Chunk, float] | None:
        """The curated FAQ the fast path would answer with at any threshold: the best match
        (match_faq), when hybrid passage search also ranks that FAQ first (two signals agreeing
        halves the wrong curated answers at the same threshold, bench/retrieval.py) and the customer
        asks the same question (`same_question`). The question is embedded once for all of it: this
        is the path that must answer in milliseconds."""
        if not query.strip():
            return None
        self._ensure_synced()
        with self._lock:
            qvec = self.query_vector(query)
            return self._fast_path(query, qvec, self._match_faq(qvec))

    def _fast_path(self, query: str, qvec, match: tuple[Chunk, float] | None) -> tuple[Chunk, float] | None:
        if match is None or not same_question(query, match[0].faq):
            return None
        top = self._rank(query, 1, "hybrid", qvec)
        if not top:
            return None
        if top[0][0] == match[0].id:
            return match
        # The same question in another FAQ file ranked first: the signals still agree.
        first = self.store.get_chunks([top[0][0]])
        same = first and first[0].faq and question_key(first[0].faq.question) == question_key(match[0].faq.question)
        return match if same else None

    def probe(self, questions: list[str]) -> list[tuple[Chunk | None, float, bool, float]]:
        """For calibration (rag.calibrate), for each question: its best curated FAQ and the match
        score (None, 0.0 without FAQs), whether the fast path would give that FAQ at any threshold
        (faq_candidate), and the cosine of the passage hybrid search ranks first, which the rag
        path compares with refusal_threshold. The questions are embedded in one batch."""
        self._ensure_synced()
        if not questions or not self.lexical.ids:
            return [(None, 0.0, False, 0.0) for _ in questions]
        vectors = self.embedder.embed(questions)
        out = []
        with self._lock:
            for query, qvec in zip(questions, vectors):
                match = self._match_faq(qvec)
                top = self._rank(query, 1, "hybrid", qvec)
                out.append((match[0] if match else None, match[1] if match else 0.0,
                            self._fast_path(query, qvec, match) is not None, top[0][2] if top else 0.0))
        return out

    # -- thresholds -------------------------------------------------------------------------------
    @property
    def faq_threshold(self) -> float:
        return self._faq_threshold if self._faq_threshold is not None else self.calibration().faq_threshold

    @property
    def refusal_threshold(self) -> float:
        return self._refusal_threshold if self._refusal_threshold is not None else self.calibration().refusal_threshold

    @property
    def answerable_threshold(self) -> float:
        """The least P(yes) of the answerability check (rag.decide) for a written answer."""
        if self._answerable_threshold is not None:
            return self._answerable_threshold
        from rag.calibrate import ANSWERABLE

        return ANSWERABLE

    def calibration(self):
        """The thresholds measured on this knowledge base for this search model (rag.calibrate)."""
        from rag import calibrate

        self._ensure_synced()
        with self._lock:
            if self._calibration is None or self._calibration.revision != self.store.revision:
                self._calibration = calibrate.thresholds(self)
            return self._calibration


def lookup_values(question: str) -> set[str]:
    """The facts of a question (rag.facts, in their compared form) that name an exact value to look
    up: amounts after a currency sign, phones, codes, times and numbers of 3 or more digits, not
    small counts.

    >>> sorted(lookup_values("Is the Speckled Brown $31 now? My 9 year old asked, order 4471."))
    ['31', '4471']
    """
    money = {m.replace(",", "") for m in _CURRENCY.findall(question)}
    return {key for key in facts(question) if key in money or not key.isdigit() or len(key) >= 3}


def same_question(question: str, faq: FaqPair, vocabulary: set[str] | None = None) -> bool:
    """Whether a curated answer answers this question as asked: every number of the customer's
    question is in the curated question or its answer, and so is every fact word that the knowledge
    base uses elsewhere (`vocabulary`; all fact words when it is None). "How much is grooming for a
    rabbit?" is not "How much is grooming for a cat or a dog?" when the price list also lists
    rabbits, however alike the two read to an embedding model; words the business never uses
    ("guys", "newbie") neither make nor break a match."""
    pair = f"{faq.question} {faq.answer}"
    if not numbers(question) <= numbers(pair):
        return False
    known = set(terms(pair))
    return all(t in known for t in terms(question) if vocabulary is None or t in vocabulary)
