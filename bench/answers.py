"""Answer quality and speed of the `rag` path on sample_data/eval_questions.jsonl.

    .venv/bin/python bench/answers.py              # all 165 questions (~8 min on 2 cores)
    .venv/bin/python bench/answers.py --limit 40   # a quicker, noisier look
    .venv/bin/python bench/answers.py --embedder DIR   # with another sentence-transformers folder
                                                   # (e.g. one saved by bench/ceiling.py --adapt --save DIR)
    .venv/bin/python bench/answers.py --embedder all-mpnet-base-v2 --generator qwen2.5-coder-1.5b-instruct
                                                   # the stronger packaged models (the names the settings take)

Prints, against the targets of the RAG issue:
  * fact accuracy: in-scope answers containing one of the question's `expected` strings (target 0.85),
  * refusals: out-of-scope questions answered with the fallback message (target 0.8), and in-scope
    questions wrongly refused,
  * how answers were made (faq / generated / quoted / refused), with the fact accuracy of each,
  * latency p50/p95 per method and the model's tokens/s,
  * top-1 retrieval of the right FAQ for reworded FAQ questions (target 0.9),
  * made-up facts: written answers with a sentence held back for naming a number, price, phone
    number or code none of the passages holds (what would have been shown without the fact check),
    and written answers that still name one (target 0),
  * out-of-scope questions near the trade (`near` in the file) declined, apart from the others.
Each rate is printed with its ratio to the target. --show prints every wrong answer;
--no-check answers without the answerability check (the answer_check setting off) for comparison;
--lexical-weight W searches with another exact-word weight (0.15 was the default until 2026-12-04).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from retrieval import eval_rows, sample_store  # noqa: E402

from kb.settings import Settings  # noqa: E402
from rag import facts  # noqa: E402
from rag.answer import RagPath  # noqa: E402
from rag.prompts import source_text  # noqa: E402

TARGETS = {"fact accuracy (in scope)": 0.80, "out-of-scope refused": 0.9, "FAQ top-1 (reworded)": 0.9}


def normalize(text: str) -> str:
    return " ".join(text.lower().replace("’", "'").split())


def has_fact(answer: str, expected: list[str]) -> bool:
    return any(normalize(e) in normalize(answer) for e in expected)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="a random sample of this many questions (seed 7)")
    parser.add_argument("--show", action="store_true", help="print each wrong answer")
    parser.add_argument("--dump", metavar="FILE", help="write one JSON line per question (for calibrating thresholds)")
    parser.add_argument("--profile", choices=["quality", "small"], default="quality", help="the model_profile setting (default quality)")
    parser.add_argument("--embedder", metavar="DIR", default="", help="search with this sentence-transformers folder or packaged model (the embedder_path setting)")
    parser.add_argument("--generator", metavar="MODEL", default="", help="write with this .gguf, model folder or packaged model (the generator_path setting)")
    parser.add_argument("--no-check", action="store_true", help="the answer_check setting off: no answerability check")
    parser.add_argument("--lexical-weight", type=float, default=None,
                        help="the lexical_weight setting (default: its default), e.g. 0.15 to compare with the earlier search")
    args = parser.parse_args()
    from kb.models import SPLIT_MODELS

    if args.embedder and args.embedder not in SPLIT_MODELS and not Path(args.embedder).is_dir():
        parser.error(f"--embedder {args.embedder}: no such folder (a sentence-transformers model folder) or packaged model")
    if args.generator and args.generator not in SPLIT_MODELS and not Path(args.generator).exists():
        parser.error(f"--generator {args.generator}: no such file or folder, nor a packaged model")
    rows = eval_rows()
    if args.limit:
        rows = random.Random(7).sample(rows, args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        store = sample_store(Path(tmp))
        # The index is built with the chosen search model on the first question.
        resolve = lambda m: m if m in SPLIT_MODELS or not m else str(Path(m).resolve())  # noqa: E731
        Settings(model_profile=args.profile, embedder_path=resolve(args.embedder),
                 generator_path=resolve(args.generator), answer_check=not args.no_check,
                 **({} if args.lexical_weight is None else {"lexical_weight": args.lexical_weight})).save(store.dir)
        path = RagPath(store)
        path.answer("When are you open?")  # load both models before timing
        by_method: dict[str, list[tuple[bool, float]]] = defaultdict(list)
        in_scope, out_scope, faq_right, faq_n, wrongly_refused = [], [], 0, 0, 0
        fast_given, fast_right, all_ms = 0, 0, []
        held_back, still_unsupported, written, near = 0, 0, 0, []
        tokens, gen_s = 0, 0.0
        dump: list[dict] = []
        for row in rows:
            a = path.answer(row["question"])
            if a.n_tokens:
                tokens, gen_s = tokens + a.n_tokens, gen_s + a.generation_ms / 1000
            if "faq_question" in row:
                faq_n += 1
                top = path.retriever.search(row["question"], 1)
                faq_right += bool(top and top[0].chunk.faq and top[0].chunk.faq.question == row["faq_question"])
            if row.get("in_scope", True):
                ok = has_fact(a.text, row["expected"])
                in_scope.append(ok)
                wrongly_refused += a.refused
            else:
                ok = a.refused
                out_scope.append(ok)
            by_method[a.method].append((ok, a.total_ms))
            if row.get("near"):
                near.append(ok)
            held_back += bool(a.held_back)
            if a.method == "generated":
                written += 1
                read = [source_text(h.chunk)[0] for h in path.retriever.search(a.question, path.settings.answers.top_k)]
                missing = facts.unsupported(a.text, read + [path.settings.answers.tone_prompt])
                still_unsupported += bool(missing)
                if missing and args.show:
                    print(f"  ! unsupported {missing} in {a.text[:120]!r}")
            all_ms.append(a.total_ms)
            if a.method == "faq":  # right only when it is the curated answer of the question's own FAQ
                fast_given += 1
                fast_right += bool(row.get("faq_question")) and normalize(a.text) == normalize(row.get("answer", ""))
            if args.dump:
                emb = path.retriever.embedder
                relevance = float(emb.embed_one(re.sub(r"\[\d+\]", "", a.text)) @ emb.embed_one(a.question))
                dump.append({**row, "method": a.method, "confidence": a.confidence, "relevance": relevance, "right": ok, "text": a.text})
            if args.show and not ok:
                print(f"  x [{a.method}] {row['question']!r} -> {a.text[:160]!r}")
    if args.dump:
        Path(args.dump).write_text("".join(json.dumps(d) + "\n" for d in dump))
    rates = {
        "fact accuracy (in scope)": sum(in_scope) / max(len(in_scope), 1),
        "out-of-scope refused": sum(out_scope) / max(len(out_scope), 1),
        "FAQ top-1 (reworded)": faq_right / max(faq_n, 1),
    }
    print(f"\n== rag answers on sample_data/eval_questions.jsonl: {len(in_scope)} in scope, {len(out_scope)} out of scope ==")
    for name, value in rates.items():
        print(f"{name:28} {value:.3f}  (target {TARGETS[name]}, ratio {value / TARGETS[name]:.2f})")
    print(f"{'in scope wrongly refused':28} {wrongly_refused / max(len(in_scope), 1):.3f}  (target 0.05)")
    if near:
        print(f"{'out-of-scope near the trade':28} {sum(near) / len(near):.3f}  ({len(near)} questions; the others "
              f"{(sum(out_scope) - sum(near)) / max(len(out_scope) - len(near), 1):.3f})")
    print(f"{'made-up facts held back':28} {held_back} answers (a sentence naming a fact no passage holds was left out)")
    print(f"{'made-up facts shown':28} {still_unsupported} of {written} written answers (target 0)")
    print(f"{'fast path precision':28} {fast_right / max(fast_given, 1):.3f}  (target 0.98; {fast_given} of {len(rows)} "
          f"questions answered word for word)")
    ms = sorted(all_ms)
    print(f"{'answer time, all questions':28} p50 {statistics.median(ms) / 1000:.1f} s, p95 {ms[min(len(ms) - 1, int(0.95 * len(ms)))] / 1000:.1f} s")
    c = path.retriever.calibration()
    print(f"calibrated on the knowledge base: faq_threshold {c.faq_threshold}, refusal_threshold {c.refusal_threshold} "
          f"({c.figures})")
    print(f"models: {path.settings.models.embedder or 'all-MiniLM-L6-v2'} + {path.generator.model_id}")
    print("\nhow answers were made       n    right   p50 ms   p95 ms")
    for method, results in sorted(by_method.items()):
        ms = sorted(t for _, t in results)
        p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
        print(f"{method:26} {len(results):4}   {sum(ok for ok, _ in results) / len(results):.3f}  {statistics.median(ms):7.0f}  {p95:7.0f}")
    if gen_s:
        print(f"\nmodel speed while answering: {tokens / gen_s:.1f} tokens/s (checks and quoting included)")


if __name__ == "__main__":
    main()
