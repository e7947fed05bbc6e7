"""How the rag path decides to decline, measured: the answerability check against the alternatives.

    .venv/bin/python bench/decline.py                      # the sample and every business in bench/businesses/
    .venv/bin/python bench/decline.py --only groomer       # one business
    .venv/bin/python bench/decline.py --write              # also write the answers (the model's own decline)

Each business is a folder of documents with a `questions.jsonl` (the sample's is
sample_data/eval_questions.jsonl); bench/businesses/ holds two small businesses written for this
check and never used to choose anything else. For each question, on the quality profile: the fast
path's answer, the best passage's cosine, and the check's P(yes) (rag.decide; the writer's prompt
plus "Do the documents above contain the answer...?", P(yes) against P(no) from the logits of the
prompt's last position) with its time. With --write, also the answer the model writes without the
check (whether it declines by itself).

Prints, per business and over all, the out-of-scope questions declined and the in-scope questions
wrongly declined by:
  * retrieval alone: the calibrated refusal threshold, and the highest cosine cut that still
    declines no more than 5% of the in-scope questions (chosen on the answers: a ceiling),
  * the check at each P(yes) threshold,
  * the model's own decline (--write), the way before the check, and the check with it: the
    answer written without the check is itself checked (its made-up facts, and an advice answer's
    words the passages lack, held back; nothing left is a decline), so that line is the rag path
    as shipped,
and the check's time on the whole prompt (p50, p95). --cost N measures what the check adds to a
written answer on N questions: each answered from a cold context without the check and with it
(the writer then reads only where its prompt differs from the check's), p50 and p95 of the
difference and its ratio to the plain answer. --dump FILE writes one JSON line per question.
--lexical-weight W searches with another exact-word weight, to measure it with the decline.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kb.ingest import ingest  # noqa: E402
from kb.settings import Settings  # noqa: E402
from kb.store import Store  # noqa: E402
from rag.answer import RagPath  # noqa: E402
from rag.prompts import check_messages, source_text  # noqa: E402
from rag.decide import Thresholds, advice, decide  # noqa: E402

BUSINESSES = ROOT / "bench" / "businesses"
THRESHOLDS = (0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8)
MAX_WRONGLY = 0.05


def businesses(only: str | None) -> dict[str, tuple[Path, Path]]:
    """{name: (documents folder, questions file)}."""
    found = {"sample": (ROOT / "sample_data", ROOT / "sample_data" / "eval_questions.jsonl")}
    for folder in sorted(p for p in BUSINESSES.iterdir() if p.is_dir()):
        found[folder.name] = (folder, folder / "questions.jsonl")
    if only:
        if only not in found:
            raise SystemExit(f"no business {only!r}; choose from {', '.join(found)}")
        return {only: found[only]}
    return found


def measure(name: str, docs: Path, questions: Path, write: bool, tmp: Path, lexical_weight: float | None = None) -> list[dict]:
    rows = [json.loads(line) for line in questions.read_text().splitlines() if line.strip()]
    kb = tmp / name
    settings = Settings(model_profile="quality")
    if lexical_weight is not None:
        settings = settings.updated(lexical_weight=lexical_weight)
    with Store(kb) as store:
        # The documents only: the questions file and the sample's PDF script are not documents.
        files = [str(p) for p in sorted(docs.iterdir()) if p.suffix in (".csv", ".md", ".html", ".pdf")]
        failed = [r for r in ingest(store, files, settings) if r.failed]
        if failed:
            raise SystemExit(f"{name}: {[(r.target, r.reason) for r in failed]}")
        settings.save(kb)
        path = RagPath(store)
        unchecked = RagPath(store, settings.updated(answer_check=False), generator=path.generator, retriever=path.retriever)
        path.answer("When are you open?")  # load the models before timing
        t = path.thresholds()
        out = []
        for row in rows:
            q = row["question"]
            faq = path.retriever.faq_candidate(q)
            hits = path.retriever.search(q, path.settings.answers.top_k)
            record = {"business": name, "question": q, "in_scope": row.get("in_scope", True),
                      "expected": row.get("expected", []), "advice": advice(q),
                      "fast": bool(faq and faq[1] >= t.faq), "passage": hits[0].dense if hits else 0.0,
                      "refusal_threshold": t.passage}
            if hits and not record["fast"]:
                sources = [source_text(h.chunk)[0] for h in hits]
                start = time.perf_counter()
                record["p_yes"] = path.generator.yes_probability(check_messages(q, sources, path.settings.answers.tone_prompt))
                record["check_ms"] = (time.perf_counter() - start) * 1000
            if write:
                a = unchecked.answer(q)
                record.update(own_text=a.text, own_refused=a.refused, own_method=a.method, own_held_back=a.held_back)
            out.append(record)
            print(f"  {name}: {q[:60]!r} p_yes={record.get('p_yes')}", file=sys.stderr, flush=True)
        return out


def cost(name: str, docs: Path, questions: Path, n: int, tmp: Path) -> list[float]:
    """What the check adds to a written answer, in ms, on the first n in-scope questions that
    are written (not the fast path, not declined by retrieval): cold context each time."""
    from rag.prompts import rag_messages

    rows = [json.loads(line) for line in questions.read_text().splitlines() if line.strip()]
    kb = tmp / f"{name}-cost"
    settings = Settings(model_profile="quality")
    added, plain_ms = [], []
    with Store(kb) as store:
        files = [str(p) for p in sorted(docs.iterdir()) if p.suffix in (".csv", ".md", ".html", ".pdf")]
        list(ingest(store, files, settings))
        settings.save(kb)
        path = RagPath(store)
        path.answer("When are you open?")
        engine, t = path.generator.engine, path.thresholds()
        for row in rows:
            if len(added) >= n or not row.get("in_scope", True):
                continue
            q = row["question"]
            faq = path.retriever.faq_candidate(q)
            hits = path.retriever.search(q, path.settings.answers.top_k)
            if not hits or (faq and faq[1] >= t.faq) or hits[0].dense < t.passage:
                continue
            sources = [source_text(h.chunk)[0] for h in hits]
            times = []
            for check in (False, True):
                engine.llm.reset()  # a cold context: nothing of this prompt read yet
                start = time.perf_counter()
                if check:
                    path.generator.yes_probability(check_messages(q, sources))
                path.generator.complete(rag_messages(q, sources), path.settings.answers.max_new_tokens)
                times.append((time.perf_counter() - start) * 1000)
            plain_ms.append(times[0])
            added.append(times[1] - times[0])
            print(f"  cost: {q[:50]!r} plain {times[0]:.0f} ms, with the check +{added[-1]:.0f} ms", file=sys.stderr)
    added.sort()
    plain = statistics.median(plain_ms)
    print(f"\n== what the check adds to a written answer ({name}, {len(added)} answers, cold context) ==")
    print(f"added p50 {statistics.median(added):.0f} ms, p95 {added[int(0.95 * (len(added) - 1))]:.0f} ms; "
          f"plain answer p50 {plain:.0f} ms; ratio {(plain + statistics.median(added)) / plain:.3f} "
          f"(target: +500 ms at most)")
    return added


def declined_by(r: dict, rule: str, cut: float = 0.0) -> bool:
    """Whether a rule declines a question (the fast path answers before any rule). "check" is the
    rag path's own decision (rag.decide) with `cut` as the answerability threshold."""
    if r["fast"]:
        return False
    below = r["passage"] < r["refusal_threshold"]
    if rule == "retrieval":
        return below
    if rule == "cosine":
        return r["passage"] < cut
    if rule in ("check", "check+own"):
        thresholds = Thresholds(1.0, r["refusal_threshold"], cut)
        declined = decide(r["question"], None, [r["passage"]], thresholds, r.get("p_yes", 0.0)).action == "decline"
        return declined or (rule == "check+own" and r["own_refused"])
    if rule == "own":
        return below or r["own_refused"]
    raise ValueError(rule)


def rates(rows: list[dict], rule: str, cut: float = 0.0) -> tuple[float, float]:
    inside = [r for r in rows if r["in_scope"]]
    outside = [r for r in rows if not r["in_scope"]]
    return (sum(declined_by(r, rule, cut) for r in outside) / max(len(outside), 1),
            sum(declined_by(r, rule, cut) for r in inside) / max(len(inside), 1))


def report(title: str, rows: list[dict], write: bool) -> None:
    inside = sum(r["in_scope"] for r in rows)
    print(f"\n== {title}: {inside} in scope, {len(rows) - inside} out of scope ==")
    print(f"{'rule':34} {'out-of-scope declined':>22} {'in-scope wrongly declined':>26}")
    line = lambda label, o, i: print(f"{label:34} {o:22.3f} {i:26.3f}")  # noqa: E731
    base_out, base_in = rates(rows, "own") if write else (None, None)
    line("retrieval cut (calibrated)", *rates(rows, "retrieval"))
    cuts = sorted({round(r["passage"], 3) for r in rows})
    best = max((c for c in cuts if rates(rows, "cosine", c)[1] <= MAX_WRONGLY), default=0.0)
    line(f"cosine cut {best:.3f} (ceiling)", *rates(rows, "cosine", best))
    for t in THRESHOLDS:
        o, i = rates(rows, "check", t)
        ratio = f"   x{o / base_out:.2f} of the old way" if write and base_out else ""
        line(f"check, P(yes) < {t}", o, i)
        if ratio:
            print(" " * 34 + ratio)
    if write:
        line("model's own decline (the old way)", base_out, base_in)
        # the answer written without the check was itself checked (rag.answer: facts, advice), so
        # the check and it together are the rag path as shipped
        for t in THRESHOLDS[:5]:
            line(f"check {t} + the written answer's", *rates(rows, "check+own", t))
    times = sorted(r["check_ms"] for r in rows if "check_ms" in r)
    if times:
        print(f"check time: p50 {statistics.median(times):.0f} ms, p95 {times[int(0.95 * (len(times) - 1))]:.0f} ms "
              f"({len(times)} checks)")
    advice_rows = [r for r in rows if r["advice"] and not r["fast"] and "p_yes" in r]
    if advice_rows:
        print("advice questions: " + "; ".join(f"{r['question'][:40]!r} {'in' if r['in_scope'] else 'out'} "
                                              f"P={r['p_yes']:.2f}" for r in advice_rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="one business (sample, or a folder name in bench/businesses)")
    parser.add_argument("--write", action="store_true", help="also write each answer without the check")
    parser.add_argument("--dump", metavar="FILE", help="one JSON line per question")
    parser.add_argument("--load", metavar="FILE", help="report on a dump instead of measuring")
    parser.add_argument("--cost", type=int, metavar="N", help="only measure what the check adds, on N answers")
    parser.add_argument("--lexical-weight", type=float, default=None,
                        help="search with this exact-word weight (the lexical_weight setting) instead of its default")
    args = parser.parse_args()
    if args.cost:
        with tempfile.TemporaryDirectory() as tmp:
            for name, (docs, questions) in businesses(args.only).items():
                cost(name, docs, questions, args.cost, Path(tmp))
        return
    if args.load:
        rows = [json.loads(line) for line in Path(args.load).read_text().splitlines() if line.strip()]
        args.write = all("own_refused" in r for r in rows)
    else:
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            for name, (docs, questions) in businesses(args.only).items():
                rows += measure(name, docs, questions, args.write, Path(tmp), args.lexical_weight)
    if args.dump:
        Path(args.dump).write_text("".join(json.dumps(r) + "\n" for r in rows))
    for name in dict.fromkeys(r["business"] for r in rows):
        report(name, [r for r in rows if r["business"] == name], args.write)
    if len({r["business"] for r in rows}) > 1:
        report("all businesses", rows, args.write)


if __name__ == "__main__":
    main()
