"""Evaluation questions: read from the owner's file, or built from the knowledge base itself.

A questions file is JSON Lines, one question per line, as in `sample_data/eval_questions.jsonl`:
`question` (required); `answer` (the reference answer), `expected` (a fact, or a list of facts, any
of which makes an answer right), `in_scope` (false for questions the documents do not answer, which
the bot should decline), `kind` (optional, see KINDS). A line may instead hold a whole chat, as in
`sample_data/eval_chats.jsonl`: `{"turns": [{"question", "expected", "in_scope", "switch"}, ...]}`,
each turn a question as above, asked after the turns before it in the same chat; `switch` marks a
turn that changes the subject (it must not be answered about the old one).

Built from the knowledge base, the set has four kinds of question:
  * verbatim: every FAQ question word for word (tests memorization; fine-tuning trained on these),
  * reworded: each FAQ question reworded by the same rules training uses, but a rewording training
    never draws (it takes the first `n_rewordings`; this takes the ones after), so it tests
    generalization,
  * document: a question per fact-bearing table row or section of the non-FAQ documents,
  * out_of_scope: general questions no small business's documents answer.

The thresholds of the rag path are calibrated on the knowledge base too (rag.calibrate), on probes
of the same kinds; the evaluation never asks them (`split`), so its decline figures are not
flattered by questions the thresholds were fitted on. Only the FAQ questions as written are shared
on purpose, as with fine-tuning's training data.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kb.errors import BadInput, NotFound
from kb.records import Chunk, question_key
from kb.reword import evaluation_rewording
from kb.store import Store
from rag.grounding import units

KINDS = ("verbatim", "reworded", "document", "question", "out_of_scope")
MAX_DOCUMENT_QUESTIONS = 25
MAX_DOCUMENT_CHATS = 5
CHAT_BASE = 10_000  # the chats made from a knowledge base are numbered from here

# Questions no small business's documents answer: the bot should decline them, not guess. The
# evaluation asks these; calibration probes with its own (CALIBRATION_OUT_OF_SCOPE), never these.
OUT_OF_SCOPE = [
    "Who won the World Cup in 2018?",
    "What is the capital of Australia?",
    "Can you help me file my tax return?",
    "What will the weather be like tomorrow?",
    "How do I reset my iPhone?",
    "What's a good recipe for lasagna?",
    "What is the stock price of Apple today?",
    "How far is the Moon from the Earth?",
    "Can you book me a flight to Paris?",
    "Who is the president of France?",
    "How do I fix a leaking kitchen faucet?",
    "How do you say good morning in Japanese?",
    "What is the best programming language to learn?",
    "Can you recommend a good dentist?",
    "Who wrote the novel War and Peace?",
]
CALIBRATION_OUT_OF_SCOPE = [
    "What time does the football match start tonight?",
    "How many calories are in a banana?",
    "Can you translate this letter into German for me?",
    "What's the best way to learn to play the guitar?",
    "Which bank has the best savings rate right now?",
    "How do I get a stain out of a white shirt?",
    "What is the population of Brazil?",
    "Can you order me a pizza?",
    "Who painted the Mona Lisa?",
    "How do I renew my passport?",
    "What's a good name for a new puppy?",
    "When is the next solar eclipse?",
    "Which smartphone has the best camera?",
    "How do I change a flat tire on my car?",
    "What is the square root of 144?",
]


# Facts an answer should contain: money, times, quantities with units, emails, phones, names.
_FACT = re.compile(
    r"[$€£]\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
    r"|\b\d{1,2}(?::\d{2})?\s?(?:am|pm|a\.m\.|p\.m\.)"
    r"|\b(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?\s?(?:%|percent|minutes?|hours?|days?|weeks?|months?|years?|inches|feet|lbs?|"
    r"pounds|students|people|guests|pieces|degrees|miles)\b"
    r"|\b[\w.+-]+@[\w-]+\.[\w.]+\b"
    r"|\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b",
    re.IGNORECASE,
)
# Two or three capitalized words inside a sentence ("Cedar Lane", "Millbrook Public Library"), with
# the house number of an address ("214 Alder Street").
_NAME = re.compile(r"(?<=[a-z,;:] )(?:\d+ )?[A-Z][a-z]+(?: [A-Z][a-z]+){1,2}\b")


@dataclass
class EvalQuestion:
    question: str
    kind: str = "question"
    in_scope: bool = True
    reference: str | None = None  # the answer a good bot gives
    expected: list[str] = field(default_factory=list)  # any of these in an answer makes it right
    faq_question: str | None = None  # the FAQ question it rewords, when there is one
    chat: int | None = None  # the chat it is a turn of (its number in the file), None for a single question
    turn: int = 0  # its place in the chat: 0 for the first message
    switch: bool = False  # a turn that changes the chat's subject

    @property
    def context(self) -> str:
        """Where it stands in a chat: "single", "first", "follow-up" or "switch"."""
        if self.chat is None:
            return "single"
        return "first" if self.turn == 0 else "switch" if self.switch else "follow-up"

    def to_dict(self) -> dict:
        return asdict(self)


def facts(text: str, limit: int = 4) -> list[str]:
    """The checkable facts of a reference answer, in order: prices, times, quantities, contacts and
    multi-word names.

    >>> facts("The 6-week course is $280, Tuesdays 6 pm at Cedar Lane.")
    ['$280', '6 pm', 'Cedar Lane']
    """
    found = [m.group(0).strip() for m in _FACT.finditer(text)] + _NAME.findall(text)
    return list(dict.fromkeys(found))[:limit]


def load(path: str | Path) -> list[EvalQuestion]:
    """The questions of a JSON Lines file, with a message naming the line for anything wrong."""
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"There is no questions file at {path}. Give a .jsonl file with one question per line.")
    out: list[EvalQuestion] = []
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise BadInput(f"{path.name} is not a UTF-8 text file. Save it as UTF-8 JSON Lines (one question per line).") from None
    chats = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path.name} line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise BadInput(f"{where} is not valid JSON ({e.msg}). Each line must be one object like "
                           '{"question": "When are you open?", "expected": "9 am"}.') from None
        if isinstance(row, dict) and "turns" in row:
            out += _chat(row["turns"], where, chats)
            chats += 1
        else:
            out.append(_question(row, where))
    if not out:
        raise BadInput(f"{path.name} has no questions. Each line must be one object like "
                       '{"question": "When are you open?", "expected": "9 am"}.')
    return out


def _chat(turns, where: str, number: int) -> list[EvalQuestion]:
    if not isinstance(turns, list) or not turns:
        raise BadInput(f"{where}: \"turns\" must be a list of questions, like "
                       '[{"question": "Do you have kids\' classes?"}, {"question": "how much is it?"}].')
    out = []
    for i, row in enumerate(turns):
        q = _question(row, f"{where}, turn {i + 1}")
        switch = row.get("switch", False)
        if not isinstance(switch, bool):
            raise BadInput(f"{where}, turn {i + 1}: \"switch\" must be true or false.")
        q.chat, q.turn, q.switch = number, i, switch
        out.append(q)
    return out


def _question(row, where: str) -> EvalQuestion:
    if not isinstance(row, dict):
        raise BadInput(f"{where} must be a JSON object with a \"question\" field.")
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise BadInput(f"{where} has no question: give a non-empty \"question\" text.")
    expected = row.get("expected", [])
    if isinstance(expected, str):
        expected = [expected]
    if not isinstance(expected, list) or not all(isinstance(e, str) for e in expected):
        raise BadInput(f"{where}: \"expected\" must be a text or a list of texts.")
    answer = row.get("answer")
    if answer is not None and not isinstance(answer, str):
        raise BadInput(f"{where}: \"answer\" must be a text.")
    in_scope = row.get("in_scope", True)
    if not isinstance(in_scope, bool):
        raise BadInput(f"{where}: \"in_scope\" must be true or false.")
    kind = row.get("kind") or _kind(row, in_scope)
    if kind not in KINDS:
        raise BadInput(f"{where}: \"kind\" must be one of {', '.join(KINDS)}.")
    faq_question = row.get("faq_question") if isinstance(row.get("faq_question"), str) else None
    return EvalQuestion(" ".join(question.split()), kind, in_scope, answer, [e for e in expected if e.strip()], faq_question)


def _kind(row: dict, in_scope: bool) -> str:
    if not in_scope:
        return "out_of_scope"
    faq_question = row.get("faq_question")
    if isinstance(faq_question, str):
        same = question_key(faq_question) == question_key(str(row["question"]))
        return "verbatim" if same else "reworded"
    return "document" if row.get("source") else "question"


def from_knowledge_base(store: Store, n_rewordings: int | None = None) -> list[EvalQuestion]:
    """An evaluation set made from the knowledge base (see the module doc). `n_rewordings` is how
    many rewordings per question training draws (default: the tuning default); the reworded
    questions here are the next one after those."""
    store.require_documents()
    pairs = store.faq_pairs()
    faq_keys = {question_key(p.question) for p in pairs}
    out = [EvalQuestion(p.question, "verbatim", True, p.answer, facts(p.answer), p.question) for p in pairs]
    for p in pairs:
        fresh = evaluation_rewording(p.question, faq_keys, n_rewordings)
        if fresh:
            out.append(EvalQuestion(fresh, "reworded", True, p.answer, facts(p.answer), p.question))
    documents = [c for c in store.chunks() if not c.faq]
    out += document_questions(documents, part="evaluation")
    out += [EvalQuestion(q, "out_of_scope", False) for q in OUT_OF_SCOPE]
    out += document_chats(documents)
    return out


def document_chats(chunks: list[Chunk], limit: int = MAX_DOCUMENT_CHATS) -> list[EvalQuestion]:
    """Chats about the documents' tables: a row's first fact, then another of its facts asked the
    way a customer follows up ("What is the price for Beginner Wheel?", "And the schedule?"), then
    a question no business answers, which changes the subject. Numbered from CHAT_BASE, so they
    never share a number with a file's chats."""
    rows: list[tuple[str, list[tuple[str, str]]]] = []
    for chunk in chunks:
        for unit in units(chunk, 1):
            cells = [c.split(": ", 1) for c in unit.text.rstrip(".").split("; ")]
            if len(cells) < 3 or not all(len(c) == 2 for c in cells):
                continue
            name = re.sub(r"\s*\([^)]*\)", "", cells[0][1]).strip()
            with_facts = [(column.strip().lower(), value) for column, value in cells[1:] if facts(value)]
            if name and len(with_facts) >= 2:
                rows.append((name, with_facts))
    calibrated = {question_key(q.question) for q in document_questions(chunks, part="calibration")}
    rows = [(name, cells) for name, cells in rows if question_key(f"What is the {cells[0][0]} for {name}?") not in calibrated]
    step = max(1, len(rows) // limit) if len(rows) > limit else 1
    out: list[EvalQuestion] = []
    for n, (name, cells) in enumerate(rows[::step][:limit]):
        (first, value), (then, other) = cells[0], cells[1]
        chat = CHAT_BASE + n
        out += [EvalQuestion(f"What is the {first} for {name}?", "document", True, value, facts(value), chat=chat, turn=0),
                EvalQuestion(f"And the {then}?", "document", True, other, facts(other), chat=chat, turn=1),
                EvalQuestion(OUT_OF_SCOPE[n % len(OUT_OF_SCOPE)], "out_of_scope", False, chat=chat, turn=2, switch=True)]
    return out


def document_questions(chunks: list[Chunk], limit: int = MAX_DOCUMENT_QUESTIONS, part: str = "all") -> list[EvalQuestion]:
    """Questions the documents answer: one per table row with a price or quantity ("What is the
    price of the Beginner Wheel-Throwing Course?"), and one per section with a fact-bearing
    sentence ("What should I know about lost and found?"), each with that row or sentence as its
    reference and its facts as the expected ones. `part` "evaluation" or "calibration" takes every
    other one, so the two never ask the same (a knowledge base with one such question gives it to
    the evaluation)."""
    out: list[EvalQuestion] = []
    seen_topics: set[str] = set()
    for chunk in chunks:
        topic = _topic(chunk.location)
        for unit in units(chunk, 1):
            question, value = _row_question(unit.text)
            if question is None and topic and topic not in seen_topics:
                question, value = f"What should I know about {topic}?", unit.text
            expected = facts(value or "")
            if not question or not expected or question_key(question) in {question_key(q.question) for q in out}:
                continue
            if question.startswith("What should I know"):
                seen_topics.add(topic)
            out.append(EvalQuestion(question, "document", True, unit.text, expected))
    if part != "all":
        out = out[0::2] if part == "evaluation" else out[1::2]
    # Spread over the documents rather than the first ones only.
    step = max(1, len(out) // limit) if len(out) > limit else 1
    return out[::step][:limit]


def _topic(location: str) -> str:
    """'page 3 > 6. Finished Work Pickup and Late Pickup Fees' -> 'finished work pickup and late pickup fees'."""
    last = location.split(">")[-1].strip()
    last = re.sub(r"^(page|row|sheet)\s*\d+$", "", last, flags=re.IGNORECASE)
    last = re.sub(r"^\d+[.)]\s*|^about\s+", "", last, flags=re.IGNORECASE).strip()
    if not last or len(last.split()) > 8:
        return ""
    words = [w if w.isupper() and len(w) > 1 else w.lower() for w in last.split()]
    return " ".join({"our": "your", "us": "you"}.get(w, w) for w in words)


def _row_question(text: str) -> tuple[str | None, str | None]:
    """A table row spelled out as 'Class: Beginner Wheel (6 weeks); Price: $280.' -> ('What is the
    price for Beginner Wheel?', '$280'): the first cell with a fact, and that cell."""
    cells = [c.split(": ", 1) for c in text.rstrip(".").split("; ")]
    if len(cells) < 2 or not all(len(c) == 2 for c in cells):
        return None, None
    name = re.sub(r"\s*\([^)]*\)", "", cells[0][1]).strip()
    for column, value in cells[1:]:
        if name and facts(value):
            return f"What is the {column.strip().lower()} for {name}?", value
    return None, None
