"""Shared fixtures: the tiny real test files, a fresh knowledge base folder, and the CLI."""

from __future__ import annotations

import contextlib
import os
import shutil
from contextlib import contextmanager
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT / "bench"))  # bench/services.py: the real PostgreSQL and Redis the tests and benchmarks run
DATA = ROOT / "tests" / "data"
SAMPLE = ROOT / "sample_data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Most tests check plumbing (ingest, API, app, widget, jobs), and run on the small model profile to
# keep the suite inside its time on 2 cores; the answer-quality tests (test_answer_quality.py) name
# the default "quality" profile themselves. Set before kb.settings is imported: it is the default
# of the model_profile setting.
os.environ.setdefault("KBCHAT_MODEL_PROFILE", "small")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# `make test` runs the tests in 2 processes (pytest-xdist): while one waits on a server it started,
# a browser or a subprocess, the other uses the core. Each gets its share of the cores for torch
# (set before torch is imported), so two processes never run four threads on two cores; llama.cpp
# fits its own threads to the cores left free (rag.cores).
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    from rag.cores import allowed_cpus  # noqa: E402  (imports neither torch nor the settings)

    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, len(allowed_cpus()) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))))

from serve import free_port  # noqa: E402  (bench/serve.py; after the profile above: it imports kb.settings)


def sample_kb(folder: Path, faq_rows: int, *documents: str, extra_faq: tuple[tuple[str, str], ...] = ()) -> Path:
    """A knowledge base in folder/kb with the first `faq_rows` pairs of the sample FAQ (then the
    `extra_faq` pairs) and the named sample documents, ingested."""
    import csv

    from kb.ingest import ingest
    from kb.settings import Settings
    from kb.store import Store

    docs = folder / "docs"
    docs.mkdir(parents=True)
    with open(SAMPLE / "faq.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    with open(docs / "faq.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows[: faq_rows + 1] + [list(pair) for pair in extra_faq])
    for name in documents:
        shutil.copy(SAMPLE / name, docs / name)
    with Store(on_backend(folder / "kb")) as store:
        failed = [r for r in ingest(store, [str(docs)], Settings()) if r.failed]
        assert not failed, failed
    return folder / "kb"


@pytest.fixture
def data() -> Path:
    return DATA


@pytest.fixture
def kb_dir(tmp_path) -> Path:
    return on_backend(tmp_path / "kb")


def on_backend(folder: Path) -> Path:
    """The knowledge base folder, as it is (SQLite), or, with KBCHAT_TEST_BACKEND=postgres and
    KBCHAT_TEST_POSTGRES_URL set, pointed at a fresh bot in that database: the whole suite can run
    on the PostgreSQL store that way (tests that look at SQLite files directly then fail, as they
    should). The bots are left in that database."""
    import uuid

    url = os.environ.get("KBCHAT_TEST_POSTGRES_URL")
    if os.environ.get("KBCHAT_TEST_BACKEND") != "postgres" or not url:
        return folder
    from kb.location import DATABASE_FILE, split_bot

    folder.mkdir(parents=True, exist_ok=True)
    bot = f"t_{uuid.uuid4().hex[:12]}"
    (folder / DATABASE_FILE).write_text(f'url = "{split_bot(url)[0]}"\nbot = "{bot}"\n', encoding="utf-8")
    return folder


@pytest.fixture
def store(kb_dir):
    from kb.store import Store

    with Store(kb_dir) as s:
        yield s


@pytest.fixture
def copy_data(tmp_path):
    """Copy named test files into a fresh folder (so tests may change them)."""

    def copy(*names: str, into: str = "docs") -> Path:
        folder = tmp_path / into
        folder.mkdir(exist_ok=True)
        for name in names:
            src = DATA / name if (DATA / name).exists() else SAMPLE / name
            shutil.copy(src, folder / name)
        return folder

    return copy


class Cli:
    """Runs `kbchat` in-process against one knowledge base folder."""

    def __init__(self, kb_dir: Path):
        self.kb_dir = kb_dir
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None):
        from ui.cli import cli

        return self.runner.invoke(cli, ["--kb", str(self.kb_dir), *map(str, args)], input=input, catch_exceptions=False)


@pytest.fixture
def kbchat(kb_dir) -> Cli:
    return Cli(kb_dir)


def kbchat_command() -> list[str]:
    """The installed console script, for tests that need a real separate process."""
    exe = Path(sys.executable).parent / "kbchat"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "ui.cli"]


@pytest.fixture
def kbchat_exe() -> list[str]:
    return kbchat_command()


@contextmanager
def kbchat_server(kb: Path, model_cache: Path, command: str, health: str, *args: str):
    """`kbchat --kb KB COMMAND --port P ARGS...` (serve or ui) in its own process, until the block
    ends; yields its base address once `health` answers."""
    from kb.process import Process

    port = free_port()
    env = {**os.environ, "KBCHAT_CACHE": str(model_cache)}
    base = f"http://127.0.0.1:{port}"
    with Process([*kbchat_command(), "--kb", str(kb), command, "--port", str(port), *args], env=env) as server:
        wait_for_http(base + health, server)
        yield base
        server.stop(grace_s=60)  # kbchat ui and serve end their children and jobs on SIGTERM
        if server.killed:
            pytest.fail(f"kbchat {command} did not end within 60 s of SIGTERM")


@contextmanager
def made_once(tmp_path_factory, name: str):
    """A folder for something the whole test run makes once, and whether it still has to be made:
    with several test processes (pytest-xdist) the first makes it while the others wait, then they
    all use it. Yields (folder, todo) with the lock held; the folder exists, and is empty when todo
    (what a process that failed half-way left is made again from the start)."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the processes of one run
    folder, done = root / name, root / f"{name}.done"
    with FileLock(str(root / f"{name}.lock")):
        todo = not done.exists()
        if todo:
            shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(exist_ok=True)
        yield folder, todo
        done.touch()


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    """A fresh model cache for the run: the packaged models joined, checked and converted into it
    once (the GGUF -> safetensors -> f16 GGUF conversion of SmolLM2 is tested that way too), then
    shared by every test process."""
    from kb import models
    from rag import generate

    mp = pytest.MonkeyPatch()
    with made_once(tmp_path_factory, "model_cache") as (folder, todo):
        mp.setenv(generate.CACHE_ENV, str(folder))
        if todo:
            generate.llama_file(models.smollm2_path())
            models.joined(models.MPNET)
            models.joined(models.QWEN_CODER)
    yield folder
    mp.undo()


# A tiny fine-tuning run: enough to show the loss falling and to give every tuned path an adapter.
TINY_TUNE = dict(epochs=2, n_rewordings=2, batch_size=4, patience=5, learning_rate=1e-3)


@pytest.fixture(scope="session")
def tuned_kb(tmp_path_factory, model_cache):
    """A knowledge base (8 sample FAQ pairs and the price list) with an adapter trained on it, made
    once for the run and shared by its test processes. Tests must not change it: copy it (and
    ingest into the copy) to."""
    from kb.store import Store
    from tuning import adapters
    from tuning.train import TuneSettings, train

    with made_once(tmp_path_factory, "tuned") as (folder, todo):
        if todo:
            kb = sample_kb(folder, 8, "price_list.md")
            with Store(kb) as store:
                train(store, TuneSettings(**TINY_TUNE))
        kb = folder / "kb"
        return kb, adapters.get(kb)


@pytest.fixture(scope="session")
def generator(model_cache):
    """The real packaged SmolLM2 on llama.cpp, converted once and loaded once for the whole session."""
    from rag import generate

    gen = generate.Generator(device="cpu")
    gen.engine
    return gen


# -- real browser tests ---------------------------------------------------------------------------
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def require_chromium() -> None:
    """Skip a browser test module when Chromium is missing, except in CI (`make test` installs it)."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    if os.environ.get("CI"):
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium and chromium-driver.", pytrace=False)
    pytest.skip("Chromium is not installed (make test installs it)", allow_module_level=True)


def wait_for(predicate, timeout: float = 120, what: str = "the page"):
    """Poll until `predicate()` is truthy (and return it), else fail saying what did not appear."""
    import time

    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium driven by selenium (the recipe in shared/BROWSER.md)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def wait_for_http(url: str, server, timeout: float = 120) -> None:
    """Wait until a server we started (kb.process.Process) answers `url` with 200; fail with its
    output if it stopped or never did."""
    from kb.process import NotReady

    try:
        server.require_healthy(url, timeout)
    except NotReady as e:
        pytest.fail(str(e))


# -- real shared services (bench/services.py) -----------------------------------------------------
@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL server with pgvector for the session (KBCHAT_TEST_POSTGRES_URL, else started)."""
    yield from _service("postgres")


@pytest.fixture(scope="session")
def redis_url():
    """A Redis server for the session (KBCHAT_TEST_REDIS_URL, else started on loopback)."""
    yield from _service("redis")


def _service(name: str):
    import services

    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(getattr(services, name)())
        except services.ServiceMissing as e:
            pytest.fail(str(e), pytrace=False)
        yield url


def bot_url(postgres_url: str, bot: str) -> str:
    """The database address of one bot (kb.location): the server's URL with ?bot=NAME."""
    return postgres_url + ("&" if "?" in postgres_url else "?") + f"bot={bot}"


@pytest.fixture
def pg_kb(postgres_url, tmp_path, monkeypatch):
    """A fresh knowledge base in PostgreSQL (its own bot, dropped afterwards); yields its folder."""
    import uuid

    from kb.db import drop_bot
    from kb.location import database_of, resolve

    monkeypatch.setenv("KBCHAT_FILES", str(tmp_path / "files"))
    folder = resolve(bot_url(postgres_url, "t_" + uuid.uuid4().hex[:10]))
    yield folder
    drop_bot(*database_of(folder))


@pytest.fixture(params=["sqlite", "postgres"])
def any_kb(request, tmp_path):
    """The same test on both store backends: a SQLite folder, and a bot in PostgreSQL."""
    if request.param == "sqlite":
        return tmp_path / "kb"
    return request.getfixturevalue("pg_kb")


# -- a web site on this computer ---------------------------------------------------------------
def send_page(handler: BaseHTTPRequestHandler, status: int, html: str) -> None:
    """A loopback site's reply: an HTML page with this status."""
    body = html.encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "text/html; charset=utf-8")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class _Site(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/go"):  # a redirect to wherever ?to= says
            self.send_response(302)
            self.send_header("Location", self.path.split("to=", 1)[1])
            self.end_headers()
            return
        send_page(self, 200, "<html><head><title>Opening hours</title></head><body><p>We open at 9 am, Monday to "
                             "Saturday.</p></body></html>")

    def log_message(self, *args):
        pass


@pytest.fixture
def site():
    """A small web site on loopback: /go?to=URL redirects there; every other page is the opening hours."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
