"""The owner's own FAQ answers, written in kbchat itself ("fix this answer", answering a content
gap): kept in `owner_faq.csv` in the knowledge base folder and ingested like any FAQ file, so RAG
uses them at once and the next fine-tune learns them.

    >>> add_answer(store, settings, "Do you repair bicycles?", "No, we only do pottery.")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from kb.errors import BadInput
from kb.files import atomic_write
from kb.ingest import IngestResult, ingest
from kb.records import Chunk, question_key
from kb.settings import Settings
from kb.store import Store

FILE = "owner_faq.csv"


def path(kb_dir) -> Path:
    return Path(kb_dir) / FILE


def answers(kb_dir) -> list[tuple[str, str]]:
    """The (question, answer) pairs written so far."""
    file = path(kb_dir)
    if not file.exists():
        return []
    rows = list(csv.reader(io.StringIO(file.read_text(encoding="utf-8"))))
    return [(r[0], r[1]) for r in rows[1:] if len(r) >= 2]


def competing(store: Store, question: str) -> list[Chunk]:
    """FAQ entries in the owner's other files that answer exactly this question. The owner's own
    answer wins for the chatbot (rag.retrieve prefers it), but fine-tuning would learn both."""
    key = question_key(question)
    return [c for c in store.faqs() if Path(c.source).name != FILE and question_key(c.faq.question) == key]


def add_answer(store: Store, settings: Settings, question: str, answer: str) -> IngestResult:
    """Save a curated answer to a question (replacing an earlier one for the same question) and
    ingest it. The file is replaced atomically: an interruption never leaves half a file."""
    question, answer = " ".join(str(question).split()), str(answer).strip()
    if not question:
        raise BadInput("The question is empty. Write the question as a customer would ask it.")
    if not answer:
        raise BadInput("The answer is empty. Write the answer customers should get.")
    key = question_key(question)
    pairs = [(q, a) for q, a in answers(store.dir) if question_key(q) != key] + [(question, answer)]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Question", "Answer"])
    writer.writerows(pairs)
    atomic_write(path(store.dir), lambda f: f.write(out.getvalue().encode("utf-8")))
    result = next(iter(ingest(store, [str(path(store.dir))], settings)))
    if result.failed:
        raise BadInput(f"The answer was saved but could not be added to the knowledge base: {result.reason}")
    return result
