"""Training data for fine-tuning: the owner's FAQ pairs, checked, reworded and split.

A small model fine-tuned on one wording per fact learns the wording, not the fact: it answers the
exact FAQ question and fails on "how much is the wheel course?" (Ovadia et al. 2023, "Fine-tuning
or retrieval?"; Mecklenburg et al. 2024, "Injecting new knowledge into LLMs via SFT"). So every
question is trained in several wordings, and some wordings are held out: validation then measures
whether the model answers a wording it never saw, which is what customers send.

The rewordings are made by rules, not by a model: they are instant, deterministic (the same FAQ
always gives the same training set, so `data_hash()` can tell when an adapter is stale) and never
invent facts, since only the question is reworded and the answer stays the owner's own text.

    >>> report = check_pairs([FaqPair("Do you deliver?", "Yes, within 10 km.", "faq.csv row 2")])
    >>> [p.kind for p in report.problems]
    ['too_few']
    >>> reword("What are your opening hours?", 3)  # doctest: +SKIP
    ['Can you tell me what your opening hours are?', 'What times are you open?', 'What are your opening times?']
"""

from __future__ import annotations

import hashlib
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from kb import readers
from kb.records import question_key
from kb.errors import BadInput, KbchatError
from kb.records import FaqPair

if TYPE_CHECKING:
    from kb.store import Store

MIN_PAIRS = 20  # below this a small model memorizes poorly; retrieval does better (see module doc)
FAQ_EXTENSIONS = sorted(ext for ext, reader in readers.READERS.items() if reader.__module__ == readers.faq.__name__)


# -- loading --------------------------------------------------------------------------------------
def load_extra_pairs(path: str | os.PathLike, warnings: list[str] | None = None) -> list[FaqPair]:
    """Question/answer pairs from an extra file the owner uploads for training only: an FAQ file,
    or a transcript export of real chats (tuning.transcripts: turns with roles).

    An FAQ file is read by the same readers as ingestion, so it accepts what `kbchat ingest`
    accepts for FAQs. Each pair's location is prefixed with the file name ("extra.csv row 4") so
    the data check can name it. Rows the reader skipped (an empty answer, a broken JSON line), and
    what a transcript gave and left out, are appended to `warnings` when a list is given, so the
    caller can show them next to the data check.
    """
    path = Path(path)
    kinds = ", ".join(FAQ_EXTENSIONS)
    if not path.exists():
        raise BadInput(f"The extra questions file {path} was not found. Check the file name and folder.")
    if path.is_dir():
        raise BadInput(f"{path} is a folder. Give the extra questions file itself ({kinds}).")
    name = path.name
    if path.suffix.lower() not in FAQ_EXTENSIONS:
        raise BadInput(
            f"{name} cannot be used for extra training questions: it must be a spreadsheet or JSON file ({kinds}). "
            "Save it as .csv with a 'Question' column and an 'Answer' column."
        )
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BadInput(f"The extra questions file {name} cannot be read ({e.strerror or e}).") from None
    if not data.strip():
        raise BadInput(
            f"The extra questions file {name} is empty. Add a header row 'Question,Answer' and one row per question."
        )
    from tuning import transcripts

    if transcripts.looks_like_transcript(data, name):
        try:
            found = transcripts.read_transcript(data, name)
        except BadInput as e:
            raise BadInput(f"The transcript file {name} could not be used: {e}") from None
        if warnings is not None:
            warnings.extend(found.describe(name))
        return found.pairs
    try:
        doc = readers.read(data, name)
    except BadInput as e:
        raise BadInput(f"The extra questions file {name} could not be used: {e}") from None
    if not doc.faqs:
        detail = f" ({'; '.join(doc.warnings[:3])})" if doc.warnings else ""
        raise BadInput(
            f"No complete question/answer pairs were found in {name}{detail}. "
            "Each row needs a question and an answer, under columns named 'Question' and 'Answer'."
        )
    if warnings is not None:
        warnings.extend(f"{name} {w}" for w in doc.warnings)
    return [FaqPair(p.question, p.answer, f"{name} {p.location}") for p in doc.faqs]


def rated_pairs(kb_dir) -> list[FaqPair]:
    """Answers visitors rated helpful in the website chat, as pairs: the visitor's question and the
    answer they liked. Curated FAQ answers are left out (the FAQ itself is trained on already), as
    are declines and the owner's own tries in the app. The owner's corrections are FAQ pairs
    (kb.corrections) and so are always trained on."""
    from kb.bot import OWNER_SESSION, BotRecords

    try:
        records = BotRecords(kb_dir)
    except KbchatError:  # no knowledge base: no chats
        return []
    with records:
        rated = [e for e in records.exchanges(100_000) if e.feedback == 1 and not e.refused
                 and e.method not in ("faq", "refused") and e.session != OWNER_SESSION]
    cited = re.compile(r"\s*\[\d+\]")  # the [1] citation marks mean nothing without the passages
    return [FaqPair(e.question, cited.sub("", e.answer).strip(), f"chat answer {e.id} (rated helpful)")
            for e in reversed(rated)]


def store_pairs(store: Store) -> list[FaqPair]:
    """The knowledge base's FAQ pairs, located by file name as well as row,
    since a knowledge base may hold several FAQ files and "row 12" alone does not say which."""
    pairs = []
    for chunk in store.faqs():
        name = chunk.source.rstrip("/").rsplit("/", 1)[-1] or chunk.source
        location = f"{name} {chunk.faq.location}".strip()
        pairs.append(FaqPair(chunk.faq.question, chunk.faq.answer, location))
    return pairs


# -- checking -------------------------------------------------------------------------------------
normalize = question_key  # the name this module and its tests use


@dataclass
class Problem:
    """One thing in the training data the owner may want to fix.

    kind: "empty", "duplicate", "conflict", "too_long" (those pairs are left out of training) or
    "too_few" (a warning about the whole set). locations: the pairs involved, e.g. "faq.csv row 12".
    """

    kind: str
    message: str
    locations: list[str] = field(default_factory=list)


@dataclass
class DataReport:
    """The result of `check_pairs`: what was found, in plain words, and the pairs to train on."""

    problems: list[Problem]
    pairs: list[FaqPair]  # the cleaned pairs, in their original order
    n_checked: int

    @property
    def dropped(self) -> int:
        return self.n_checked - len(self.pairs)

    def describe(self) -> list[str]:
        """Lines to show the owner: a summary, then one line per problem."""
        n = self.n_checked
        pairs = "pair" if n == 1 else "pairs"
        if not self.problems:
            head = f"Checked {n} question/answer {pairs}: all will be used for training; no problems found."
        elif self.dropped:
            head = f"Checked {n} question/answer {pairs}: {len(self.pairs)} will be used for training, {self.dropped} left out."
        else:
            head = f"Checked {n} question/answer {pairs}: all will be used for training."
        return [head] + [f"- {p.message}" for p in self.problems]


def estimate_tokens(text: str) -> int:
    """About one token per 4 characters: typical of English for the small models' tokenizers."""
    return -(-len(text) // 4)


def check_pairs(
    pairs: Iterable[FaqPair],
    tokenizer_len: Callable[[str], int] | None = None,
    max_tokens: int = 384,
) -> DataReport:
    """Check pairs before training and keep the usable ones.

    Left out, and reported by location: pairs with an empty question or answer; copies of an
    earlier pair (same question and answer once case, spacing and punctuation are ignored); later
    pairs that ask an earlier pair's question with a different answer (training on both would teach
    the model to pick one at random); pairs whose question and answer do not fit in `max_tokens`
    (the end of the answer would be cut off in training). `tokenizer_len` counts tokens; without it,
    `estimate_tokens`. Fewer than MIN_PAIRS usable pairs gives a warning.
    """
    pairs = list(pairs)
    count = tokenizer_len or estimate_tokens
    problems: list[Problem] = []
    kept: list[FaqPair] = []
    first_by_question: dict[str, tuple[FaqPair, str]] = {}  # normalized question -> (pair, location)

    for index, pair in enumerate(pairs, start=1):
        loc = _where(pair, index)
        q, a = pair.question.strip(), pair.answer.strip()
        if not q or not a:
            if not q and not a:
                what, fix = "the question and the answer are empty", "Fill them in or delete the row."
            elif not q:
                what, fix = f'the question is empty (the answer starts "{_short(a)}")', "Write the question or delete the row."
            else:
                what, fix = f'("{_short(q)}"): the answer is empty', "Write the answer or delete the row."
            sep = " " if what.startswith("(") else ": "
            problems.append(Problem("empty", f"{loc}{sep}{what}, so it is left out of training. {fix}", [loc]))
            continue

        key = normalize(q)
        if key in first_by_question:
            first, first_loc = first_by_question[key]
            if normalize(first.answer) == normalize(a):
                problems.append(Problem(
                    "duplicate",
                    f'{loc} ("{_short(q)}") is a copy of {first_loc}; only one is used. You can delete the copy.',
                    [first_loc, loc],
                ))
            else:
                problems.append(Problem(
                    "conflict",
                    f'{first_loc} and {loc} ask the same question ("{_short(q)}") but give different answers. '
                    f"Only the first answer ({first_loc}) is used for training. Correct or delete the other one "
                    "so the chatbot is not taught the wrong answer.",
                    [first_loc, loc],
                ))
            continue
        first_by_question[key] = (pair, loc)

        n_tokens = count(f"{q}\n{a}")
        if n_tokens > max_tokens:
            problems.append(Problem(
                "too_long",
                f'{loc} ("{_short(q)}"): the question and answer are about {n_tokens} tokens, more than the '
                f"{max_tokens} the model learns from at once, so the end of the answer would be cut off; it is left "
                "out of training. Shorten the answer, or split it into several questions with shorter answers.",
                [loc],
            ))
            continue
        kept.append(pair)

    if len(kept) < MIN_PAIRS:
        have = "No question/answer pairs are" if not kept else f"Only {len(kept)} question/answer pair{'s are' if len(kept) != 1 else ' is'}"
        problems.append(Problem(
            "too_few",
            f"{have} left to train on; at least {MIN_PAIRS} are recommended. With few examples the fine-tuned "
            "model will memorize your answers poorly, and answering from your documents (RAG) will likely do "
            "better. Add more questions and answers, or use RAG.",
        ))
    return DataReport(problems, kept, len(pairs))


def _where(pair: FaqPair, index: int) -> str:
    return pair.location.strip() or f"pair {index}"


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


# -- rewording ------------------------------------------------------------------------------------
# Small word lists for turning a question into an embedded clause ("what your hours are"). They
# cover the forms customers write; anything the rules do not recognise gets no clause, and only
# the rewordings that need none (synonyms, chat style, fixed patterns).
_WH = {"what", "where", "when", "who", "whom", "whose", "which", "why", "how"}
_BE = {"is", "are", "was", "were", "am"}
_DO = {"do", "does", "did"}
_MODAL = {"can", "could", "will", "would", "should", "shall", "may", "might", "must"}
_AUX = _BE | _DO | _MODAL
_PRONOUNS = {"i", "you", "we", "they", "he", "she", "it", "there", "this", "that", "these", "those",
             "someone", "anyone", "everyone", "somebody", "anybody"}
_DETERMINERS = {"the", "a", "an", "my", "your", "our", "their", "his", "her", "its", "this", "that", "these",
                "those", "any", "some", "each", "every", "no"}
_PREPOSITIONS = {"in", "on", "at", "for", "to", "from", "with", "by", "about", "during", "after", "before",
                 "near", "inside", "around", "like", "until", "till", "over", "under", "between", "into", "without"}
_PREDICATES = {"open", "closed", "ready", "available", "accessible", "located", "included", "allowed", "required",
               "needed", "possible", "free", "full", "safe", "necessary", "refundable", "suitable", "ok", "okay",
               "able", "welcome", "late", "early", "busy", "expensive", "cheap", "worth", "based", "booked"}
_PRED_MODIFIERS = {"wheelchair", "fully", "very", "still", "also", "really", "already", "usually", "always",
                   "ever", "too", "completely", "currently", "definitely", "food", "dishwasher", "microwave", "oven"}
_VERBS = {
    "accept", "apply", "arrive", "ask", "attend", "bake", "be", "begin", "book", "borrow", "bring", "buy", "call",
    "cancel", "change", "charge", "check", "choose", "clean", "close", "collect", "come", "contact", "cost",
    "cover", "deliver", "do", "drink", "drop", "eat", "email", "end", "fire", "find", "finish", "fit", "get",
    "give", "go", "happen", "have", "help", "hold", "host", "include", "join", "keep", "last", "learn", "leave",
    "let", "look", "make", "mean", "meet", "miss", "move", "need", "offer", "open", "order", "park", "pause",
    "pay", "pick", "provide", "reach", "refund", "register", "rent", "require", "reschedule", "reserve",
    "return", "run", "see", "sell", "send", "serve", "share", "ship", "show", "sign", "sit", "start", "stay",
    "stop", "store", "take", "teach", "tell", "transfer", "try", "use", "visit", "wait", "want", "wear", "work",
}
_LOWER_FIRST = _WH | _AUX | {"any"}

_WRAPPERS = [
    "Can you tell me {}?", "Could you tell me {}?", "I'd like to know {}.", "I would like to know {}.",
    "I was wondering {}.", "Please let me know {}.", "Could you let me know {}?", "I want to find out {}.",
]
_CHAT_PREFIXES = ["hi, ", "hey, ", "hello, ", "quick question: ", "hi there, ", "hey "]
_CHAT_GREETING = re.compile(r"^(?:hi there|hi|hey|hello|quick question) ")  # on normalized text

_CONTRACTIONS = [
    ("what is", "what's"), ("where is", "where's"), ("how is", "how's"), ("who is", "who's"), ("it is", "it's"),
    ("there is", "there's"), ("do not", "don't"), ("does not", "doesn't"), ("is not", "isn't"),
    ("are not", "aren't"), ("cannot", "can't"), ("can not", "can't"), ("i am", "i'm"), ("i would", "i'd"),
    ("you are", "you're"), ("we are", "we're"), ("they are", "they're"), ("i will", "i'll"), ("we will", "we'll"),
    ("will not", "won't"), ("should not", "shouldn't"),
]

# Synonym swaps: (pattern, replacements). One-directional where the reverse would be wrong
# ("cost" is usually a verb in questions, "price" a noun). Replacements may use \1.
_NO_ARTICLE = r"(?<!during )(?<!in )(?<!after )(?<!before )(?<!to )(?<!from )"
_SYNONYMS: list[tuple[str, list[str]]] = [
    (r"\bprice\b", ["cost"]),
    (r"\bprices\b", ["costs", "rates"]),
    (r"\bbook\b", ["reserve"]),
    (r"\breserve\b", ["book"]),
    (r"\bbooking\b", ["reservation"]),
    (r"\breservation\b", ["booking"]),
    (r"\bbookings\b", ["reservations"]),
    (r"\bbooked\b", ["reserved"]),
    (_NO_ARTICLE + r"\bclass\b", ["course", "lesson"]),  # not "during class"
    (r"\bclasses\b", ["courses", "lessons"]),
    (r"\bcourse\b", ["class"]),
    (r"\bcourses\b", ["classes"]),
    (r"\blesson\b", ["class"]),
    (r"\blessons\b", ["classes"]),
    (r"\bkids\b(?!')", ["children"]),
    (r"\bkids'", ["children's"]),
    (r"\bchildren\b", ["kids"]),
    (r"\bchild\b", ["kid"]),
    (r"\b(do you) offer\b", [r"\1 have"]),
    (r"\b(do you) offer\b(?=.*\b(?:class|course|lesson|session|workshop|event|part(?:y|ie))s?\b)", [r"\1 run"]),
    (r"\b(do you) have\b(?! to)", [r"\1 offer"]),
    (r"\bhost\b", ["hold", "do"]),
    (r"\bcontact\b", ["get in touch with", "reach"]),
    (r"\baccept\b", ["take"]),
    (r"\bsell\b", ["stock", "carry"]),
    (r"\bpick up\b", ["collect"]),
    (r"\bbuy\b", ["purchase"]),
    (r"\bpurchase\b", ["buy"]),
    (r"\bopening hours\b", ["opening times", "business hours"]),
    (r"\bgift card\b", ["gift certificate", "gift voucher"]),
    (r"\bgift cards\b", ["gift certificates", "gift vouchers"]),
    (r"^((?:do|does) (?:i|we|you)) need to\b", [r"\1 have to"]),  # not "what do I need to become"
    (r"\bstart\b", ["begin"]),
    (r"\bto store\b", ["to keep"]),
    (r"\bwheelchair accessible\b", ["accessible by wheelchair"]),
    (r"\bpublic transit\b", ["public transport"]),
    (r"\bpublic transport\b", ["public transit"]),
    (r"\bship\b", ["deliver"]),
    (r"\bshipping\b", ["delivery"]),
    (r"\bbelongings\b", ["things", "stuff"]),
    (r"\bmiss (a|an|the|my)\b", [r"can't make it to \1"]),
    (r"\bminimum age\b", ["age limit"]),
    (r"\bget to the\b", ["reach the"]),
    (r"\bwaitlist\b", ["waiting list"]),
    (r"\bwaiting list\b", ["waitlist"]),
    (r"\ballowed\b", ["permitted"]),
    (r"\bcancellation policy\b", ["policy on cancellations"]),
    (r"\breturn policy\b", ["returns policy", "policy on returns"]),
]

# "You/your" forms: the business addressed directly or in the third person, and chat's "you guys".
_PERSON_SWAPS: list[tuple[str, list[str]]] = [
    (r"\byour\b(?! own)", ["the"]),
    (r"\bthe (studio|shop|store|business|salon|cafe|bakery|restaurant|gym|clinic|office|place)\b", [r"your \1"]),
    (r"\b(contact|reach|call|email|visit|find|get to) the (studio|shop|store|business|salon|cafe|bakery|restaurant|gym|clinic|office)\b",
     [r"\1 you"]),
    (r"\b(do|are|can|could|will|would|did) you\b(?! guys)", [r"\1 you guys"]),
]

# Whole-question patterns that a word swap cannot make. Matched case-insensitively on the question
# without its question mark; the results end with "?".
_PATTERNS: list[tuple[str, list[str]]] = [
    (r"^how much does (.+) cost$", [r"What does \1 cost", r"How much is \1", r"What is the price of \1",
                                    r"What's the cost of \1"]),
    (r"^how much is (.+)$", [r"What does \1 cost", r"What is the price of \1"]),
    (r"^where is (.+) located$", [r"Where can I find \1", r"Where's \1", r"What is the address of \1"]),
    (r"^what are your (?:opening )?hours$", ["When are you open", "What times are you open"]),
    (r"^how do (i|we) (.+)$", [r"How can \1 \2", r"What's the best way to \2"]),
    (r"^how can (i|we) (.+)$", [r"How do \1 \2", r"What's the best way to \2"]),
    (r"^do (i|we) need to (.+)$", [r"Is it necessary to \2", r"Should \1 \2", r"Do \1 have to \2"]),
    (r"^do you offer (.+s)$", [r"Are \1 available", r"Do you have \1"]),
    (r"^do you offer (.+[^s])$", [r"Is \1 available", r"Do you have \1"]),
    (r"^do you (.+)$", [r"you \1"]),
    (r"^are you (.+)$", [r"you \1"]),
    (r"^is there (a|an|any) (.+)$", [r"any \2", r"Do you have \1 \2"]),
    (r"^is there (somewhere|anywhere|someplace) (.+)$", [r"Do you have \1 \2", r"Is there a place \2"]),
    (r"^can (i|we) (.+)$", [r"Is it possible to \2", r"Would it be possible to \2"]),
    (r"^can i (.+)$", [r"Am I allowed to \1"]),
    (r"^can we (.+)$", [r"Are we allowed to \1"]),
    (r"^can (?!this\b|its\b|his\b|us\b)([a-z]+s) ([a-z]+) (.+)$", [r"Are \1 allowed to \2 \3"]),
    (r"^what is (a|an) (.+)$", [r"What exactly is \1 \2", r"What's \1 \2"]),
    (r"^what happens if (.+)$", [r"What if \1", r"What do I do if \1"]),
    (r"^how long does (.+) take$", [r"How much time does \1 take"]),
    (r"^how long until (.+)$", [r"How long before \1"]),
]


def reword(question: str, n: int) -> list[str]:
    """Up to `n` distinct rewordings of a customer question, made by rules.

    Wrappers with the question turned into a clause ("I'd like to know what your opening hours
    are."), chat style ("hey, what are your opening times"), synonym and you/your swaps,
    contractions and whole-question patterns ("How much is the course?"). The choice is seeded by
    the question text, so the same question always gives the same list. Never the question itself
    (ignoring case and punctuation), never two the same.
    """
    original = " ".join(question.split())
    if n <= 0 or not original:
        return []
    q = _expand_contractions(original.rstrip("?!. "))
    bases = _variants(q)  # question forms, first the question itself
    families: dict[str, list[str]] = {
        "swap": [b + "?" for b in bases] + [_contract(b) + "?" for b in bases],  # bases[0]: "what's" spelled out
        "pattern": [r for b in bases for r in _patterns(b)],
        "wrap": [t.format(c) for b in bases for c in _clauses(b) for t in _WRAPPERS],
        "chat": [p + _chatty(b) for b in bases for p in [""] + _CHAT_PREFIXES],
    }
    rng = random.Random(int.from_bytes(hashlib.sha256(original.encode()).digest()[:8], "big"))
    for name in sorted(families):
        rng.shuffle(families[name])
    order = sorted(families)
    rng.shuffle(order)

    # Round-robin over the families. First pass: only wordings whose core (the wording without a
    # greeting) is new, so "hi, <question>" does not take the place of a real rewording; second
    # pass: the rest, if more are asked for than there are cores.
    seen, cores = {normalize(original)}, {normalize(original)}
    out: list[str] = []
    for distinct_core in (True, False):
        pools = {name: list(family) for name, family in families.items()}
        while len(out) < n and any(pools.values()):
            for name in order:
                pool = pools[name]
                while pool:
                    text = _tidy(pool.pop())
                    key = normalize(text)
                    core = _CHAT_GREETING.sub("", key)
                    if key and key not in seen and core and not (distinct_core and core in cores):
                        seen.add(key)
                        cores.add(core)
                        out.append(text)
                        break
                if len(out) == n:
                    break
    return out


def _tidy(text: str) -> str:
    text = " ".join(text.split())
    text = re.sub(r"\s+([?.!,])", r"\1", text)
    return re.sub(r"([?.!])[?.!]+$", r"\1", text)


def _replace_case(match: re.Match, replacement: str) -> str:
    out = match.expand(replacement)
    return out[:1].upper() + out[1:] if match.group(0)[:1].isupper() else out


def _swap(text: str, pattern: str, replacement: str) -> str:
    """Replace every match, keeping a capital at the start; names ("Beginner Wheel-Throwing
    Course") are left alone: a capitalised match past the first word is not swapped."""

    def sub(m: re.Match) -> str:
        if m.start() > 0 and m.group(0)[:1].isupper():
            return m.group(0)
        return _replace_case(m, replacement)

    return re.sub(pattern, sub, text, flags=re.IGNORECASE)


def _variants(q: str) -> list[str]:
    """The question, then each single synonym or you/your swap of it (question form, no '?')."""
    out = [q]
    for pattern, replacements in _SYNONYMS + _PERSON_SWAPS:
        for r in replacements:
            v = _swap(q, pattern, r)
            if v != q and v not in out:
                out.append(v)
    return out


def _expand_contractions(text: str) -> str:
    for full, short in _CONTRACTIONS:
        text = re.sub(rf"\b{re.escape(short)}(?=\W|$)", lambda m, f=full: _replace_case(m, f), text, flags=re.IGNORECASE)
    return re.sub(r"\bwhat're\b", lambda m: _replace_case(m, "what are"), text, flags=re.IGNORECASE)


def _contract(text: str) -> str:
    for full, short in _CONTRACTIONS:
        text = re.sub(rf"\b{re.escape(full)}\b", lambda m, s=short: _replace_case(m, s), text, flags=re.IGNORECASE)
    return re.sub(r"\bi'", "I'", text)


def _patterns(q: str) -> list[str]:
    out = []
    for pattern, templates in _PATTERNS:
        m = re.match(pattern, q, flags=re.IGNORECASE)
        if m:
            out += [m.expand(t) + "?" for t in templates]
    return out


def _chatty(q: str) -> str:
    """Chat style: no capital at the start (unless "I" or a name, "Copper Kiln"), no question mark."""
    first, _, rest = q.partition(" ")
    is_name = first.isupper() or rest[:1].isupper() and first.lower() not in _LOWER_FIRST
    if not (is_name or first == "I" or first.startswith("I'")):
        first = first.lower()
    return f"{first} {rest}".strip()


def _lower_first(words: list[str]) -> list[str]:
    if words and words[0].lower() in _LOWER_FIRST | _DETERMINERS | _PRONOUNS - {"i"}:
        return [words[0].lower()] + words[1:]
    return words


def _clauses(q: str) -> list[str]:
    """The question as embedded clauses: "What are your hours" -> ["what your hours are"];
    "Do you ship" -> ["whether you ship", "if you ship"]; [] when the form is not recognised."""
    words = q.split()
    if len(words) < 2:
        return []
    first = words[0].lower()
    if first in _WH:
        if words[1].lower() in _PREPOSITIONS | {"if", "else", "not"}:
            return []  # "what if ...", "what about ...": no clause form
        for k in range(1, min(5, len(words))):
            w = words[k].lower()
            if w in _AUX:
                break
            if (w in _PREPOSITIONS and w != "of") or w in _PRONOUNS or w in _DETERMINERS:
                return [" ".join(_lower_first(words))]  # no inversion: "how long until my pottery is ready"
        else:
            return [" ".join(_lower_first(words))]  # the wh-word is the subject: "what happens if ..."
        wh = _lower_first(words[:k])
        body = _uninvert(words[k], words[k + 1 :], wh_question=True)
        if body is None:
            return []
        clauses = [" ".join(wh + body)]
        if wh in (["how"], ["where"]) and words[k].lower() in {"do", "can", "should"} and words[k + 1 : k + 2] == ["I"]:
            clauses.append(" ".join(wh + ["to"] + words[k + 2 :]))  # "how to book a party"
        return clauses
    if first in _AUX:
        body = _uninvert(words[0], words[1:], wh_question=False)
        if body is None:
            return []
        text = " ".join(body)
        return [f"whether {text}", f"if {text}"]
    return []


def _uninvert(aux: str, rest: list[str], wh_question: bool) -> list[str] | None:
    """Subject before verb: ("are", "your opening hours") -> "your opening hours are"."""
    a = aux.lower()
    if not rest:
        return [a] if wh_question else None
    head = rest[0].lower()
    if a in _BE:
        if wh_question and (head in _PREPOSITIONS or head.endswith("ing") or _is_predicate(head) or head == "not"):
            return [a] + rest  # the wh-phrase is the subject: "how many students are in a class"
        if head in _PRONOUNS:
            k = _pronoun_len(rest)
            return _lower_first(rest[:k]) + [a] + rest[k:]
        for i in range(1, len(rest)):
            if _is_predicate(rest[i].lower()) and rest[i - 1].lower() not in _DETERMINERS:
                j = i
                while j > 1 and rest[j - 1].lower() in _PRED_MODIFIERS:
                    j -= 1
                return _lower_first(rest[:j]) + [a] + rest[j:]
        return _lower_first(rest) + [a] if wh_question else None
    if a in {"do"}:
        return _lower_first(rest)
    if a == "does":
        v = _find_verb(rest)
        if v is None:
            return None
        return _lower_first(rest[:v]) + [_third_person(rest[v])] + rest[v + 1 :]
    if a in _MODAL:
        v = _pronoun_len(rest) if head in _PRONOUNS else _find_verb(rest)
        if v is None:
            return None
        return _lower_first(rest[:v]) + [a] + rest[v:]
    return None  # "did": the verb would need its past tense


def _pronoun_len(rest: list[str]) -> int:
    """Words in a pronoun subject: 1, or 2 for chat's "you guys"."""
    return 2 if [w.lower() for w in rest[:2]] == ["you", "guys"] else 1


def _is_predicate(word: str) -> bool:
    return word in _PREDICATES or (len(word) > 4 and word.endswith("ed"))


def _find_verb(rest: list[str]) -> int | None:
    """The index of the main verb after a subject: the first known verb not right after "the",
    "my"... (there it is a noun: "my order")."""
    for i in range(1, len(rest)):
        if rest[i].lower() in _VERBS and rest[i - 1].lower() not in _DETERMINERS:
            return i
    return None


def _third_person(verb: str) -> str:
    irregular = {"have": "has", "do": "does", "go": "goes", "be": "is"}
    v = verb.lower()
    if v in irregular:
        return irregular[v]
    if v.endswith(("s", "sh", "ch", "x", "z", "o")):
        return v + "es"
    if v.endswith("y") and v[-2:-1] not in set("aeiou"):
        return v[:-1] + "ies"
    return v + "s"


# -- splitting ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Example:
    """One training or validation example. kind: "original" (the owner's wording) or "reworded"."""

    question: str
    answer: str
    location: str  # the pair it came from, e.g. "faq.csv row 12"
    kind: str


@dataclass
class TrainingSet:
    """Examples to train on and held-out rewordings to validate on (never in `train`)."""

    train: list[Example]
    validation: list[Example]

    def data_hash(self) -> str:
        """A fingerprint of what the model learns from: changes when a question, an answer or the
        split changes; not when rows move. An adapter records it to tell when it is stale."""
        h = hashlib.sha256()
        for split, examples in (("train", self.train), ("validation", self.validation)):
            for q, a in sorted((e.question, e.answer) for e in examples):
                h.update(f"{split}\x00{q}\x00{a}\x00".encode())
        return h.hexdigest()[:16]

    def held_out_questions(self) -> set[str]:
        """The validation questions, as written."""
        return {e.question for e in self.validation}

    def contains_question(self, question: str) -> bool:
        """Whether this question (ignoring case, spacing, punctuation) is a training example, so an
        evaluation can leave out, or flag, questions the model was trained on."""
        key = normalize(question)
        return any(normalize(e.question) == key for e in self.train)


def split_for_training(
    pairs: Iterable[FaqPair], n_rewordings: int = 4, n_validation: int = 1, seed: int = 0
) -> TrainingSet:
    """Training and validation examples from (checked) pairs.

    Each pair gives its original question and `n_rewordings` rewordings; `n_validation` of the
    rewordings, chosen by `seed`, are held out for validation, the rest are trained on. A rewording
    that equals another pair's question, or one already used, is dropped, so validation questions
    never appear in training and no wording is taught two answers.
    """
    if n_rewordings < 0 or n_validation < 0:
        raise ValueError("n_rewordings and n_validation must not be negative")
    pairs = list(pairs)
    claimed = {normalize(p.question) for p in pairs}
    train: list[Example] = []
    validation: list[Example] = []
    for pair in pairs:
        train.append(Example(pair.question, pair.answer, pair.location, "original"))
        rewordings = []
        for text in reword(pair.question, n_rewordings):
            key = normalize(text)
            if key not in claimed:
                claimed.add(key)
                rewordings.append(text)
        rng = random.Random(f"{seed}\x00{pair.question}")
        held = set(rng.sample(range(len(rewordings)), min(n_validation, len(rewordings))))
        for i, text in enumerate(rewordings):
            example = Example(text, pair.answer, pair.location, "reworded")
            (validation if i in held else train).append(example)
    return TrainingSet(train, validation)
