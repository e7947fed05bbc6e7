"""Generation engines side by side, on the grounded prompts the rag path really sends, greedy.

    .venv/bin/python bench/generate.py                      # SmolLM2-135M, every engine (~5 min on 2 cores)
    .venv/bin/python bench/generate.py --model qwen         # Qwen2.5-Coder-1.5B on llama.cpp
    .venv/bin/python bench/generate.py --model qwen --transformers   # ... and on transformers (bf16; slow)
    .venv/bin/python bench/generate.py --questions 8 --threads 1,2
    .venv/bin/python bench/generate.py --model qwen --threads 0,2 --busy 1   # beside 1 core of other work

For N in-scope questions of sample_data/eval_questions.jsonl (spread over the file), the top-3
passages of the sample knowledge base go into the rag prompt (rag.prompts.rag_messages). Every
engine answers each prompt as the rag path would (up to the max_new_tokens setting, stopping where
the model ends), each engine in its own process so its peak memory is its own. Printed per engine:
whole answer p50 and p95, time to first token p50, prompt tokens/s (prompt tokens read / time to the
first token), decode tokens/s (tokens after the first / time after it), peak RAM, and how many
answers are word for word those of the reference engine (the first one listed). Then the ratios the
llama.cpp issue sets: SmolLM2 whole answer >= 1.5x faster than today's engine (transformers, fp16
linears) with the first token no later; Qwen whole answer p50 <= 15 s and first token <= 8 s.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def prompts(n: int) -> list[list[dict]]:
    from retrieval import eval_rows, sample_store

    from rag.prompts import rag_messages, source_text
    from rag.retrieve import Retriever

    with tempfile.TemporaryDirectory() as tmp:
        retriever = Retriever(sample_store(Path(tmp)))
        rows = [r for r in eval_rows() if r.get("in_scope", True)][:: max(1, 150 // n)][:n]
        return [rag_messages(r["question"], [source_text(h.chunk)[0] for h in retriever.search(r["question"], 3)]) for r in rows]


def counted(t: int) -> str:
    return "threads fitted to the free cores (0)" if t == 0 else f"{t} thread{'s' * (t > 1)}"


def engines(model: str, threads: list[int], with_transformers: bool) -> list[tuple[str, dict]]:
    """(label, Generator arguments), the reference first."""
    if model == "small":
        found = [("transformers fp32", dict(backend="transformers", fast=False)),
                 ("transformers fp16 linears (before)", dict(backend="transformers", fast=True))]
        for t in threads:
            found.append((f"llama.cpp f16, {counted(t)}", dict(backend="llama.cpp", threads=t)))
            found.append((f"llama.cpp Q4_1 (packaged), {counted(t)}", dict(backend="llama.cpp", threads=t, raw=True)))
        return found
    found = [(f"llama.cpp Q4_K_M, {counted(t)}", dict(path="qwen2.5-coder-1.5b-instruct", backend="llama.cpp", threads=t))
             for t in threads]
    if with_transformers:
        found.insert(0, ("transformers bf16", dict(path="qwen2.5-coder-1.5b-instruct", backend="transformers", dtype="bf16")))
    return found


def run_one(spec: dict, messages: list[list[dict]], max_new_tokens: int) -> dict:
    """Answer every prompt with one engine (in this process) and return the figures."""
    from kb.models import generator_path
    from rag import generate, llama

    spec = dict(spec)
    raw, dtype = spec.pop("raw", False), spec.pop("dtype", "")
    gen = generate.Generator(**spec)
    if raw:  # the packaged file as it is, not the f16 conversion kbchat runs
        source = generator_path(spec.get("path", ""))
        gen = generate.Generator(engine=llama.load(source, None, spec["threads"], name=source.stem + " (as packaged)"))
    if dtype == "bf16":
        import torch

        loaded = generate.load_private(spec["path"], "cpu")
        loaded.model.to(torch.bfloat16)
        gen = generate.Generator(engine=generate.TransformersEngine(loaded))
    gen.complete(messages[0], max_new_tokens=4)  # load and warm up
    rows = []
    for m in messages:
        gen.engine.last = {}
        c = gen.complete(m, max_new_tokens=max_new_tokens)
        last = gen.engine.last
        read = last.get("prompt_tokens", 0) - last.get("cached_tokens", 0)
        rows.append({"text": c.text, "seconds": c.seconds, "first": c.first_token_s, "tokens": c.n_tokens,
                     "prompt_rate": read / c.first_token_s if c.first_token_s else 0.0,
                     "decode_rate": (c.n_tokens - 1) / (c.seconds - c.first_token_s) if c.n_tokens > 1 and c.seconds > c.first_token_s else 0.0})
    return {"rows": rows, "model_id": gen.model_id, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=("small", "qwen"), default="small")
    parser.add_argument("--questions", type=int, default=6)
    parser.add_argument("--threads", default="1,2", help="llama.cpp thread counts to measure, comma-separated; 0: fitted to the free cores before each answer")
    parser.add_argument("--busy", type=int, default=0, metavar="N",
                        help="run beside N busy loops, as on a machine where other programs keep N cores busy")
    parser.add_argument("--transformers", action="store_true", help="qwen: also measure transformers in bf16 (minutes to load)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: JSON spec of one engine, run in a child process
    parser.add_argument("--prompts", help=argparse.SUPPRESS)
    args = parser.parse_args()
    from kb.settings import Settings

    max_new = Settings().answers.max_new_tokens
    if args.one:
        messages = json.loads(Path(args.prompts).read_text())
        print(json.dumps(run_one(json.loads(args.one), messages, max_new)))
        return
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        results = measure(args, threads)
    finally:
        for loop in loops:
            loop.kill()
    if results:
        report(args, results)


def measure(args, threads: list[int]) -> dict:
    """{engine label: its answers and figures}, each engine in its own process."""
    with tempfile.TemporaryDirectory() as tmp:
        prompt_file = Path(tmp) / "prompts.json"
        prompt_file.write_text(json.dumps(prompts(args.questions)))
        results = {}
        for label, spec in engines(args.model, threads, args.transformers):
            start = time.perf_counter()
            done = subprocess.run([sys.executable, __file__, "--one", json.dumps(spec), "--prompts", str(prompt_file)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{label}: failed\n{done.stderr[-1500:]}")
                continue
            results[label] = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"  ({label}: {time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return results


def report(args, results: dict) -> None:
    from kb.settings import Settings

    max_new = Settings().answers.max_new_tokens
    busy = f", beside {args.busy} busy loop{'s' * (args.busy > 1)}" if args.busy else ""
    reference = next(iter(results.values()))["rows"]
    print(f"{len(reference)} rag prompts of sample_data, up to {max_new} new tokens, greedy{busy}; reference: {next(iter(results))}")
    print(f"{'engine':<40} {'answer p50':>10} {'p95':>7} {'1st token':>9} {'prompt t/s':>10} {'decode t/s':>10} {'peak RAM':>9} {'same':>5}")
    summary = {}
    for label, r in results.items():
        rows = r["rows"]
        same = sum(a["text"] == b["text"] for a, b in zip(rows, reference))
        whole, first = p([x["seconds"] for x in rows], 0.5), p([x["first"] for x in rows], 0.5)
        summary[label] = (whole, first)
        print(f"{label:<40} {whole:9.2f}s {p([x['seconds'] for x in rows], 0.95):6.2f}s {first:8.2f}s "
              f"{statistics.median(x['prompt_rate'] for x in rows):10.0f} {statistics.median(x['decode_rate'] for x in rows):10.1f} "
              f"{r['peak_mb']:7.0f}MB {same:>2}/{len(rows)}")
    if args.model == "small" and "transformers fp16 linears (before)" in summary:
        before, before_first = summary["transformers fp16 linears (before)"]
        llama_runs = {k: v for k, v in summary.items() if k.startswith("llama.cpp f16")}
        if llama_runs:
            best = min(llama_runs, key=lambda k: llama_runs[k][0])
            print(f"ratio {best} / before: whole answer {before / llama_runs[best][0]:.2f}x faster (goal >= 1.5x), "
                  f"first token {before_first / llama_runs[best][1]:.2f}x (goal >= 1.0x)")
    fitted = [k for k in summary if k.endswith("(0)")]
    for label in fitted:
        for other in summary:
            if other != label and other.split(", ")[0] == label.split(", ")[0]:
                print(f"ratio {label} / {other.split(', ')[-1]}: whole answer {summary[other][0] / summary[label][0]:.2f}x faster, "
                      f"first token {summary[other][1] / summary[label][1]:.2f}x")
    if args.model == "qwen":
        for label, (whole, first) in summary.items():
            print(f"{label}: whole answer p50 {whole:.1f} s = {whole / 15:.2f}x the 15 s goal, first token {first:.1f} s = {first / 8:.2f}x the 8 s goal")


if __name__ == "__main__":
    main()
