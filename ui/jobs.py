"""Long work the app starts in the background: fine-tuning, evaluation and the chat server.

Each job is a `kbchat` command in its own process, so the page stays usable, a crash cannot take the
app down, and the work goes on if the page is closed. A job's state lives in the knowledge base
(`jobs/<name>.json` and `jobs/<name>.log`), so any page, or a restarted app, sees it.

    >>> start(kb_dir, "tune", ["tune"])           # doctest: +SKIP
    >>> status(kb_dir, "tune").running            # doctest: +SKIP
    >>> stop(kb_dir, "tune")                      # Ctrl-C: training saves a checkpoint  # doctest: +SKIP
"""

from __future__ import annotations

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
# Set in a job's environment: stop() ends a job with SIGINT, so a job must act on it whoever started
# it. A process that ignores SIGINT (anything a shell script starts with `&`, a test run among them)
# passes that on to its children, and stop() then did nothing. The app itself was not hit: Streamlit
# catches SIGINT, and a caught signal is reset to the default in the children it starts.
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
        """Ended by stop() (Ctrl-C): exit status 130, or killed by the signal before it could say so."""
        return not self.running and self.exit_code in (130, -signal.SIGINT)

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
    with open(log, "wb") as out:
        proc = subprocess.Popen([*kbchat_command(), "--kb", str(kb_dir), *args], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, env={**os.environ, JOB_ENV: "1"})
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
        running = _alive(info.get("pid"))
    return Job(name, info.get("args", []), info.get("pid"), info.get("started_at", 0.0), running, exit_code, log)


def stop(kb_dir, name: str) -> bool:
    """Ask the job to stop as Ctrl-C would (training keeps its checkpoint; evaluation its answers)."""
    job = status(kb_dir, name)
    if job is None or not job.running or job.pid is None:
        return False
    try:
        os.kill(job.pid, signal.SIGINT)
    except ProcessLookupError:
        return False
    return True


def _alive(pid) -> bool:
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
