"""The rag path's decision, in one place: give the curated FAQ answer, decline, or write.

`decide` is a pure function of what search found and the thresholds. The rag path (rag.answer)
calls it before the model writes; when the writer can be asked whether the passages answer the
question (the answerability check), the first call says "check" and the second, with the check's
score, says "write" or "decline". Every Decision carries its reason in an owner's words.

The rules, in order:
1. faq      the curated FAQ asked the same way (rag.retrieve.faq_candidate) matches at least `faq`.
2. decline  no passage, or the best passage matches less than `passage`: nothing is about it.
3. check    the writer can be asked, and has not been yet.
4. decline  the check found the passages do not answer it (below `answerable`).
5. write    from the passages; what is written is still checked (rag.facts, `is_decline`). A
            question asking for medical, legal, financial or safety advice (`advice`) is answered
            only in what the passages say: a sentence with a word they do not have is not shown
            (rag.grounding.unsaid), since general knowledge must not be offered in the business's
            name, and the check's yes is no proof of that (it read 0.61 for "Is porcelain clay safe
            for my toddler if she puts it in her mouth?" on the sample, 0.58 for its food-safety
            question the documents do answer).

    >>> t = Thresholds(faq=0.8, passage=0.3, answerable=0.5)
    >>> decide("Do you sell kilns?", None, [0.21], t).reason
    "Declined: the best passage matches 0.21, below this knowledge base's 0.30."
    >>> decide("Do you sell clay?", None, [0.6], t).action, decide("Do you sell clay?", None, [0.6], t, answerable=0.9).action
    ('check', 'write')

`is_decline` is the one recognizer of an answer that says it cannot answer, used by the answer
path (a model's decline becomes the owner's fallback message) and by the evaluation's metrics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kb.records import Decision

@dataclass(frozen=True)
class Thresholds:
    """What each score is held against: the FAQ match, the best passage's cosine, and P(the
    passages answer the question) from the check (None: no check, the writer cannot be asked)."""

    faq: float
    passage: float
    answerable: float | None = None


def decide(question: str, faq: tuple[str, float] | None, passages: list[float], thresholds: Thresholds,
           answerable: float | None = None) -> Decision:
    """What to do with a question. `faq` is the fast path's candidate (its curated question and its
    match) or None; `passages` the cosines of the passages search found, best first; `answerable`
    the check's P(yes) once it has run."""
    scores: dict[str, float] = {}
    limits: dict[str, float] = {"faq": thresholds.faq, "passage": thresholds.passage}
    if faq is not None:
        curated, match = faq
        scores["faq"] = round(match, 3)
        if match >= thresholds.faq:
            return Decision("faq", f"Curated answer: the question is your FAQ \"{curated}\" (match {match:.2f}, "
                                   f"{thresholds.faq:.2f} needed).", scores, limits)
    if not passages:
        return Decision("decline", "Declined: nothing in your documents matches the question.", scores, limits)
    best = passages[0]
    scores["passage"] = round(best, 3)
    if best < thresholds.passage:
        return Decision("decline", f"Declined: the best passage matches {best:.2f}, below this knowledge base's "
                                   f"{thresholds.passage:.2f}.", scores, limits)
    topic = advice(question) or ""
    only = f" It asks for {topic} advice, so only what the passages themselves say is shown." if topic else ""
    if thresholds.answerable is None:
        return Decision("write", f"Written: the best passage matches {best:.2f} ({thresholds.passage:.2f} needed).{only}",
                        scores, limits, topic)
    needed = limits["answerable"] = thresholds.answerable
    if answerable is None:
        return Decision("check", "Checking whether the passages answer the question.", scores, limits, topic)
    scores["answerable"] = round(answerable, 3)
    if answerable < needed:
        return Decision("decline", f"Declined: the check found the passages do not answer it ({answerable:.2f}, "
                                   f"{needed:.2f} needed).", scores, limits, topic)
    return Decision("write", f"Written: the check found the passages answer it ({answerable:.2f}, {needed:.2f} needed).{only}",
                    scores, limits, topic)


def written(decision: Decision, cited: list[int], held_back: int) -> str:
    """The reason of a written answer, once written: which passages it came from, what was left out.

    >>> d = Decision("write", "Written: the check found the passages answer it (0.87, 0.50 needed).")
    >>> written(d, [1, 3], 0)
    'Written from passages [1] and [3]: the check found the passages answer it (0.87, 0.50 needed).'
    """
    reason = decision.reason
    if cited:
        marks = [f"[{n}]" for n in cited]
        names = marks[0] if len(marks) == 1 else ", ".join(marks[:-1]) + " and " + marks[-1]
        reason = reason.replace("Written", f"Written from passage{'s' * (len(cited) > 1)} {names}", 1)
    if held_back:
        reason += (f" {held_back} sentence{'s' * (held_back > 1)} left out: {'they say' if held_back > 1 else 'it says'} "
                   "what your documents do not.")
    return reason


# -- advice --------------------------------------------------------------------------------------------
# Questions asking for advice a business must not give from general knowledge: health (people's and
# animals'), law, money, and whether something is safe. Matched on whole words; a business's own
# documents can still answer them, with a surer check.
_ADVICE = {
    "medical or veterinary": r"poison\w*|toxic|toxins?|allerg\w*|medic\w*|medication|drugs?|dos(?:e|age)|symptoms?|"
                             r"diagnos\w*|pregnan\w*|doctor|vets?|veterinar\w*|arthritis|asthma|infect\w*|"
                             r"ibuprofen|paracetamol|aspirin|antibiotics?|diseases?|illness|sick|injur\w*|pain|"
                             r"health|healthy|cure|heal|swallow\w*|eat(?:s|ing)? it|chok\w*",
    "legal": r"legal(?:ly)?|illegal|laws?|lawyer|attorney|sue|lawsuit|liab\w*|court|contract|permit|licen[cs]e",
    "financial": r"invest\w*|tax(?:es)?|deduct\w*|insurance|insure|loan|mortgage|stocks?|crypto\w*|bitcoin|"
                 r"retirement|pension|credit score",
    "safety": r"safe(?:ly|ty)?|unsafe|dangerous|danger|hazard\w*|harmful|risky|risks?",
}
_ADVICE_RE = {topic: re.compile(rf"\b(?:{words})\b", re.IGNORECASE) for topic, words in _ADVICE.items()}


def advice(question: str) -> str | None:
    """The kind of advice a question asks for ("medical or veterinary", "legal", "financial",
    "safety"), or None.

    >>> advice("Is chocolate poisonous to dogs?"), advice("When are you open?")
    ('medical or veterinary', None)
    """
    for topic, pattern in _ADVICE_RE.items():
        if pattern.search(question):
            return topic
    return None


# -- declines --------------------------------------------------------------------------------------------
# The ways a model says it cannot answer, matched on `_plain` text (lower case, straight quotes, no
# apostrophes: "don't" reads "dont"). Each needs "I", the assistant, or the documents as its subject,
# so "If you don't know your size, we'll help" and "You don't need to bring anything" are answers.
_DECLINE = re.compile(
    r"\b(?:documents?|texts?|sources?|passages?|information|context)\b[^.!?]{0,40}\b(?:doesnt|dont|does not|do not|no)\b"
    r"[^.!?]{0,30}\b(?:contain|mention|say|include|provide|specify|state|cover|answer|address|have|tell)"
    r"|\b(?:not|never) (?:mentioned|provided|specified|stated|included|covered|listed|found|given)\b[^.!?]{0,30}"
    r"\b(?:documents?|texts?|sources?|passages?)"
    r"|\bthere(?: is|s) no (?:information|mention|details?)\b"
    r"|\bno information (?:about|on)\b"
    r"|\b(?:i|assistant|we|bot) (?:dont|do not|doesnt|does not) know\b"
    r"|\bi (?:dont|do not) have (?:that|this|any|enough)\b(?: \w+){0,3}? (?:information|info|details)\b"
    r"|\bi (?:dont|do not) have access\b"
    r"|\bi(?:m| am) not sure\b"
    r"|\bi (?:cannot|cant|can not|am unable to|m unable to) (?:find|answer|help|provide)\b"
    r"|\bnot able to provide\b"
    r"|\bsorry,? i (?:dont|do not|cant|cannot)\b"
    r"|\bas an ai\b"
)
# The same in the other languages kbchat answers in (kb.languages), as the writer says them.
_DECLINE_OTHER = re.compile(
    r"\bno lo sé\b|\bno sé\b|\bno tengo (?:esa|esta|la|información)|\bno hay información\b"
    r"|\b(?:los )?documentos no (?:mencionan|contienen|indican|dicen|especifican|incluyen)"
    r"|\bje ne sais pas\b|\bje nai pas (?:cette|ces|d|l|dinformation)|\baucune information\b"
    r"|\b(?:les )?documents ne (?:mentionnent|contiennent|précisent|disent|indiquent)"
    r"|\bweiß ich (?:leider )?nicht\b|\bich weiß (?:es )?(?:leider )?nicht\b|\bkeine (?:informationen|angaben)\b"
    r"|\b(?:dokumente|unterlagen) (?:enthalten|nennen|erwähnen) (?:keine|nicht)"
    r"|\bnão sei\b|\bnão tenho (?:essa|esta|a|informação)|\bnão há informação\b"
    r"|\b(?:os )?documentos não (?:mencionam|contêm|indicam|dizem|especificam|incluem)"
    r"|\bnon (?:lo )?so\b|\bnon ho (?:questa|queste|informazioni)|\bnessuna informazione\b"
    r"|\b(?:i )?documenti non (?:menzionano|contengono|indicano|dicono|specificano)"
)
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"'})


def _plain(text: str) -> str:
    return " ".join(text.lower().translate(_QUOTES).replace("'", "").split())


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", _plain(text)))


def is_decline(text: str, fallback: str = "") -> bool:
    """Whether an answer says it cannot answer: the owner's fallback message in it, or a usual
    decline ("I don't know", "The documents do not mention...", "I'm not sure").

    >>> is_decline("The documents do not mention a price for that [1]."), is_decline("No, we don't sell clay online [2].")
    (True, False)
    """
    if fallback.strip() and _words(fallback) and f" {_words(fallback)} " in f" {_words(text)} ":
        return True
    plain = _plain(text)
    return bool(_DECLINE.search(plain) or _DECLINE_OTHER.search(plain))
