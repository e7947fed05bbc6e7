"""The two thresholds of the rag path, measured on the knowledge base itself for its search model,
when the settings leave them at "auto" (the default).

Cosines are not comparable across embedding models (MiniLM and MPNet put the same pair of texts at
different cosines), nor across businesses (a knowledge base about one narrow trade has closer
passages than a general shop's). So neither threshold is a constant: each is measured on what the
knowledge base provides, never on an evaluation set.

- faq_threshold: every curated question, as written and reworded by the fine-tuning's rules
  (kb.reword), and the built-in out-of-scope questions go through the fast path's decision at
  every candidate threshold. The threshold is the lowest at which the curated answers given are
  still right for FAQ_PRECISION of them (an out-of-scope question answered is a wrong one), and
  never below the best out-of-scope match.
- refusal_threshold: the best passage's cosine for questions the documents do answer (the curated
  questions, their rewordings, questions made from the documents' own sentences) and for the
  out-of-scope questions. Below the threshold kbchat declines without asking the model, so it is
  set low: no more than IN_SCOPE_LOSS of the answerable questions fall under it, and no higher than
  the median out-of-scope question, since customers' real questions match less well than these
  probes ("What's your address?" matched the sample's address passage at 0.28 with MPNet). A writer
  that declines what the passages do not answer (rag.answer) makes this only the cheap first cut;
  for quoted answers and the small profile's SmolLM2, which never decline by themselves, the cut
  is the highest out-of-scope match instead.

The result is kept in the knowledge base folder (calibration.json) with the revision, the search
model and the writer it was measured for, and measured again when one of them changes: when the
retriever syncs its index (ingesting does that), so the first visitor does not wait for it.

    >>> calibration = thresholds(retriever)                # doctest: +SKIP
    >>> calibration.faq_threshold, calibration.refusal_threshold   # doctest: +SKIP
    (0.71, 0.18)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from kb.files import atomic_write
from kb.records import question_key

FILE = "calibration.json"
FAQ_PRECISION = 0.99  # of the rule rewordings' curated answers that must be right
IN_SCOPE_LOSS = 0.02  # of answerable questions the retrieval cut may decline
REWORDINGS = 4  # per curated question
FAQ_FLOOR = 0.5  # the fast path never answers a weaker match, whatever the probes show
# The answerability check's threshold (rag.decide): a written answer needs P(yes) at least this. A
# probability, unlike a cosine, reads the same across businesses and search models, so it is one
# number, chosen on two businesses written apart from the sample (bench/businesses, bench/decline.py
# --write): with the model's own decline it declined 0.80 and 0.84 of their out-of-scope questions
# and wrongly declined 0.04 of their answerable ones; at 0.5, 0.80 and 0.89 but 0.08. Calibrating it
# per knowledge base would need the writer to read every probe (about 10 s each on 2 cores).
ANSWERABLE = 0.45
VERSION = 6  # of the method: a stored calibration of another version is measured again


@dataclass
class Calibration:
    faq_threshold: float
    refusal_threshold: float
    revision: int
    embedder: str  # the search model's fingerprint
    figures: dict = field(default_factory=dict)  # what was measured, for the owner and the report
    version: int = VERSION
    writer: str = ""  # the answer writer setting it was measured for
    probes: list = field(default_factory=list)  # the questions it asked (question_key), which the evaluation must not
    lexical_weight: float | None = None  # the search's lexical_weight it was measured with


def thresholds(retriever) -> Calibration:
    """The stored calibration when it matches the knowledge base and search model, else a new one
    (measured and stored). The retriever must be synced."""
    store = retriever.store
    path = Path(store.dir) / FILE
    fingerprint = retriever.embedder.fingerprint
    try:
        saved = Calibration(**json.loads(path.read_text(encoding="utf-8")))
        if (saved.revision == store.revision and saved.embedder == fingerprint and saved.version == VERSION
                and saved.writer == writer(retriever.settings) and saved.lexical_weight == retriever.lexical_weight):
            return saved
    except (OSError, ValueError, TypeError):
        pass  # missing, damaged or from another version: measure again
    result = measure(retriever)
    save(store, result)
    return result


def save(store, calibration: Calibration) -> None:
    text = json.dumps(asdict(calibration), indent=1)
    try:
        atomic_write(Path(store.dir) / FILE, lambda f: f.write(text.encode("utf-8")))
    except OSError:
        pass  # a read-only folder: the figures hold for this process anyway


def owner_rewordings(faqs) -> list[tuple[str, str]]:
    """(question, the curated question it asks): each curated question reworded by kb.reword's rules,
    REWORDINGS times, never as the evaluation asks it (kb.reword.evaluation_rewording) nor as
    another curated question."""
    from kb.reword import evaluation_rewording, reword

    curated = {question_key(f.question) for f in faqs}
    out: list[tuple[str, str]] = []
    for f in faqs:
        asked_by_evaluation = question_key(evaluation_rewording(f.question, curated) or "")
        fresh = [q for q in reword(f.question, REWORDINGS + 1)
                 if question_key(q) not in curated and question_key(q) != asked_by_evaluation]
        out += [(q, question_key(f.question)) for q in fresh[:REWORDINGS]]
    return out


def measure(retriever) -> Calibration:
    from rag.questions import CALIBRATION_OUT_OF_SCOPE, document_questions

    store = retriever.store
    chunks = store.chunks()
    faqs = [c.faq for c in chunks if c.faq]
    rewordings = [(f.question, question_key(f.question)) for f in faqs] + owner_rewordings(faqs)
    document = [q.question for q in document_questions([c for c in chunks if not c.faq], part="calibration")]
    outside_probes = list(CALIBRATION_OUT_OF_SCOPE)
    asked = [q for q, _ in rewordings] + outside_probes + document
    probed = retriever.probe(asked)
    n_reworded, n_outside = len(rewordings), len(outside_probes)
    wants = [want for _, want in rewordings] + [""] * n_outside  # "": no curated answer is right

    # The fast path at every threshold: (score, right?) of each probe it would answer.
    decided = [(score, question_key(chunk.faq.question) == want)
               for (chunk, score, fast, _), want in zip(probed, wants) if fast]
    worst_outside = max((score for _, score, _, _ in probed[n_reworded:n_reworded + n_outside]), default=0.0)
    faq_threshold = max(_lowest_precise(decided, FAQ_PRECISION), FAQ_FLOOR, worst_outside + 0.01)
    given = [right for score, right in decided if score >= faq_threshold]

    best = [cosine for *_, cosine in probed]
    outside = np.array(best[n_reworded:n_reworded + n_outside])
    inside = np.array(best[:n_reworded] + best[n_reworded + n_outside:])
    # Quotes and SmolLM2-135M never decline by themselves, so for them the cut must catch every
    # out-of-scope probe it can; a writer that declines needs only the cheap half.
    quantile = 1.0 if not writes_declines(retriever.settings) else 0.5
    refusal = 0.0
    if len(inside) > 1:
        refusal = max(0.0, round(float(min(np.quantile(inside, IN_SCOPE_LOSS), np.quantile(outside, quantile) + 0.01 * quantile)), 3))
    figures = {
        "faq_probes": n_reworded, "faq_given": len(given), "faq_wrong": given.count(False),
        "answerable_probes": int(len(inside)), "answerable_below": int((inside < refusal).sum()),
        "outside_probes": n_outside, "outside_below": int((outside < refusal).sum()),
    }
    return Calibration(round(faq_threshold, 3), refusal, store.revision, retriever.embedder.fingerprint, figures,
                       writer=writer(retriever.settings), probes=sorted({question_key(q) for q in asked}),
                       lexical_weight=retriever.lexical_weight)


def writes_declines(settings) -> bool:
    """Whether the rag path's answers can decline by themselves: a model that writes, other than
    the packaged SmolLM2-135M (which answers whatever it is given). Quoted answers never do."""
    return bool(settings.models.generator) and not settings.quotes


def writer(settings) -> str:
    """What the answers are made by, as the calibration records it."""
    return f"{settings.models.generator}{' (quoted)' if settings.quotes else ''}"


def _lowest_precise(decided: list[tuple[float, bool]], precision: float) -> float:
    """The lowest score s such that, of the decisions scoring s or more, at least `precision` are
    right; 1.0 when even the best-scoring one is wrong or there is none."""
    best = 1.0
    right = total = 0
    for score, ok in sorted(decided, key=lambda t: -t[0]):
        right, total = right + ok, total + 1
        if right / total >= precision:
            best = score
    return best
