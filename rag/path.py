"""The answer protocol every path follows (rag, base, tuned, rag+tuned), and what a path says about
itself, so the comparison, the evaluation and the interfaces never reach into a path's parts.

A path has a `name`, `answer(question, history=()) -> Answer`, `stream(question, history=())` (the
text pieces, then the Answer; the pieces joined are exactly Answer.text) and `info() -> PathInfo`.
`history` is the chat's earlier turns (kb.records.Turn), oldest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Protocol

from kb.records import PATH_NAMES as NAMES, Answer, Step, Turn


@dataclass
class PathInfo:
    """What a path answers with: its writer (rag.generate.Generator), its search (None for a path
    that does not read the documents) and its fine-tuned model (tuning.adapters.AdapterInfo, None
    for a path without one)."""

    name: str
    generator: Any
    retriever: Any = None
    adapter: Any = None

    @property
    def model_id(self) -> str:
        """The model, its engine and threads, e.g. 'Qwen2.5-Coder-1.5B... (llama.cpp, 2 threads)'."""
        return self.generator.model_id

    @property
    def on_torch(self) -> bool:
        """Whether it writes with transformers (which decodes one token at a time per thread)."""
        from rag.generate import TransformersEngine

        return isinstance(self.generator.engine, TransformersEngine)


class AnswerPath(Protocol):
    name: str

    def answer(self, question: str, history: list[Turn] = ()) -> Answer: ...

    def stream(self, question: str, history: list[Turn] = (), steps: bool = False) -> Iterator[str | Step | Answer]: ...

    def info(self) -> PathInfo: ...
