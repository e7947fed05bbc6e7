"""Training data for fine-tuning: the owner's FAQ pairs, loaded, checked, reworded (kb.reword) and split.

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

The rewordings themselves are kb.reword's.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from kb import readers
from kb.errors import BadInput, KbchatError
from kb.records import FaqPair, question_key
from kb.reword import reword

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
