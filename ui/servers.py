"""The chat servers (`kbchat serve`) of a knowledge base, found wherever they were started: from the
command line, a service manager or the app's Widget page.

A server writes `servers/<pid>.json` in the knowledge base folder as it starts and removes it when it
ends; a file whose process is gone (a killed server) is ignored and cleaned up. Every interface uses
one default port, DEFAULT_PORT.

    >>> with announced(kb_dir, "127.0.0.1", 8000):      # doctest: +SKIP
    ...     uvicorn.run(app, port=8000)
    >>> running(kb_dir)[0].url                           # doctest: +SKIP
    'http://127.0.0.1:8000'
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from kb.files import atomic_write
from ui.jobs import alive

DEFAULT_PORT = 8000
DIR = "servers"


@dataclass(frozen=True)
class Server:
    pid: int
    host: str
    port: int
    started_at: float

    @property
    def url(self) -> str:
        """Where this computer reaches it (a server listening on every network is on 127.0.0.1 too)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"


def default_url() -> str:
    return f"http://127.0.0.1:{DEFAULT_PORT}"


@contextlib.contextmanager
def announced(kb_dir, host: str, port: int):
    """While the block runs, this process is a chat server of the knowledge base at host:port."""
    me = Server(os.getpid(), host, port, time.time())
    path = Path(kb_dir) / DIR / f"{me.pid}.json"
    atomic_write(path, lambda f: f.write(json.dumps(asdict(me)).encode()))
    try:
        yield me
    finally:
        path.unlink(missing_ok=True)


def running(kb_dir) -> list[Server]:
    """The knowledge base's chat servers whose process is alive, the oldest first."""
    found = []
    for path in sorted((Path(kb_dir) / DIR).glob("*.json")):
        try:
            server = Server(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue  # being written, or not ours
        if alive(server.pid):
            found.append(server)
        else:
            path.unlink(missing_ok=True)  # killed before it could say goodbye
    return sorted(found, key=lambda s: s.started_at)


def stop(server: Server) -> bool:
    """Ask a server to end as Ctrl-C would; False when it was already gone."""
    try:
        os.kill(server.pid, signal.SIGINT)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on host:port now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port_from(port: int, host: str = "127.0.0.1") -> int | None:
    """The first port at or above `port` that is free, or None in the next 100."""
    return next((p for p in range(port, min(port + 100, 65536)) if port_free(p, host)), None)

