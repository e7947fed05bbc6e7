"""The staleness test: what happens when the owner changes a fact.

On a copy of the knowledge base (the owner's is never touched), one price in an FAQ answer is
raised, the copy is re-indexed as an edit and re-ingest would, and every path is asked that FAQ
question before and after. Retrieval paths read the new answer as soon as the index is updated; a
fine-tuned model keeps the value it learned until it is trained again. The result says, per path,
whether the answer has the new value or the old one, and how long the change took to show.
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from compare import metrics
from compare.paths import build
from compare.result import StalePath, Staleness
from kb.chunk import faq_text
from kb.errors import BadInput
from kb.records import Chunk, FaqPair, chunk_id
from kb.settings import Settings
from kb.store import Store, now_iso

_PRICE = re.compile(r"\$(\d{1,3}(?:,\d{3})*|\d+)(\.\d\d)?")


def pick_fact(store: Store) -> tuple[Chunk, str, str]:
    """An FAQ pair with a price in its answer, that price, and a new one (about 20% higher)."""
    for chunk in store.faqs():
        m = _PRICE.search(chunk.faq.answer)
        if m:
            old = m.group(0)
            value = float(m.group(1).replace(",", "")) * 1.2
            new = f"${value:,.2f}" if m.group(2) else f"${round(value):,}"
            if new != old:
                return chunk, old, new
    raise BadInput("The staleness test changes a price in one of your FAQ answers, but none of them has a price "
                   "(like $25). Add an FAQ answer with a price and try again.")


def run(store: Store, settings: Settings, names: list[str], on_step: Callable[[str], None] | None = None) -> Staleness:
    """Change one price on a copy of the knowledge base and ask every path about it, before and
    after (see the module doc). Returns the `staleness` part of an evaluation result."""
    say = on_step or (lambda message: None)
    store.require_documents()
    chunk, old, new = pick_fact(store)
    question = chunk.faq.question
    with tempfile.TemporaryDirectory(prefix="kbchat-staleness-") as tmp:
        with store.copy_to(Path(tmp) / "kb") as copy:
            paths = build(copy, settings, names)
            say(f"Asking {len(paths)} answer path(s) about {old} before the change")
            before = {p.name: p.answer(question).text for p in paths}
            say(f"Changing {old} to {new} in the FAQ answer to {question!r} (on a copy)")
            edited_at = time.perf_counter()
            change_price(copy, chunk, old, new)
            retriever = paths.retriever()
            index_s = 0.0
            if retriever is not None:
                retriever.sync()
                index_s = time.perf_counter() - edited_at
            out: dict[str, StalePath] = {}
            for path in paths:
                start = time.perf_counter()
                text = path.answer(question).text
                answer_s = time.perf_counter() - start
                says_new, says_old = metrics.has_fact(text, new), metrics.has_fact(text, old)
                reflect = index_s + answer_s if says_new and not says_old else None
                out[path.name] = StalePath(
                    before=before[path.name], answer=text, says_new=says_new, says_old=says_old,
                    reflect_seconds=None if reflect is None else round(reflect, 2),
                    how=_how(path, says_new, says_old, index_s, answer_s))
            unavailable = dict(paths.unavailable)
    return Staleness(faq_question=question, question=question, old_value=old, new_value=new,
                     index_seconds=round(index_s, 2), paths=out, unavailable=unavailable)


def change_price(store: Store, chunk: Chunk, old: str, new: str) -> None:
    """Replace `old` by `new` in one FAQ answer, storing its source again as an edited file would be
    (the other passages keep their ids, so only this one is embedded again)."""
    source = store.source(chunk.source)
    chunks = store.chunks(source=chunk.source)
    edited = []
    for c in chunks:
        if c.id == chunk.id:
            pair = FaqPair(c.faq.question, c.faq.answer.replace(old, new, 1), c.faq.location)
            text = faq_text(pair.question, pair.answer)
            c = Chunk(chunk_id(c.source, text), c.source, c.location, text, pair)
        edited.append(c)
    store.replace_source(replace(source, content_hash=f"{source.content_hash}-edited", ingested_at=now_iso()), edited)


def _how(path, says_new: bool, says_old: bool, index_s: float, answer_s: float) -> str:
    """How the path took the change, in words that follow "gave the new one (...)" in the report."""
    info = path.info()
    adapter = info.adapter
    if says_new and not says_old:
        answered = f"answered in {_seconds(answer_s)}"
        if info.retriever is not None:
            return f"re-indexed in {_seconds(index_s)}, {answered}"
        return answered
    if adapter is not None:
        return f"it needs training again to learn the change; the last training took {adapter.train_seconds / 60:.1f} min"
    return "it never read the FAQ" if not says_old else "it does not read the FAQ"


def _seconds(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.1f} s"
