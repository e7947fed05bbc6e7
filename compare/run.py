"""One evaluation run, as the owner asks for it: the questions (a file, or made from the knowledge
base), the answer paths, and the optional staleness test, other model profile and report. The CLI
(`kbchat eval`) and the app's Evaluate page (as a background job) both run it here.

Its progress is kept in the knowledge base (`eval/progress.json`) while it runs, so any interface
can show it (`read_progress`), as it keeps the answers so far (an interrupted run picks up where
it stopped: compare.evaluate).

    >>> result, _ = run(store, settings, ["rag", "base"], limit=5, on_progress=print)   # doctest: +SKIP
    Progress(done=1, total=10, path='rag', stage='answering')
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from compare import evaluate, profiles, staleness
from compare.paths import build
from compare.result import EvalResult
from kb.errors import BadInput, KbchatError
from kb.files import atomic_write
from kb.settings import Settings
from kb.store import Store
from rag import questions as question_sets

PROGRESS = Path("eval") / "progress.json"
STAGES = ("answering", "staleness", "profiles")


@dataclass
class Progress:
    done: int
    total: int
    path: str = ""  # the path answering now
    stage: str = "answering"  # one of STAGES


def progress_file(kb_dir) -> Path:
    return Path(kb_dir) / PROGRESS


def read_progress(kb_dir) -> Progress | None:
    """The running (or last) evaluation's progress; None before its first answer."""
    try:
        return Progress(**json.loads(progress_file(kb_dir).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def check_report_folder(folder: Path) -> None:
    """Refuse, before a long run, a report folder that cannot be written."""
    if folder.exists() and not folder.is_dir():
        raise BadInput(f"{folder} is a file; the report needs a folder for its page, its JSON and charts.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".kbchat-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise BadInput(f"The report cannot be written to {folder} ({e.strerror or e}). Choose another folder.") from None


def run(store: Store, settings: Settings, names: list[str], *, questions_file: str | None = None,
        limit: int | None = None, with_staleness: bool = False, with_profiles: bool = False,
        workers: int | None = None, report_dir: str | Path | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        on_message: Callable[[str], None] | None = None) -> tuple[EvalResult, Path | None]:
    """Evaluate the named paths (compare.evaluate) and whatever else is asked for: the evaluation
    result, and its report's page when `report_dir` is given. `on_message` hears what the owner
    should know on the way (the index being built, a path that cannot run, a stage that starts)."""
    say = on_message or (lambda message: None)
    if report_dir:  # before the long run, not after it
        check_report_folder(Path(report_dir))
    keep = progress_file(store.dir)
    keep.unlink(missing_ok=True)  # the last run's numbers would show until the first answer

    def report(progress: Progress) -> None:
        atomic_write(keep, lambda f: f.write(json.dumps(asdict(progress)).encode()))
        if on_progress:
            on_progress(progress)

    chosen = question_sets.load(questions_file) if questions_file else question_sets.from_knowledge_base(store)
    chosen = chosen[:limit] if limit else chosen
    paths = build(store, settings, names, on_message=say)
    if not paths:
        raise KbchatError("No answer path can run: " + " ".join(paths.unavailable.values()))
    for name, reason in paths.unavailable.items():
        say(f"{name}: not evaluated. {reason}")
    workers = workers or evaluate.default_workers(paths)
    result = evaluate.evaluate(chosen, paths, store, settings,
                               lambda path, done, total: report(Progress(done, total, path)), questions_file,
                               workers=workers)
    total = len(chosen) * len(paths)
    if with_staleness:
        report(Progress(total, total, "", "staleness"))
        result.staleness = staleness.run(store, settings, paths.names, on_step=say)
    if with_profiles:
        say("Measuring the other model profile on a copy of the knowledge base…")
        result.profiles = profiles.run(store, settings, chosen, result,
                                          lambda path, done, n: report(Progress(done, n, path, "profiles")),
                                          workers=workers)
    if not report_dir:
        return result, None
    from compare.report import write_report

    return result, Path(write_report(result, report_dir))
