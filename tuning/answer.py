"""The fine-tuned answer paths: `tuned` (the adapter alone, answering from what it learned) and
`rag+tuned` (the adapter reading retrieved sources, the RAFT idea). Both return the same Answer
record as rag and carry a visible warning when the FAQ changed after the adapter was trained."""

from __future__ import annotations

from dataclasses import replace
from typing import Iterator

from kb.records import Answer, Step
from kb.settings import Settings
from kb.store import Store
from rag.answer import BasePath, RagPath
from rag.generate import Generator
from rag.path import PathInfo
from tuning import adapters
from tuning.batches import SYSTEM


def staleness_note(store: Store, info: adapters.AdapterInfo) -> str | None:
    if store.faq_hash() == info.faq_hash:
        return None
    return (f"The fine-tuned model ({info.id}, trained {info.created_at[:16].replace('T', ' ')}) learned an older "
            "version of your FAQ; its answers may be out of date. Train it again (kbchat tune, or the Fine-tune page).")


def tuned_generator(store: Store, settings: Settings, adapter_id: str | None = None) -> tuple[Generator, adapters.AdapterInfo]:
    """The adapter's model: on the model server when the settings name one (its copy of this
    adapter, tuning.served), else loaded here."""
    info = adapters.get(store.dir, adapter_id)
    if settings.models.model_server_url:
        from tuning import served

        return Generator(engine=served.served_engine(info, settings)), info
    return Generator(engine=adapters.load_tuned(info, settings)), info


class _NotesStaleness:
    """Adds the staleness warning to the Answer of the path it is mixed into."""

    store: Store
    adapter: adapters.AdapterInfo

    def stream(self, question: str, history=(), steps: bool = False) -> Iterator[str | Step | Answer]:
        stale = staleness_note(self.store, self.adapter)
        for item in super().stream(question, history, steps):
            if isinstance(item, Answer) and stale:
                item.notes.append(stale)
            yield item

    def info(self) -> PathInfo:
        return replace(super().info(), adapter=self.adapter)


class TunedPath(_NotesStaleness, BasePath):
    """The fine-tuned model alone: no retrieval, no citations. It is asked the way it was trained."""

    name = "tuned"
    SYSTEM = SYSTEM
    WHY = "Written by the fine-tuned model from what it learned of your FAQ: nothing in it is checked against your documents."

    def system(self) -> str:
        return self.SYSTEM  # asked exactly as it was trained: its voice is what it learned

    def __init__(self, store: Store, settings: Settings | None = None, adapter_id: str | None = None):
        self.store = store
        settings = settings or Settings.load(store.dir)
        generator, self.adapter = tuned_generator(store, settings, adapter_id)
        super().__init__(settings, generator)


class RagTunedPath(_NotesStaleness, RagPath):
    """The rag path with the fine-tuned model writing from the sources."""

    name = "rag+tuned"

    def __init__(self, store: Store, settings: Settings | None = None, adapter_id: str | None = None, retriever=None):
        settings = settings or Settings.load(store.dir)
        generator, self.adapter = tuned_generator(store, settings, adapter_id)
        super().__init__(store, settings, generator=generator, retriever=retriever)
