"""Long work the app starts in the background: fine-tuning, evaluation and the chat server.

Each job is a `kbchat` command in its own process, so the page stays usable, a crash cannot take the
app down, and the work goes on if the page is closed. A job's state lives in the knowledge base
(`jobs/<name>.json` and `jobs/<name>.log`), so any page, or a restarted app, sees it.

    >>> start(kb_dir, "tune", ["tune"])           # doctest: +SKIP
    >>> status(kb_dir, "tune").running            # doctest: +SKIP
    >>> stop(kb_dir, "tune")                      # Ctrl-C: training saves a checkpoint  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from kb.errors import BadInput

DIR = "jobs"
# Set in a job's environment to the job's file prefix (jobs/<name>). stop() ends a job with SIGINT,
# so a job must act on it whoever started it: a process that ignores SIGINT (anything a shell script
# starts with `&`, a test run among them) passes that on to its children. A job also starts with
# SIGINT ignored, so that a stop while its Python is still starting cannot kill it mid-import with
# a traceback; once the command line is ready it turns Ctrl-C back on (`ready()`), and a stop that
# came before that is read from the job's stop file instead. Either way it ends as "stopped".
JOB_ENV = "KBCHAT_JOB"


@dataclass
class Job:
    name: str
    args: list[str]
    pid: int | None
    started_at: float
    running: bool
    exit_code: int | None  # None while running or when unknown
    log: Path  # its output

    @property
    def log_tail(self) -> str:
        """The last lines of its output, for a failure message (read only when asked: a page polls
        status() every 2 s)."""
        return _tail(self.log)

    @property
    def stopped(self) -> bool:
        """Ended by stop() (Ctrl-C): exit status 130, killed by the signal before it could say so, or
        any end after a stop was asked for."""
        if self.running:
            return False
        return self.exit_code in (130, -signal.SIGINT) or self.log.with_suffix(".stop").exists()

    @property
    def failed(self) -> bool:
        return not self.running and self.exit_code not in (None, 0) and not self.stopped


def _files(kb_dir, name: str) -> tuple[Path, Path]:
    folder = Path(kb_dir) / DIR
    return folder / f"{name}.json", folder / f"{name}.log"


def kbchat_command() -> list[str]:
    exe = Path(sys.executable).parent / "kbchat"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "ui.cli"]


def start(kb_dir, name: str, args: list[str]) -> Job:
    """Run `kbchat --kb KB_DIR ARGS...` in the background as job `name`; refuses while it runs."""
    current = status(kb_dir, name)
    if current is not None and current.running:
        raise BadInput(f"The {name} job is already running. Wait for it to finish or stop it first.")
    meta, log = _files(kb_dir, name)
    meta.parent.mkdir(parents=True, exist_ok=True)
    prefix = log.with_suffix("")
    for old in (".stop", ".ready"):
        prefix.with_suffix(old).unlink(missing_ok=True)
    # `trap '' INT` starts the command with SIGINT ignored (kept across exec); ready() turns it on.
    command = ["sh", "-c", "trap '' INT; exec \"$@\"", "kbchat-job", *kbchat_command(), "--kb", str(kb_dir), *args]
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, JOB_ENV: str(prefix)})
    _RUNNING[(str(kb_dir), name)] = proc
    meta.write_text(json.dumps({"pid": proc.pid, "args": args, "started_at": time.time()}))
    return status(kb_dir, name)


def status(kb_dir, name: str) -> Job | None:
    """The job's state, or None if it never ran here."""
    meta, log = _files(kb_dir, name)
    try:
        info = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    proc = _RUNNING.get((str(kb_dir), name))
    exit_code = None
    if proc is not None and proc.pid == info.get("pid"):
        exit_code = proc.poll()
        running = exit_code is None
    else:  # started by another app process: all we can know is whether it is alive
        running = alive(info.get("pid"))
    return Job(name, info.get("args", []), info.get("pid"), info.get("started_at", 0.0), running, exit_code, log)


def stop(kb_dir, name: str) -> bool:
    """Ask the job to stop as Ctrl-C would (training keeps its checkpoint; evaluation its answers)."""
    job = status(kb_dir, name)
    if job is None or not job.running or job.pid is None:
        return False
    prefix = job.log.with_suffix("")
    prefix.with_suffix(".stop").touch()  # first: a job not ready yet reads it when it is (see ready())
    if prefix.with_suffix(".ready").exists():
        try:
            os.kill(job.pid, signal.SIGINT)
        except ProcessLookupError:
            return False
    return True


def stop_all(kb_dir, grace_s: float = 10.0) -> list[str]:
    """Stop every running job of the knowledge base (as stop() does), and kill what has not ended
    after `grace_s` seconds; returns the names of the jobs that were running."""
    folder = Path(kb_dir) / DIR
    names = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
    running = [n for n in names if (job := status(kb_dir, n)) is not None and job.running]
    for name in running:
        stop(kb_dir, name)
    deadline = time.monotonic() + grace_s
    for name in running:
        while (job := status(kb_dir, name)).running and time.monotonic() < deadline:
            time.sleep(0.1)
        if job.running and job.pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(job.pid, signal.SIGKILL)  # its own session: the job and anything it started
    return running


def ready() -> None:
    """Called by the command line as it starts: in a job, turn Ctrl-C (stop()) back on, and end at
    once as stopped when a stop was asked for before it was ready. Does nothing outside a job."""
    prefix = os.environ.get(JOB_ENV)
    if not prefix:
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    Path(prefix).with_suffix(".ready").touch()  # then look for a stop: one of the two sees the other
    if Path(prefix).with_suffix(".stop").exists():
        raise KeyboardInterrupt


def alive(pid) -> bool:
    """Whether process `pid` runs (not ended, not a zombie waiting to be reaped)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:  # a finished child not yet reaped by anyone still "exists": check it is not a zombie
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(encoding="utf-8", errors="replace").replace("\r", "\n").splitlines()[-lines:])
    except OSError:
        return ""


_RUNNING: dict[tuple[str, str], subprocess.Popen] = {}
