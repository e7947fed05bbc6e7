"""Follow-up questions, measured: chats answered turn by turn on the rag path (quality profile).

    .venv/bin/python bench/chats.py                      # the sample's chats (sample_data/eval_chats.jsonl)
    .venv/bin/python bench/chats.py --only groomer       # a business in bench/businesses (its chats.jsonl)
    .venv/bin/python bench/chats.py --ways kbchat,alone  # fewer ways

Each chat is asked turn by turn, each way:
  * alone: every message answered by itself, as before chats were followed (the baseline),
  * kbchat: the rag path with the chat's earlier turns (rag.followup: the message searched by itself
    and after the topic of the turn before, the better match kept; the writer reads the turns),
  * rewrite: the writer model first rewrites the message into a standalone question from the chat
    (only when there are earlier turns), which is then searched; the writer reads the turns too.
A turn is right when its answer has an expected fact, or, out of scope, declines. Prints, per way,
first turns, follow-ups and topic switches right apart, topic switches searched with the old
topic, and the time a follow-up adds at p50 (against the same turns answered alone), with the ratio
to the baseline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import questions as question_sets  # noqa: E402
from compare.metrics import has_fact, looks_refused  # noqa: E402
from kb.ingest import ingest  # noqa: E402
from kb.records import Turn, question_key  # noqa: E402
from kb.settings import Settings  # noqa: E402
from kb.store import Store  # noqa: E402
from rag.answer import RagPath  # noqa: E402

WAYS = ("alone", "kbchat", "rewrite")
REWRITE = ("Rewrite the customer's last message as one standalone question that names what it refers to in the "
           "conversation. If it already stands alone, repeat it unchanged. Reply with the question only.")


def rewrite(path: RagPath, question: str, history: list[Turn]) -> str:
    """The writer model's standalone version of a follow-up (the alternative measured here)."""
    if not history:
        return question
    chat = "\n".join(f"Customer: {t.question}\nAssistant: {t.answer}" for t in history[-3:])
    messages = [{"role": "system", "content": REWRITE},
                {"role": "user", "content": f"{chat}\nCustomer's last message: {question}"}]
    text = path.generator.complete(messages, 40).text.strip().strip('"')
    return text.splitlines()[0] if text else question


def run(name: str, docs: Path, chats: Path, ways: list[str], tmp: Path) -> dict[str, list[dict]]:
    turns = question_sets.load(chats)
    kb = tmp / name
    settings = Settings(model_profile="quality")
    out: dict[str, list[dict]] = {w: [] for w in ways}
    with Store(kb) as store:
        files = [str(p) for p in sorted(docs.iterdir()) if p.suffix in (".csv", ".md", ".html", ".pdf")]
        assert not [r for r in ingest(store, files, settings) if r.failed]
        settings.save(kb)
        path = RagPath(store)
        path.answer("When are you open?")  # load the models before timing
        for way in ways:
            history: list[Turn] = []
            for q in turns:
                if q.turn == 0:
                    history = []
                start = time.perf_counter()
                asked = q.question
                if way == "rewrite":
                    asked = rewrite(path, q.question, history)
                a = path.answer(asked, [] if way == "alone" else history)
                ms = (time.perf_counter() - start) * 1000
                right = has_fact(a.text, q.expected) if q.in_scope and q.expected else (
                    a.refused or looks_refused(a.text, path.settings.answers.fallback_message)) if not q.in_scope else None
                searched = asked if way == "rewrite" else a.searched
                out[way].append({"context": q.context, "right": right, "ms": ms, "tokens": a.n_tokens,
                                 "question": q.question, "searched": searched, "text": a.text,
                                 "old_topic": q.context == "switch" and question_key(searched) != question_key(q.question)})
                history.append(Turn(q.question, a.text, searched))
                print(f"  {name}/{way} [{q.context}] {q.question!r} -> {searched!r}: {'right' if right else 'WRONG'} "
                      f"{a.text[:90]!r}", file=sys.stderr, flush=True)
    return out


def report(name: str, results: dict[str, list[dict]]) -> None:
    print(f"\n== {name}: {len(next(iter(results.values())))} turns ==")
    print(f"{'way':9} {'first':>7} {'follow-up':>10} {'switch':>7} {'all':>6}  {'switches on old topic':>22}  "
          f"{'follow-up p50':>14}  {'added p50':>10}")
    alone = results.get("alone")
    for way, rows in results.items():
        rate = lambda c: statistics.mean([r["right"] for r in rows if r["context"] == c and r["right"] is not None] or [0])  # noqa: E731
        every = statistics.mean([r["right"] for r in rows if r["right"] is not None])
        follow = [r["ms"] for r in rows if r["context"] != "first"]
        added = ""
        if alone is not None and way != "alone":
            extra = [r["ms"] - a["ms"] for r, a in zip(rows, alone) if r["context"] != "first"]
            added = f"{statistics.median(extra) / 1000:+.1f} s"
        print(f"{way:9} {rate('first'):7.2f} {rate('follow-up'):10.2f} {rate('switch'):7.2f} {every:6.2f}  "
              f"{sum(r['old_topic'] for r in rows):22d}  {statistics.median(follow) / 1000:12.1f} s  {added:>10}")
    if alone is not None:
        base = statistics.mean([r["right"] for r in alone if r["context"] == "follow-up" and r["right"] is not None])
        for way, rows in results.items():
            if way != "alone" and base:
                mine = statistics.mean([r["right"] for r in rows if r["context"] == "follow-up" and r["right"] is not None])
                print(f"follow-ups right, {way} against alone: {mine:.2f} / {base:.2f} = x{mine / base:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="sample", help="sample, or a business folder in bench/businesses")
    parser.add_argument("--ways", default=",".join(WAYS), help=f"comma-separated, of {', '.join(WAYS)}")
    args = parser.parse_args()
    ways = [w.strip() for w in args.ways.split(",") if w.strip()]
    if unknown := [w for w in ways if w not in WAYS]:
        parser.error(f"unknown ways {unknown}; choose from {', '.join(WAYS)}")
    if args.only == "sample":
        docs, chats = ROOT / "sample_data", ROOT / "sample_data" / "eval_chats.jsonl"
    else:
        docs = ROOT / "bench" / "businesses" / args.only
        chats = docs / "chats.jsonl"
        if not chats.exists():
            parser.error(f"no chats for {args.only!r} ({chats})")
    with tempfile.TemporaryDirectory() as tmp:
        report(args.only, run(args.only, docs, chats, ways, Path(tmp)))


if __name__ == "__main__":
    main()
