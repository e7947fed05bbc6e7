"""The checkable facts of a written answer, and whether the passages it read hold them.

A small model copies most facts from its passages, but now and then it writes a number, a price, a
phone number or a code that no passage has: another service's price, a made-up discount code. In
the business's name that is worse than a decline, so every such fact must be found in the passages
before its sentence is shown (rag.answer). Facts are compared in one written form, so "$1,200.00"
is found in "1200 dollars", "9:00 am" in "9 am", "(555) 314-2760" in "555.314.2760" and "3" in
"three":

    >>> facts("It is $1,200.00, call (555) 314-2760 or use code SPRING25 [2].")
    ['5553142760', 'spring25', '1200']
    >>> unsupported("Open 9:00 am to 6 pm, three days a week.", ["We open 9 am - 6 pm on 3 days."])
    []
    >>> unsupported("Use the code CLAY10 for 10% off.", ["Students get 10% off."])
    ['CLAY10']
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CITE = re.compile(r"\[\d+\]")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"\b(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|co|io|us|uk|ca|au|de|fr|shop|studio)(?:/\S*)?", re.I)
# A phone number: 7 or more digits written with the usual separators, "(555) 314-2760", "+1 555 314 2760",
# "555-0199".
_PHONE = re.compile(r"(?<![\w.])\+?\(?\d{2,4}\)?(?:[\s.-]\d{2,4}){2,4}(?![\w])|(?<![\w.-])\d{3}[.-]\d{4}(?![\w-])")
# A code: a word mixing letters and digits ("SAVE20", "B12", "G-CK000000"), or four or more capitals.
_CODE = re.compile(r"\b(?=[\w-]*[A-Za-z])(?=[\w-]*\d)[A-Za-z0-9][\w-]*[A-Za-z0-9]\b|\b[A-Z]{4,}\b")
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_NUMBER_WORDS.update({"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80",
                      "ninety": "90", "hundred": "100", "half": "50", "once": "1", "twice": "2", "first": "1",
                      "second": "2", "third": "3", "fourth": "4", "fifth": "5", "single": "1", "double": "2",
                      "dozen": "12"})
# Ordinals and units glued to a number ("1st", "10am", "2kg", "25-lb") keep only the number.
_GLUED = re.compile(r"(\d)-?[A-Za-z]+\b")
# Abbreviations in capitals that are words, not codes.
_WORD_CAPS = frozenset("FAQ FAQS NOTE PLEASE USPS USA ATM PIN LLC".split())


def _number(text: str) -> str:
    """One written form of a number: no thousands separators, no trailing decimal zeros, 9:00 -> 9."""
    n = text.rstrip(".,:")
    if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", n):
        n = n.replace(",", "")
    if re.fullmatch(r"\d+\.\d+", n):
        whole, frac = n.split(".")
        n = whole if not frac.strip("0") else f"{whole}.{frac.rstrip('0')}"
    if re.fullmatch(r"\d{1,2}:00", n):
        n = n.split(":")[0]
    return n


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


@dataclass(frozen=True)
class Fact:
    """One checkable fact as written (`text`) and in its compared form (`key`)."""

    text: str
    key: str


def fact_list(text: str) -> list[Fact]:
    """The facts of a text in order: e-mails, web addresses, phone numbers, codes, then numbers."""
    text = _CITE.sub(" ", text)
    found: list[Fact] = []
    for m in _EMAIL.finditer(text):
        found.append(Fact(m.group(), m.group().lower()))
    text = _EMAIL.sub(" ", text)
    for m in _URL.finditer(text):
        url = m.group().rstrip(".,;:!?)")
        found.append(Fact(url, _url_key(url)))
    text = _URL.sub(" ", text)
    for m in _PHONE.finditer(text):
        if len(_digits(m.group())) >= 7:
            found.append(Fact(m.group().strip(), _digits(m.group())))
    text = _PHONE.sub(lambda m: " " if len(_digits(m.group())) >= 7 else m.group(), text)
    for m in _CODE.finditer(text):
        if not _with_unit(m.group()) and m.group().upper() not in _WORD_CAPS:
            found.append(Fact(m.group(), m.group().lower()))
    text = _CODE.sub(lambda m: m.group() if _with_unit(m.group()) else " ", text)
    text = _GLUED.sub(r"\1 ", text)
    # Numbered list markers ("1. ", "2) ") at the start of a line are layout, not facts.
    text = re.sub(r"(?m)^\s*\d+[.)]\s", " ", text)
    for m in _NUMBER.finditer(text):
        for part in re.split(r"(?<=\d)[-/](?=\d)", m.group()):
            found.append(Fact(part, _number(part)))
    return found


def _with_unit(word: str) -> bool:
    """Numbers with their unit or ordinal glued on ("10am-9pm", "1st", "25-lb"): numbers, not a code."""
    return bool(re.fullmatch(r"\d[\d.,:]*(?:-?[A-Za-z]+(?:-?\d[\d.,:]*)?)+", word))


def facts(text: str) -> list[str]:
    """The compared forms of a text's facts, each once, in the order of `fact_list`."""
    return list(dict.fromkeys(f.key for f in fact_list(text)))


def _url_key(url: str) -> str:
    url = re.sub(r"^(https?://)?(www\.)?", "", url.lower())
    return url.rstrip("/")


def _known(sources: list[str]) -> tuple[set[str], str]:
    """What the passages hold: their facts, with number words as numbers, and their text for codes."""
    keys: set[str] = set()
    for source in sources:
        keys.update(facts(source))
        for word in re.findall(r"[a-z]+", source.lower()):
            if word in _NUMBER_WORDS:
                keys.add(_NUMBER_WORDS[word])
        keys.update(_digits(m.group()) for m in _PHONE.finditer(source))
        # a phone number in the passages also holds its parts ("call 314-2760")
        for m in _PHONE.finditer(source):
            keys.update(_number(p) for p in re.findall(r"\d+", m.group()))
    return keys, " ".join(s.lower() for s in sources)


# Currencies by their signs, codes and words (in the languages kbchat answers in): "80 euros" for a
# price the passages give in dollars is a made-up fact though its number is right.
_CURRENCIES = {
    "dollars": r"\$|\busd\b|\bdollars?\b|\bdólar(?:es)?\b|\bdollari?\b|\bdólares\b",
    "euros": r"€|\beur\b|\beuros?\b",
    "pounds": r"£|\bgbp\b|\bpounds? sterling\b|\blibras?\b|\bsterline?\b",
    "yen": r"¥|\bjpy\b|\byen\b",
    "francs": r"\bchf\b|\bfrancs?\b|\bfranken\b",
}


def currencies(text: str) -> set[str]:
    """The currencies a text names: currencies("80 euros") == {"euros"}."""
    low = text.lower()
    return {name for name, pattern in _CURRENCIES.items() if re.search(pattern, low)}


def unsupported(text: str, sources: list[str]) -> list[str]:
    """The facts of `text` (as written) that none of the passages holds, a currency none of them
    names among them.

    >>> unsupported("Le cours coûte 80 euros.", ["A private lesson is $80 per hour."])
    ['euros']
    """
    keys, joined = _known(sources)
    out = sorted(currencies(text) - currencies(joined))
    for fact in fact_list(text):
        if fact.key in keys:
            continue
        if fact.key.isalpha() or re.search(r"[a-z]", fact.key):  # a code or address: its own words will do
            if fact.key in joined:
                continue
        elif _phone_part(fact.key, keys):
            continue
        out.append(fact.text)
    return list(dict.fromkeys(out))


def _phone_part(key: str, keys: set[str]) -> bool:
    """A long number written without its area code ("314-2760" of "(555) 314-2760")."""
    return len(key) >= 7 and any(len(k) > len(key) and k.endswith(key) for k in keys)


def holders(text: str, sources: list[str]) -> list[int]:
    """The numbers (1-based) of the passages that hold every fact of `text`; [] when it has none."""
    if not fact_list(text):
        return []
    return [n for n, source in enumerate(sources, start=1) if not unsupported(text, [source])]
