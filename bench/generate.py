"""Generation speed: the plain float32 model against the fast variant (fp16 linear weights,
float32 activations), in the same run, on the grounded prompts the rag path really sends, greedy.

    .venv/bin/python bench/generate.py [--questions 5] [--tokens 64]

For each of the first N in-scope questions of sample_data/eval_questions.jsonl, the top-3 passages
of the sample knowledge base go into the rag prompt (rag.answer.rag_messages). Each variant writes
exactly --tokens tokens (min = max, so both decode the same length however soon the model would
stop) and the script prints the decoding rate (tokens after the first / time after the first), the
time to the first token (the prompt's prefill), whether both variants wrote the same answer, and
the ratio fast / plain. The issue's target is a ratio of at least 2.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from retrieval import eval_rows, sample_store  # noqa: E402

from rag.answer import rag_messages, source_text  # noqa: E402
from rag.generate import Generator  # noqa: E402
from rag.retrieve import Retriever  # noqa: E402


def prompts(n: int) -> list[list[dict]]:
    with tempfile.TemporaryDirectory() as tmp:
        retriever = Retriever(sample_store(Path(tmp)))
        rows = [r for r in eval_rows() if r.get("in_scope", True)][:: max(1, 150 // n)][:n]
        return [rag_messages(r["question"], [source_text(h.chunk)[0] for h in retriever.search(r["question"], 3)]) for r in rows]


def measure(gen: Generator, messages: list[list[dict]], tokens: int) -> tuple[float, float, list[str]]:
    gen.complete(messages[0], max_new_tokens=4)  # warm-up
    rates, firsts, texts = [], [], []
    for m in messages:
        c = gen.complete(m, max_new_tokens=tokens, min_new_tokens=tokens)
        rates.append((c.n_tokens - 1) / (c.seconds - c.first_token_s))
        firsts.append(c.first_token_s)
        texts.append(c.text)
    return statistics.median(rates), statistics.median(firsts), texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    messages = prompts(args.questions)
    results = {}
    for label, fast in (("plain float32", False), ("fast (fp16 linears)", True)):
        results[label] = measure(Generator(device="cpu", fast=fast), messages, args.tokens)
        rate, first, _ = results[label]
        print(f"{label:<22} {rate:6.1f} tokens/s   first token {first * 1000:6.0f} ms (median of {len(messages)} prompts)")
    (base, base_first, base_texts), (fast, fast_first, fast_texts) = results.values()
    same = sum(a == b for a, b in zip(base_texts, fast_texts))
    print(f"same answer from both: {same} of {len(messages)}")
    for a, b in zip(base_texts, fast_texts):
        if a != b:
            print(f"  plain: {a[:100]!r}\n  fast:  {b[:100]!r}")
    print(f"ratio fast / plain: {fast / base:.2f}x tokens/s (target 2x), first token {base_first / fast_first:.2f}x")


if __name__ == "__main__":
    main()
