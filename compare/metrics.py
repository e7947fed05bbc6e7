"""How answers are scored when answer paths are compared, and how sure the comparison is.

- `has_fact`: does the answer state the expected fact ("$1,200.00" counts as "1200 dollars")?
- `token_f1`: how many words the answer shares with the reference answer, balancing extra and
  missing words (1.0 = the same words, 0.0 = none in common).
- `rouge_l`: how much of the reference answer appears in the answer in the same order.
- `style_similarity`: how close the answer's voice is to the reference answer's, whatever the facts:
  function words, pronouns, contractions and punctuation (stylometry).
- `looks_refused`: did the answer decline ("I don't have that information", the owner's fallback)?
- `bootstrap_ci`: the range the average score would likely fall in on another set of questions.
- `paired_test`: could the gap between two paths on the same questions be luck (the p-value)?
- `mean`, `percentile`: averages and spreads, e.g. the 95th-percentile answer time.

Facts are compared after `normalize`, which writes numbers, times and punctuation one way:

    >>> normalize("Open 10a.m.–9 P.M., $1,200.00!")
    'open 10 am-9 pm 1200'
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

Value = float | bool | None

_QUOTES = str.maketrans({"‘": "'", "’": "'", "ʼ": "'", "′": "'", "“": '"', "”": '"', "„": '"', "″": '"',
                         "–": "-", "—": "-", "‒": "-", "―": "-", "−": "-", "‐": "-", "‑": "-"})
_AM_PM_DOTS = re.compile(r"(?<![a-z])([ap])\.\s?m\b\.?")  # "a.m." -> "am", also in "10a.m."
_CURRENCY = re.compile(r"[$€£¥₹]")
_THOUSANDS = re.compile(r"(?<![\d,.])\d{1,3}(?:,\d{3})+(?![\d,]?\d)")  # "1,200" but not "1,2"
_DECIMAL = re.compile(r"(?<![\d.])(\d+)\.(\d+)(?!\.?\d)")  # "12.50" but not "1.2.3"
_GLUED_AM_PM = re.compile(r"(\d)(am|pm)\b")  # "10am" -> "10 am"
_ON_THE_HOUR = re.compile(r"\b(\d{1,2}):00 (am|pm)\b")  # "9:00 am" -> "9 am"
# Punctuation becomes a space, except "." and ":" inside a number (12.5, 5:30), "%" and "-".
_PUNCT = re.compile(r"(?<!\d)[.:]|[.:](?!\d)|[^\w\s.:%-]|_")
_LOOSE_DASH = re.compile(r"(?<![^\W_])-|-(?![^\W_])")  # a dash not between two letters or digits
_ARTICLES = frozenset({"a", "an", "the"})
# Words that end a range, so "10 am to 9 pm" and "10am-9pm" (or "mon to fri", "mon-fri") match.
_RANGE_ENDS = frozenset(
    """am pm noon midnight monday tuesday wednesday thursday friday saturday sunday
    mon tue tues wed thu thur thurs fri sat sun""".split()
)

# -- comparing text ---------------------------------------------------------------------------------
def normalize(text: str) -> str:
    """The text written one way, for comparing facts: lower case, one kind of quote and dash, no
    currency symbols or thousands separators, no trailing decimal zeros, "am"/"pm" as separate words,
    "9:00 am" as "9 am", apostrophes dropped ("don't" -> "dont"), other punctuation as spaces.
    A hyphen stays only between two letters or digits ("drop-in", "10 am-9 pm").

    >>> normalize("$1,200.00"), normalize("12.50 €"), normalize("5:30PM"), normalize("Open 10am–9pm!")
    ('1200', '12.5', '5:30 pm', 'open 10 am-9 pm')
    """
    s = text.lower().translate(_QUOTES)
    s = _AM_PM_DOTS.sub(r"\1m", s)
    s = _CURRENCY.sub("", s)
    s = _THOUSANDS.sub(lambda m: m.group().replace(",", ""), s)
    s = _DECIMAL.sub(lambda m: m[1] if not m[2].strip("0") else f"{m[1]}.{m[2].rstrip('0')}", s)
    s = _GLUED_AM_PM.sub(r"\1 \2", s)
    s = re.sub(r"(\d)\s+%", r"\1%", s)
    s = s.replace("'", "")
    s = _PUNCT.sub(" ", s)
    s = _LOOSE_DASH.sub(" ", s)
    s = " ".join(s.split())
    return _ON_THE_HOUR.sub(r"\1 \2", s)


def _is_range_end(word: str) -> bool:
    return word[:1].isdigit() or word in _RANGE_ENDS


def _fact_tokens(text: str) -> list[str]:
    """normalize()d words split on spaces and hyphens, with a range's "to" dropped, so "10am-9pm",
    "10 am - 9 pm" and "10 am to 9 pm" all read ['10', 'am', '9', 'pm']."""
    words = [w for w in re.split(r"[\s-]+", normalize(text)) if w]
    return [
        w for i, w in enumerate(words)
        if not (w == "to" and 0 < i < len(words) - 1 and _is_range_end(words[i - 1]) and _is_range_end(words[i + 1]))
    ]


def has_fact(answer: str, expected: str | list[str]) -> bool:
    """Whether the answer states any of the expected strings, as whole words after normalize():
    "$1,200.00" is found in "It is 1200 dollars", but "1" is not found in "$10"."""
    have = _fact_tokens(answer)
    for want in [expected] if isinstance(expected, str) else expected:
        need = _fact_tokens(want)
        if need and any(have[i : i + len(need)] == need for i in range(len(have) - len(need) + 1)):
            return True
    return False


def tokens(text: str) -> list[str]:
    """The words token_f1 counts: normalize()d, split on spaces and hyphens, without a/an/the.
    Numbers keep their "." and ":" and "%" so that 12.5 is not 125.

    >>> tokens("The cat's 2-hour class: $12.50!")
    ['cats', '2', 'hour', 'class', '12.5']
    """
    return [w for w in re.split(r"[\s-]+", normalize(text)) if w and w not in _ARTICLES]


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD's token F1: the words both share (counting repeats), as the harmonic mean of the share
    of the prediction's words that are right and the share of the reference's words it covers."""
    pred, ref = tokens(prediction), tokens(reference)
    if not pred or not ref:
        return float(pred == ref)  # both empty: nothing to disagree on
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


@lru_cache(maxsize=1)
def _rouge_scorer():
    from rouge_score import rouge_scorer  # loads nltk's stemmer: only when ROUGE is asked for

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (longest common word subsequence), from rouge-score with Porter stemming."""
    if not prediction.strip() or not reference.strip():
        return 0.0
    return float(_rouge_scorer().score(reference, prediction)["rougeL"].fmeasure)


# Style: the words and marks that carry a writer's voice rather than the facts. Stylometry identifies
# authors by the frequencies of function words (Mosteller & Wallace 1964, the Federalist papers;
# Burrows 2002, "Delta"), because they do not depend on the topic; cosine distance over them works
# best of the Delta measures (Smith & Aldridge 2011; Evert et al. 2017). The facts are content words,
# scored separately (has_fact, token_f1), so this measure sees what they cannot: "we" or "the studio",
# "you'll" or "you will", "!" or ".", a greeting, a question back.
_FUNCTION_WORDS = tuple("""
i me my mine we us our ours you your yours he him his she her it its they them their this that these those
a an the and but or so because if then than as of in on at by for with about from to into over after before
until while during up down out off again just only also too very really quite rather almost always never
often sometimes usually still already even not no yes nor all any both each every few more most other some
such own same can could will would shall should may might must do does did have has had be is am are was were
been being there here what which who whom whose when where why how please thanks thank welcome sorry happy
glad hi hello hey sure absolutely unfortunately however though although""".split())
_CONTRACTION = re.compile(r"[a-z]'(?:s|re|ll|ve|d|m|t)\b")
_STYLE_MARKS = ("!", "?", ",", ";", ":", "(", "...", "-", "\n")
_STYLE_INDEX = {w: i for i, w in enumerate(_FUNCTION_WORDS)}
_CITATION = re.compile(r"\s*\[\d+\]")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def style_vector(text: str) -> np.ndarray:
    """Counts of each function word, contractions and punctuation marks in the text (citation
    marks like [1] left out: the owner's answers have none)."""
    text = _CITATION.sub("", str(text)).translate(_QUOTES).lower()
    v = np.zeros(len(_FUNCTION_WORDS) + 1 + len(_STYLE_MARKS))
    for word in _WORD.findall(text):
        base = word.split("'")[0]
        if base in _STYLE_INDEX:
            v[_STYLE_INDEX[base]] += 1
    v[len(_FUNCTION_WORDS)] = len(_CONTRACTION.findall(text))
    for i, mark in enumerate(_STYLE_MARKS, start=len(_FUNCTION_WORDS) + 1):
        v[i] = text.count(mark)
    return v


def style_similarity(prediction: str, reference: str) -> float | None:
    """Cosine similarity (0..1) of the two texts' style vectors: 1 = the same mix of function words,
    contractions and punctuation. None when either text has none of them (nothing to compare).

    >>> round(style_similarity("We'd love to see you! Just bring your own apron.", "We'll see you there! Bring your towel."), 2)
    0.72
    >>> round(style_similarity("The room is $150 for three hours [1].", "Hi! Sure, you can rent it - it's $150 :)"), 2)
    0.0
    """
    a, b = style_vector(prediction), style_vector(reference)
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if not na or not nb:
        return None
    return float(a @ b / (na * nb))


def looks_refused(text: str, fallback: str = "") -> bool:
    """Whether an answer declines: it contains the owner's fallback message, or a usual refusal
    ("I don't have that information", "I'm not sure", "as an AI", ...). The answer path uses the
    same recognizer (rag.decide.is_decline), so a decline is counted the way it was made."""
    from rag.decide import is_decline

    return is_decline(text, fallback)


# -- numbers over many questions --------------------------------------------------------------------
def _present(values: Sequence[Value]) -> list[float]:
    return [float(v) for v in values if v is not None]


def mean(values: Sequence[Value]) -> float | None:
    """The average, skipping None (a question a path could not score); None when nothing is left."""
    kept = _present(values)
    return sum(kept) / len(kept) if kept else None


def percentile(values: Sequence[Value], q: float) -> float | None:
    """numpy's linear percentile (q in 0..100), skipping None; None when nothing is left."""
    kept = _present(values)
    return float(np.percentile(kept, q)) if kept else None


def bootstrap_ci(
    values: Sequence[Value], confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float] | None:
    """A percentile-bootstrap interval for the mean (None entries skipped), the same for the same
    seed. Identical values give (v, v): no resample can differ, and scipy would return nan."""
    from scipy.stats import bootstrap

    kept = np.asarray(_present(values))
    if kept.size == 0:
        return None
    m = float(kept.mean())
    if np.all(kept == kept[0]):
        return (m, m)
    res = bootstrap(
        (kept,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
        method="percentile", rng=np.random.default_rng(seed),
    )
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    # Percentile bounds can miss the mean on tiny or skewed samples (and are nan if every resample
    # came out equal); a report reads "mean (lo-hi)", so the interval always holds the mean.
    return (m if math.isnan(lo) else min(lo, m), m if math.isnan(hi) else max(hi, m))


def paired_test(a: Sequence[Value], b: Sequence[Value]) -> dict:
    """Whether two paths differ on the same questions (a[i] and b[i] score question i), by the exact
    McNemar test for right/wrong scores and the Wilcoxon signed-rank test otherwise. Pairs with a
    None are skipped. p_value is 1.0 when the paths never disagree.

    >>> paired_test([1] * 10, [0] * 10)["p_value"]  # 2 * 0.5**10
    0.001953125
    """
    from scipy.stats import binomtest, wilcoxon

    if len(a) != len(b):
        raise ValueError(f"paired_test needs one score per question from each path; got {len(a)} and {len(b)}")
    pairs = [(float(x), float(y)) for x, y in zip(a, b) if x is not None and y is not None]
    a_better = sum(x > y for x, y in pairs)
    b_better = sum(y > x for x, y in pairs)
    if all(x in (0.0, 1.0) and y in (0.0, 1.0) for x, y in pairs):
        test = "McNemar exact"
        discordant = a_better + b_better
        p = binomtest(min(a_better, b_better), discordant, 0.5).pvalue if discordant else 1.0
    else:
        test = "Wilcoxon signed-rank"
        if a_better + b_better == 0:
            p = 1.0
        else:
            p = wilcoxon([x for x, _ in pairs], [y for _, y in pairs], zero_method="wilcox").pvalue
    return {"test": test, "n": len(pairs), "p_value": float(p), "a_better": a_better, "b_better": b_better}
