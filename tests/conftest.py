"""Shared fixtures: the tiny real test files, a fresh knowledge base folder, and the CLI."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
SAMPLE = ROOT / "sample_data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def sample_kb(folder: Path, faq_rows: int, *documents: str) -> Path:
    """A knowledge base in folder/kb with the first `faq_rows` pairs of the sample FAQ and the named
    sample documents, ingested."""
    import csv

    from kb.ingest import ingest
    from kb.settings import Settings
    from kb.store import Store

    docs = folder / "docs"
    docs.mkdir(parents=True)
    with open(SAMPLE / "faq.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    with open(docs / "faq.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows[: faq_rows + 1])
    for name in documents:
        shutil.copy(SAMPLE / name, docs / name)
    with Store(folder / "kb") as store:
        failed = [r for r in ingest(store, [str(docs)], Settings()) if r.failed]
        assert not failed, failed
    return folder / "kb"


@pytest.fixture
def data() -> Path:
    return DATA


@pytest.fixture
def kb_dir(tmp_path) -> Path:
    return tmp_path / "kb"


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


@pytest.fixture
def kbchat_exe() -> list[str]:
    """The installed console script, for tests that need a real separate process."""
    exe = Path(sys.executable).parent / "kbchat"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "ui.cli"]


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    """A fresh model cache for the session, so the GGUF -> safetensors conversion is tested too."""
    from rag import generate

    folder = tmp_path_factory.mktemp("model_cache")
    mp = pytest.MonkeyPatch()
    mp.setenv(generate.CACHE_ENV, str(folder))
    yield folder
    mp.undo()


@pytest.fixture(scope="session")
def generator(model_cache):
    """The real packaged SmolLM2, converted once and loaded once for the whole session."""
    from rag import generate

    gen = generate.Generator(device="cpu")
    gen.loaded
    return gen
