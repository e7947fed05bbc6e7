"""The full evaluation of the sample business on every answer path, timed.

    .venv/bin/python bench/eval.py --kb /tmp/evalkb      # a knowledge base with sample_data and an adapter
    .venv/bin/python bench/eval.py                       # makes one: ingests sample_data, trains (~9 min)

Runs `kbchat eval sample_data/eval_questions.jsonl` on rag, base, tuned and rag+tuned (through the
library, as the CLI does), prints the metrics table, the verdict and the wall time per path and in
all, with the ratio to the issue's budget of 20 minutes for all four paths on 2 cores. --report DIR
also writes the HTML report; --profiles adds the rag path under the other model profile (the
report's "Model profiles on this machine"). Resumes like `kbchat eval`: re-running after Ctrl-C only asks what is left.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compare import evaluate, profiles  # noqa: E402
from rag import questions  # noqa: E402
from compare.paths import NAMES, build, parse_names  # noqa: E402
from compare.report import write_report  # noqa: E402
from compare.verdict import verdict  # noqa: E402
from kb.ingest import ingest  # noqa: E402
from kb.settings import Settings  # noqa: E402
from kb.store import Store  # noqa: E402
from tuning import adapters  # noqa: E402

BUDGET_S = 20 * 60
ROWS = ("fact_accuracy", "answer_f1", "rouge_l", "semantic_similarity", "style_similarity", "refusal_accuracy", "hallucination_rate",
        "wrongly_refused", "retrieval_hit_at_1", "retrieval_hit_at_5", "retrieval_mrr", "latency_p50_ms",
        "latency_p95_ms", "tokens_per_s")


def ready_kb(kb: Path) -> Path:
    """A knowledge base with sample_data and an active adapter (trained with the defaults if missing)."""
    with Store(kb) as store:
        if not store.sources():
            failed = [r for r in ingest(store, [str(ROOT / "sample_data")], Settings()) if r.failed]
            assert not failed, failed
        if adapters.active_id(kb) is None:
            from tuning.train import train

            print("no adapter yet: training one with the defaults (about 9 minutes on 2 cores)", flush=True)
            train(store)
    return kb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", help="knowledge base folder (default: a temporary one)")
    parser.add_argument("--paths", default=",".join(NAMES))
    parser.add_argument("--questions", default=str(ROOT / "sample_data" / "eval_questions.jsonl"))
    parser.add_argument("--report", help="also write the HTML report here")
    parser.add_argument("--profiles", action="store_true", help="also the rag path with the other model profile (on a copy)")
    parser.add_argument("--workers", type=int, default=0, help="questions answered at a time (default: as kbchat eval)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        kb = ready_kb(Path(args.kb or Path(tmp) / "kb"))
        asked = questions.load(args.questions)
        with Store(kb) as store:
            settings = Settings.load(kb)
            start = time.perf_counter()
            paths = build(store, settings, parse_names(args.paths))
            load_s = time.perf_counter() - start
            workers = args.workers or evaluate.default_workers(paths)
            for name, reason in paths.unavailable.items():
                print(f"{name}: not evaluated: {reason}")
            per_path: dict[str, float] = defaultdict(float)
            last = [time.perf_counter()]

            def on_answer(path, done, total):
                now = time.perf_counter()
                per_path[path] += now - last[0]
                last[0] = now
                if done % 20 == 0 or done == total:
                    print(f"  {done}/{total} answers ({path})", flush=True)

            result = evaluate.evaluate(asked, paths, store, settings, on_answer, args.questions, workers=workers)
            total_s = time.perf_counter() - start
            if args.profiles:
                started = time.perf_counter()
                result.profiles = profiles.run(store, settings, asked, result, workers=workers)
                print(f"other profile(s), rag path on a copy: {(time.perf_counter() - started) / 60:.1f} min")
    evaluated = {n: result.paths[n] for n in result.evaluated()}
    print(f"\n== {result.n_questions} questions, sample_data/eval_questions.jsonl ==")
    print(f"{'metric':22}" + "".join(f"{n:>12}" for n in evaluated))
    for key in ROWS:
        cells = [m.value(key) for m in evaluated.values()]
        print(f"{key:22}" + "".join(f"{'-' if v is None else round(v, 3):>12}" for v in cells))
    print()
    for line in verdict(result):
        print(line)
    print(f"\nloading models and indexes: {load_s:.0f} s")
    for name, seconds in per_path.items():
        print(f"{name:10} {seconds / 60:5.1f} min for {result.n_questions} questions")
    print(f"workers: {workers} (questions answered at a time)")
    print(f"all paths: {total_s / 60:.1f} min (budget {BUDGET_S / 60:.0f} min on 2 cores; ratio {total_s / BUDGET_S:.2f})")
    if args.report:
        print(f"report: {write_report(result, args.report)}")


if __name__ == "__main__":
    main()
