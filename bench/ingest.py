"""Ingest throughput: sample_data/ copied N times (default 50), without embeddings.

Prints files/s and chunks/s for a first ingest, for a re-ingest of the unchanged files, and for
the readers alone (parse only, nothing stored): the baseline measured in the same run, so the
ratio shows what chunking and the SQLite transactions cost on top of parsing.

    .venv/bin/python bench/ingest.py [--copies 50]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kb import readers  # noqa: E402
from kb.ingest import ingest, walk_folder  # noqa: E402
from kb.settings import Settings  # noqa: E402
from kb.store import Store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=50)
    args = parser.parse_args()
    settings = Settings()
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "docs"
        for i in range(args.copies):
            shutil.copytree(ROOT / "sample_data", docs / f"copy_{i:03d}")
        files = [path for path, skip_reason in walk_folder(docs) if not skip_reason]

        for path in files[:4]:  # warm-up: the first call of each reader imports its library
            readers.read(path.read_bytes(), path.name)
        start = time.perf_counter()
        n_parsed = 0
        for path in files:
            doc = readers.read(path.read_bytes(), path.name)
            n_parsed += len(doc.sections) + len(doc.faqs)
        parse_s = time.perf_counter() - start

        with Store(Path(tmp) / "kb") as store:
            start = time.perf_counter()
            results = list(ingest(store, [str(docs)], settings))
            first_s = time.perf_counter() - start
            assert not any(r.failed for r in results), [r.reason for r in results if r.failed]
            n_files = sum(r.status == "added" for r in results)
            n_chunks = store.count()[1]

            start = time.perf_counter()
            again = list(ingest(store, [str(docs)], settings))
            again_s = time.perf_counter() - start
            assert all(r.status in ("unchanged", "skipped") for r in again)

    print(f"corpus: sample_data x {args.copies} = {n_files} files, {n_chunks} chunks")
    print(f"parse only (baseline):  {len(files) / parse_s:8.1f} files/s  ({parse_s:.2f} s)")
    print(f"first ingest:           {n_files / first_s:8.1f} files/s  {n_chunks / first_s:8.1f} chunks/s  ({first_s:.2f} s)"
          f"  ratio to parse only: {parse_s / first_s:.2f}")
    print(f"re-ingest, unchanged:   {n_files / again_s:8.1f} files/s  ({again_s:.2f} s)"
          f"  ratio to first ingest: {first_s / again_s:.1f}x faster")


if __name__ == "__main__":
    main()
