"""The paraphraser: rewordings of a customer question, made by rules (no model), the same every time
for the same question. Fine-tuning trains on the first `TRAINING_REWORDINGS` of each FAQ question
(tuning.data), the evaluation asks the next one (`evaluation_rewording`), and calibration draws its
probes from those after (rag.calibrate), so none of them sees another's questions.

    >>> reword("What are your opening hours?", 2)                       # doctest: +SKIP
    ['I was wondering what your opening hours are.', 'hey, what are your opening times']
"""

from __future__ import annotations

import hashlib
import random
import re

from kb.records import question_key as normalize

TRAINING_REWORDINGS = 3  # rewordings per FAQ question that fine-tuning trains on (tuning.train.TuneSettings)


def evaluation_rewording(question: str, faq_keys: set[str], n_rewordings: int | None = None) -> str | None:
    """The rewording of an FAQ question the evaluation asks: the first one after the
    `n_rewordings` that training draws, that is no curated question itself."""
    skip = TRAINING_REWORDINGS if n_rewordings is None else n_rewordings
    fresh = [q for q in reword(question, skip + 3)[skip:] if normalize(q) not in faq_keys]
    return fresh[0] if fresh else None


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
