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
--lexical-weight W searches with another exact-word weight (0.15 was the default until 2026-12-04);
--rescore W has the writer re-score the top passages where the first two are close, as
`bench/retrieval.py --rescore` measures it for ranking (its time counts as search time).

Where a written answer's time goes, p50 and p95 over the answers the model wrote: search, the
answerability check's prompt reading, the writer's reading of the rest of its prompt (to its first
token), decoding (the checks on each sentence run between its tokens), and what runs after the model
(citations, a translation), with the first words shown and the whole answer. --top-k N,
--passage-margin M and --threads N answer with those settings, to see what fewer passages or another
thread count buy in time and cost in facts.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from retrieval import RESCORE_TOP, eval_rows, rescored, sample_store  # noqa: E402

from compare.metrics import percentile  # noqa: E402
from kb.settings import Settings  # noqa: E402
from rag import facts  # noqa: E402
from rag.answer import RagPath  # noqa: E402
from rag.prompts import source_text  # noqa: E402
from rag.retrieve import close_to_best  # noqa: E402

TARGETS = {"fact accuracy (in scope)": 0.80, "out-of-scope refused": 0.9, "FAQ top-1 (reworded)": 0.9}


def normalize(text: str) -> str:
    return " ".join(text.lower().replace("’", "'").split())


def has_fact(answer: str, expected: list[str]) -> bool:
    return any(normalize(e) in normalize(answer) for e in expected)


class Stages:
    """Where each answer's time goes: the path's writer with its calls timed (the check's prompt
    reading, the writer's first token and decoding, read from the engine's own `last` figures), and
    the first words the path shows."""

    def __init__(self, generator):
        self.rows, self.now = [], {}
        ask, write = generator.yes_probability, generator.stream_counted

        def yes_probability(messages):
            start = time.perf_counter()
            try:
                return ask(messages)
            finally:
                last = getattr(generator.engine, "last", {})
                self.now.update(check_s=time.perf_counter() - start,
                                check_read=(last.get("prompt_tokens") or 0) - (last.get("cached_tokens") or 0))

        def stream_counted(messages, max_new_tokens, min_new_tokens=0):
            start, n = time.perf_counter(), 0
            inner = write(messages, max_new_tokens, min_new_tokens)
            try:
                for piece, n in inner:
                    yield piece, n
            finally:
                inner.close()
                last = getattr(generator.engine, "last", {})
                spent, first = time.perf_counter() - start, last.get("first_token_s") or 0.0
                self.now.update(prompt_s=first, decode_s=spent - first, tokens=n,
                                write_read=(last.get("prompt_tokens") or 0) - (last.get("cached_tokens") or 0))

        generator.yes_probability, generator.stream_counted = yes_probability, stream_counted

    def answer(self, path, question: str):
        self.now = {}
        start, first = time.perf_counter(), None
        for item in path.stream(question):
            if isinstance(item, str) and first is None:
                first = time.perf_counter() - start
        answer = item
        if answer.method == "generated":
            model = self.now.get("check_s", 0.0) + self.now.get("prompt_s", 0.0) + self.now.get("decode_s", 0.0)
            self.rows.append({**self.now, "search_s": answer.retrieval_ms / 1000, "first_s": first,
                              "total_s": answer.total_ms / 1000,
                              "after_s": max(0.0, answer.total_ms / 1000 - answer.retrieval_ms / 1000 - model)})
        return answer

    def report(self) -> None:
        rows = self.rows
        if not rows:
            return
        q = lambda key, at: percentile([r.get(key, 0.0) for r in rows], at)  # noqa: E731
        total = sum(r["total_s"] for r in rows)
        print(f"\nwhere a written answer's time goes ({len(rows)} written answers)     p50 s   p95 s   share of all")
        for key, label in (("search_s", "search"),
                           ("check_s", f"check: reading the prompt ({q('check_read', 50):.0f} tokens at p50)"),
                           ("prompt_s", f"writer: the rest of the prompt ({q('write_read', 50):.0f} tokens)"),
                           ("decode_s", f"writer: decoding ({q('tokens', 50):.0f} tokens at p50)"),
                           ("after_s", "after the model ended (citations, translation)"),
                           ("first_s", "first words shown"),
                           ("total_s", "whole answer")):
            share = f"{sum(r.get(key, 0.0) for r in rows) / total:6.0%}" if key not in ("first_s", "total_s") else ""
            print(f"  {label:58} {q(key, 50):5.2f}   {q(key, 95):5.2f}   {share}")
        read = sum(r.get("check_read", 0) + r.get("write_read", 0) for r in rows)
        reading = sum(r.get("check_s", 0) + r.get("prompt_s", 0) for r in rows)
        decoded = sum(r.get("tokens", 0) for r in rows)
        print(f"  prompt reading {read / max(reading, 1e-9):.0f} tokens/s, decoding "
              f"{decoded / max(sum(r.get('decode_s', 0) for r in rows), 1e-9):.1f} tokens/s")


def rescore_search(path: RagPath, weight: float) -> None:
    """The path's search with the writer re-scoring close top passages (bench/retrieval.rescored),
    each question's order kept so the bench's own look at the passages sees the same."""
    search, seen = path.retriever.search, {}

    def rescoring(query: str, k: int = 5, mode: str = "hybrid"):
        wide = max(k, RESCORE_TOP)
        if (query, wide, mode) not in seen:
            seen[(query, wide, mode)] = rescored(search(query, wide, mode), query, path.generator, weight)[0]
        return seen[(query, wide, mode)][:k]

    path.retriever.search = rescoring


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
    parser.add_argument("--top-k", type=int, default=None, help="the top_k setting: how many passages the model reads (default 5)")
    parser.add_argument("--passage-margin", type=float, default=None,
                        help="the passage_margin setting (default 0.2); 1 reads all top_k passages, as before 2026-12-04")
    parser.add_argument("--rescore", type=float, default=None, metavar="W",
                        help="the writer re-scores close top passages at this weight (bench/retrieval.py --rescore), a candidate not in kbchat")
    parser.add_argument("--threads", type=int, default=None, help="the threads setting: the model's CPU threads (default 0: the cores other work leaves free)")
    args = parser.parse_args()
    from kb.models import SPLIT_MODELS

    if args.embedder and args.embedder not in SPLIT_MODELS and not Path(args.embedder).is_dir():
        parser.error(f"--embedder {args.embedder}: no such folder (a sentence-transformers model folder) or packaged model")
    if args.rescore is not None and args.rescore < 0:
        parser.error(f"--rescore {args.rescore}: the weight of the writer's P(yes) must be 0 or more (0.2 was measured)")
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
                 **{k: v for k, v in (("lexical_weight", args.lexical_weight), ("top_k", args.top_k),
                                      ("passage_margin", args.passage_margin), ("threads", args.threads)) if v is not None}).save(store.dir)
        path = RagPath(store)
        if args.rescore is not None:
            rescore_search(path, args.rescore)
        path.answer("When are you open?")  # load both models before timing
        stages = Stages(path.generator)
        by_method: dict[str, list[tuple[bool, float]]] = defaultdict(list)
        in_scope, out_scope, faq_right, faq_n, wrongly_refused = [], [], 0, 0, 0
        fast_given, fast_right, all_ms = 0, 0, []
        held_back, still_unsupported, written, near = 0, 0, 0, []
        tokens, gen_s = 0, 0.0
        dump: list[dict] = []
        for row in rows:
            a = stages.answer(path, row["question"])
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
                answers = path.settings.answers
                read = [source_text(h.chunk)[0] for h in
                        close_to_best(path.retriever.search(a.question, answers.top_k), answers.passage_margin)]
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
    print(f"{'answer time, all questions':28} p50 {statistics.median(ms) / 1000:.1f} s, p95 {percentile(ms, 95) / 1000:.1f} s")
    c = path.retriever.calibration()
    print(f"calibrated on the knowledge base: faq_threshold {c.faq_threshold}, refusal_threshold {c.refusal_threshold} "
          f"({c.figures})")
    print(f"models: {path.settings.models.embedder or 'all-MiniLM-L6-v2'} + {path.generator.model_id}")
    print("\nhow answers were made       n    right   p50 ms   p95 ms")
    for method, results in sorted(by_method.items()):
        ms = sorted(t for _, t in results)
        p95 = percentile(ms, 95)
        print(f"{method:26} {len(results):4}   {sum(ok for ok, _ in results) / len(results):.3f}  {statistics.median(ms):7.0f}  {p95:7.0f}")
    if gen_s:
        print(f"\nmodel speed while answering: {tokens / gen_s:.1f} tokens/s (checks and quoting included)")
    stages.report()


if __name__ == "__main__":
    main()
