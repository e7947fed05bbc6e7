"""Every answer path behind one interface, built once and sharing what they can.

Every path follows rag.path.AnswerPath (answer, stream, info). The comparison, the evaluation, the
CLI, the app and the API take the list `build()` returns and never branch on which path is which. A path that cannot run here (no fine-tuned model
yet, no documents) is listed in `Paths.unavailable` with the reason in plain words.

    >>> paths = build(store, settings, ["rag", "tuned"])             # doctest: +SKIP
    >>> [p.answer("When are you open?").text for p in paths]          # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from kb.errors import BadInput, KbchatError
from kb.settings import Settings
from kb.store import Store
from rag.path import NAMES, AnswerPath

# What each path is, in an owner's words (reports and screens use these in sentences).
DESCRIPTIONS = {
    "rag": "answers from your documents (RAG)",
    "base": "the plain model without your documents",
    "tuned": "the fine-tuned model",
    "rag+tuned": "the fine-tuned model reading your documents",
}


@dataclass
class Paths:
    """The paths that can answer, in the order asked for, and why the others cannot."""

    available: list[AnswerPath] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)

    def __iter__(self):
        return iter(self.available)

    def __len__(self) -> int:
        return len(self.available)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.available]

    def retriever(self):
        """The retriever the documents paths share (None when no path retrieves)."""
        return next((r for r in (p.info().retriever for p in self.available) if r is not None), None)

    def adapter(self):
        """The fine-tuned model the tuned paths share (tuning.adapters.AdapterInfo; None without one)."""
        return next((a for a in (p.info().adapter for p in self.available) if a is not None), None)

    def get(self, name: str) -> AnswerPath | None:
        return next((p for p in self.available if p.name == name), None)


def parse_names(text: str | None) -> list[str]:
    """"rag,tuned" -> ["rag", "tuned"]; None or "all" -> every path. Unknown names are refused."""
    if text is None or text.strip().lower() in ("", "all"):
        return list(NAMES)
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise BadInput(f"Unknown answer path {', '.join(map(repr, unknown))}. Choose from: {', '.join(NAMES)} (comma-separated).")
    return list(dict.fromkeys(names))


def availability(store: Store | None, names: list[str] | tuple[str, ...] = NAMES) -> dict[str, str | None]:
    """Which paths could answer, without loading any model: {name: None if it can, else the reason
    in plain words}. `build` gives the same verdicts (and the models)."""
    from tuning import adapters

    has_documents = store is not None and store.count()[0] > 0
    trained = store is not None and adapters.active_id(store.dir) is not None
    out: dict[str, str | None] = {}
    for name in names:
        if name == "base":
            out[name] = None
        elif not has_documents:
            out[name] = "Add your documents first (kbchat ingest, or the Knowledge page)."
        elif name in ("tuned", "rag+tuned") and not trained:
            out[name] = "There is no fine-tuned model yet: train one with kbchat tune (or the Fine-tune page)."
        else:
            out[name] = None
    return out


def build(store: Store | None, settings: Settings, names: list[str] | tuple[str, ...] = NAMES,
          on_message: Callable[[str], None] | None = None, retriever=None) -> Paths:
    """The named paths, sharing one retriever (the one given, or a new one; synced with the store
    now, its messages passed to `on_message`) and one copy of each model. `store` may be None: then
    only `base` can answer."""
    from rag.answer import BasePath, RagPath
    from rag.generate import Generator

    paths = Paths()
    generator = None
    synced = False
    for name in names:
        try:
            if name == "base":
                generator = generator or Generator.for_settings(settings)
                paths.available.append(BasePath(settings, generator=generator))
                continue
            if store is None:
                raise BadInput("There is no knowledge base here. Add your documents first: kbchat ingest FILES...")
            store.require_documents()
            if name in ("rag", "rag+tuned") and not synced:
                retriever = _synced_retriever(store, settings, on_message, retriever)
                synced = True
            if name == "rag":
                generator = generator or Generator.for_settings(settings)
                paths.available.append(RagPath(store, settings, generator=generator, retriever=retriever))
            elif name == "tuned":
                from tuning.answer import TunedPath

                paths.available.append(TunedPath(store, settings))
            elif name == "rag+tuned":
                from tuning.answer import RagTunedPath

                paths.available.append(RagTunedPath(store, settings, retriever=retriever))
            else:
                raise BadInput(f"Unknown answer path {name!r}. Choose from: {', '.join(NAMES)}.")
        except KbchatError as e:
            paths.unavailable[name] = str(e)
    return paths


def _synced_retriever(store: Store, settings: Settings, on_message, retriever=None):
    from rag.retrieve import Retriever

    retriever = retriever or Retriever(store, settings)
    for message in retriever.sync():
        if on_message:
            on_message(message)
    retriever.embedder.embed_one("warm up")  # load the model now, so the first answer's timing is its own
    return retriever
