"""Generation speed: the plain float32 model against the fast variant (fp16 linear weights,
float32 activations), in the same run, on the same grounded prompt, greedy decoding.

Prints tokens/s of decoding, time to first token, and the ratio fast / plain.

    .venv/bin/python bench/generate.py [--tokens 64] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.generate import Generator  # noqa: E402

MESSAGES = [
    {"role": "system", "content": "You answer customer questions for Copper Kiln Pottery Studio using only the numbered sources. Cite them like [1]."},
    {"role": "user", "content": (
        "Sources:\n[1] Q: What are your opening hours?\nA: We're open Tuesday to Friday from 10 am to 9 pm, Saturday from 9 am "
        "to 6 pm, and Sunday from 11 am to 5 pm. The studio is closed on Mondays.\n"
        "[2] The Beginner Wheel-Throwing Course costs $285 for six weekly 2.5-hour sessions.\n\n"
        "Question: Can I come in on a Monday, and what does the beginner course cost?")},
]


def measure(gen: Generator, tokens: int, runs: int) -> tuple[float, float, str]:
    gen.complete(MESSAGES, max_new_tokens=4)  # warm-up
    rates, firsts = [], []
    text = ""
    for _ in range(runs):
        c = gen.complete(MESSAGES, max_new_tokens=tokens)
        # decoding rate: tokens after the first over the time after the first
        rates.append((c.n_tokens - 1) / (c.seconds - c.first_token_s) if c.n_tokens > 1 else 0.0)
        firsts.append(c.first_token_s)
        text = c.text
    return statistics.median(rates), statistics.median(firsts), text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = {}
    for label, fast in (("plain float32", False), ("fast (fp16 linears)", True)):
        results[label] = measure(Generator(device="cpu", fast=fast), args.tokens, args.runs)
        rate, first, text = results[label]
        print(f"{label:<22} {rate:6.1f} tokens/s   first token {first * 1000:6.0f} ms   answer: {text[:90]!r}")
    (base, base_first, _), (fast, fast_first, _) = results.values()
    print(f"ratio fast / plain: {fast / base:.2f}x tokens/s, first token {base_first / fast_first:.2f}x faster")


if __name__ == "__main__":
    main()
