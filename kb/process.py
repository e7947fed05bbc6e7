"""A server kbchat starts as a child process (the app, llama-server, a chat server for a benchmark
or a test): started with its output in a file, waited for until its health address answers, and
stopped (asked first, killed if it does not go). One helper for the CLI, the model server, the
benchmarks and the tests.

    >>> with Process(["kbchat", "serve", "--port", "8000"]) as server:        # doctest: +SKIP
    ...     server.wait_healthy("http://127.0.0.1:8000/health", timeout=300)
"""

from __future__ import annotations

import subprocess
import tempfile
import time


class NotReady(RuntimeError):
    """The process ended, or did not answer its health address in time; the message has its last output."""


class Process:
    """A running child process. Its output goes to a temporary file (a pipe nobody reads fills and
    blocks the child), or straight to this terminal with `capture=False`."""

    def __init__(self, command: list[str], env: dict | None = None, capture: bool = True, **popen):
        self.command = [str(c) for c in command]
        self._log = tempfile.TemporaryFile() if capture else None
        out = {"stdout": self._log, "stderr": subprocess.STDOUT} if capture else {}
        try:
            self.proc = subprocess.Popen(self.command, env=env, **out, **popen)
        except BaseException:  # no such program, say: its log file goes too
            if self._log is not None:
                self._log.close()
            raise
        self.killed = False  # stop() had to kill it: it did not end when asked

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_healthy(self, url: str, timeout: float | None = None, poll_s: float = 0.25, what: str = "") -> bool:
        """Wait until GET `url` answers 200 (a model server answers 503 while it loads). True when it
        does; False when the process ended first. Past `timeout` (None: as long as it runs),
        NotReady with its last output."""
        import httpx

        end = None if timeout is None else time.monotonic() + timeout
        while self.running():
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            if end is not None and time.monotonic() >= end:
                raise NotReady(f"{what or self.command[0]} did not answer {url} within {timeout:.0f} s:\n{self.output()}")
            time.sleep(poll_s)
        return False

    def require_healthy(self, url: str, timeout: float, what: str = "") -> None:
        """wait_healthy, with NotReady (and its last output) when the process ended first too."""
        if not self.wait_healthy(url, timeout, what=what):
            raise NotReady(f"{what or self.command[0]} stopped (exit status {self.proc.returncode}):\n{self.output()}")

    def output(self, chars: int = 3000) -> str:
        """The end of what it printed so far ('' when its output goes to the terminal)."""
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-chars:]

    def wait(self, timeout: float | None = None) -> int:
        return self.proc.wait(timeout)

    def stop(self, grace_s: float = 5.0) -> int:
        """Ask it to end (SIGTERM); kill it when it has not ended after `grace_s`. Its exit status."""
        if self.running():
            self.proc.terminate()
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.killed = True
        return self.proc.returncode

    def close(self) -> None:
        self.stop()
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> "Process":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
