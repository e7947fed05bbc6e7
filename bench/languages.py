"""Visitors who write in Spanish, French, German, Portuguese or Italian, measured beside the same
questions in English (quality profile, the rag path).

    .venv/bin/python bench/languages.py            # the 40 questions of bench/languages.jsonl (~12 min)
    .venv/bin/python bench/languages.py --only es  # one language

The 40 questions (8 per language: 6 the sample's documents answer, 2 they do not) were written for
this benchmark from the sample's evaluation questions, each with its English original; they are not
in sample_data/, so the calibration never reads them. Facts are compared in any language by their
written form (rag.facts: "$285" is found in "285 $", "10 am to 9 pm" in "de 10 h à 21 h" is not, so
times written the 24-hour way count as misses, and the English side is scored the same way).
A question is right when its answer holds an expected fact, or, out of scope, declines.
Prints per language: right, facts on answerable, wrongly declined, out of scope answered, the
answer's language as detected, p50 time, beside English, and the ratio.
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

from kb import languages  # noqa: E402
from kb.ingest import ingest  # noqa: E402
from kb.settings import Settings  # noqa: E402
from kb.store import Store  # noqa: E402
from rag import facts  # noqa: E402
from rag.answer import RagPath  # noqa: E402

QUESTIONS = ROOT / "bench" / "languages.jsonl"


def fact_hit(text: str, expected: list[str]) -> bool:
    """Whether the answer holds every written fact of one expected item, in any language."""
    said = set(facts.facts(text))
    for item in expected:
        keys = facts.facts(item)
        if keys and set(keys) <= said:
            return True
    return False


def score(rows: list[dict]) -> dict:
    answerable = [r for r in rows if r["in_scope"]]
    outside = [r for r in rows if not r["in_scope"]]
    right = sum((r["fact"] if r["in_scope"] else r["refused"]) for r in rows)
    return {"n": len(rows), "right": right / len(rows),
            "facts": sum(r["fact"] for r in answerable) / max(len(answerable), 1),
            "wrongly_declined": sum(r["refused"] for r in answerable) / max(len(answerable), 1),
            "out_of_scope_answered": sum(not r["refused"] for r in outside) / max(len(outside), 1),
            "p50_s": statistics.median(r["s"] for r in rows),
            "in_its_language": sum(r["answered_in"] == r["language"] for r in rows if not r["refused"])
            / max(sum(not r["refused"] for r in rows), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=languages.SUPPORTED[1:], help="one language")
    args = parser.parse_args()
    items = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    items = [i for i in items if not args.only or i["language"] == args.only]
    settings = Settings(model_profile="quality")
    started = time.perf_counter()
    out: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "kb") as store:
        files = [str(p) for p in sorted((ROOT / "sample_data").iterdir()) if p.suffix in (".csv", ".md", ".html", ".pdf")]
        assert not [r for r in ingest(store, files, settings) if r.failed]
        settings.save(store.dir)
        path = RagPath(store)
        path.answer("When are you open?")  # load the models and calibrate before timing
        for item in items:
            for side, question in (("visitor", item["question"]), ("english", item["english"])):
                t = time.perf_counter()
                a = path.answer(question)
                row = {"language": item["language"] if side == "visitor" else "en", "in_scope": item["in_scope"],
                       "question": question, "text": a.text, "refused": a.refused, "searched": a.searched,
                       "s": time.perf_counter() - t, "fact": fact_hit(a.text, item["expected"]),
                       "answered_in": languages.detect(a.text, "?")}
                out.setdefault(f"{item['language']}:{side}", []).append(row)
                print(f"[{row['language']}] {'ok ' if (row['fact'] if row['in_scope'] else row['refused']) else 'MISS'} "
                      f"{row['s']:4.1f}s {question[:60]!r} -> {a.text[:110]!r}", flush=True)
    print(f"\n== Visitors' languages, quality profile, rag path ({time.perf_counter() - started:.0f} s in all) ==")
    print(f"{'language':<11}{'side':<9}{'n':>3}{'right':>7}{'facts':>7}{'wrongly declined':>18}"
          f"{'outside answered':>18}{'in its language':>17}{'p50 s':>7}")
    total = {"visitor": [], "english": []}
    for lang in [c for c in languages.SUPPORTED[1:] if f"{c}:visitor" in out]:
        for side in ("visitor", "english"):
            rows = out[f"{lang}:{side}"]
            total[side] += rows
            m = score(rows)
            print(f"{languages.NAMES[lang]:<11}{side:<9}{m['n']:>3}{m['right']:>7.2f}{m['facts']:>7.2f}"
                  f"{m['wrongly_declined']:>18.2f}{m['out_of_scope_answered']:>18.2f}{m['in_its_language']:>17.2f}"
                  f"{m['p50_s']:>7.1f}")
    v, e = score(total["visitor"]), score(total["english"])
    print(f"{'all':<11}{'visitor':<9}{v['n']:>3}{v['right']:>7.2f}{v['facts']:>7.2f}{v['wrongly_declined']:>18.2f}"
          f"{v['out_of_scope_answered']:>18.2f}{v['in_its_language']:>17.2f}{v['p50_s']:>7.1f}")
    print(f"{'all':<11}{'english':<9}{e['n']:>3}{e['right']:>7.2f}{e['facts']:>7.2f}{e['wrongly_declined']:>18.2f}"
          f"{e['out_of_scope_answered']:>18.2f}{e['in_its_language']:>17.2f}{e['p50_s']:>7.1f}")
    print(f"ratio visitor/english: right {v['right'] / max(e['right'], 1e-9):.2f}, facts "
          f"{v['facts'] / max(e['facts'], 1e-9):.2f}, time p50 {v['p50_s'] / max(e['p50_s'], 1e-9):.2f}")


if __name__ == "__main__":
    main()
