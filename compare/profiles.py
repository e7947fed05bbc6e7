"""Each model profile on this machine: how well the rag path answers, and how fast, with the
quality profile's models and with the small profile's, on the same questions.

The models the knowledge base answers with are measured on the knowledge base itself (from the
evaluation's own rag answers when it has them). Every other profile is measured on a copy, indexed
again with that profile's search model, so the owner's indexes, thresholds and bot are never
touched. The result is the `profiles` part of an evaluation result; the report and the app show it
as a table the owner chooses from.

    >>> profiles.run(store, settings, questions, result).rows[0].profile   # doctest: +SKIP
    'quality'
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

from compare import evaluate
from compare.paths import build
from compare.result import EvalResult, PathMetrics, ProfileRow, Profiles
from rag.questions import EvalQuestion
from kb.setting_groups import PROFILES
from kb.settings import Settings
from kb.store import Store

PATH = "rag"  # the path a profile changes most, and the one a business puts on its website
KEYS = ("fact_accuracy", "fact_accuracy_ci", "refusal_accuracy", "refusal_accuracy_ci", "wrongly_refused",
        "wrongly_refused_ci", "latency_p50_ms", "latency_p95_ms", "n_in_scope", "n_out_of_scope")


def run(store: Store, settings: Settings, questions: list[EvalQuestion], result: EvalResult | None = None,
        on_answer: Callable[[str, int, int], None] | None = None, workers: int = 1) -> Profiles:
    """The rag path's quality and speed under the models in use and under every other profile (see
    the module doc). `result` is the evaluation of the same questions, whose rag answers are reused."""
    rows = [_row(settings.profile_in_use, True, settings, _measure(store, settings, questions, result, on_answer, workers))]
    for name in PROFILES:
        if name == rows[0].profile:
            continue
        other = settings.updated(model_profile=name, embedder_path="", generator_path="",
                                 faq_threshold=None, refusal_threshold=None)  # thresholds belong to the models
        with tempfile.TemporaryDirectory(prefix="kbchat-profile-") as tmp:
            with store.copy_to(Path(tmp) / "kb") as copy:
                rows.append(_row(name, False, other, _measure(copy, other, questions, None, on_answer, workers)))
    return Profiles(path=PATH, n_questions=len(questions), rows=rows)


def _measure(store: Store, settings: Settings, questions: list[EvalQuestion], result: EvalResult | None,
             on_answer, workers: int) -> tuple[PathMetrics, str, str]:
    """(rag measures, answer model, search model) for these settings."""
    search = settings.models.embedder or "all-MiniLM-L6-v2"
    if result is not None and PATH in result.evaluated():
        return result.paths[PATH], result.models.get(PATH, ""), search
    paths = build(store, settings, [PATH])
    if not paths:
        return PathMetrics(unavailable=" ".join(paths.unavailable.values())), "", search
    done = evaluate.evaluate(questions, paths, store, settings, on_answer, workers=workers)
    return done.paths[PATH], done.models.get(PATH, ""), search


def _row(profile: str, used: bool, settings: Settings, measured: tuple[PathMetrics, str, str]) -> ProfileRow:
    metrics, model, search = measured
    row = ProfileRow(profile=profile, in_use=used, model=model, search_model=search, quoted=settings.quotes,
                     unavailable=metrics.unavailable)
    if metrics.unavailable is None:
        for key in KEYS:
            setattr(row, key, metrics.value(key))
    return row
