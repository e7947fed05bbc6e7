"""How much of the FAQ a fine-tuned adapter learned: the share of expected facts in its answers to
the FAQ questions word for word (memorization) and to the reworded questions of
sample_data/eval_questions.jsonl (generalization).

    .venv/bin/kbchat --kb /tmp/kb ingest sample_data && .venv/bin/kbchat --kb /tmp/kb tune
    .venv/bin/python bench/tuned.py --kb /tmp/kb [--path tuned|rag+tuned|rag|base] [--show]

The knowledge base must hold sample_data and an active adapter. Reworded questions that appear in
the adapter's training data are counted apart (there should be none: the eval rewordings are
written by hand, the training rewordings by rules). The base model's score on the same questions
is the floor to compare with (--path base).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from answers import has_fact  # noqa: E402
from retrieval import eval_rows  # noqa: E402

from kb.settings import Settings  # noqa: E402
from kb.store import Store  # noqa: E402
from tuning import adapters  # noqa: E402
from kb.records import question_key as normalize  # noqa: E402


def make_path(name: str, store: Store, settings: Settings):
    from rag.answer import BasePath, RagPath
    from tuning.answer import RagTunedPath, TunedPath

    return {"tuned": lambda: TunedPath(store, settings), "rag+tuned": lambda: RagTunedPath(store, settings),
            "rag": lambda: RagPath(store, settings), "base": lambda: BasePath(settings)}[name]()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", required=True, help="knowledge base with sample_data ingested and an active adapter")
    parser.add_argument("--path", default="tuned", choices=("tuned", "rag+tuned", "rag", "base"))
    parser.add_argument("--show", action="store_true", help="print each wrong answer")
    args = parser.parse_args()
    store = Store(args.kb, create=False)
    settings = Settings.load(args.kb)
    info = adapters.get(args.kb)
    trained = {normalize(q) for q in info.trained_questions}
    path = make_path(args.path, store, settings)
    rows = [r for r in eval_rows() if "faq_question" in r]
    verbatim = {r["faq_question"]: r["expected"] for r in rows}
    sets = {
        "FAQ questions word for word": [(q, e) for q, e in verbatim.items()],
        "reworded questions (not trained)": [(r["question"], r["expected"]) for r in rows if normalize(r["question"]) not in trained],
        "reworded questions (also trained)": [(r["question"], r["expected"]) for r in rows if normalize(r["question"]) in trained],
    }
    print(f"path {args.path}, adapter {info.id} ({info.n_train} training examples, {info.epochs_run} epochs)")
    start = time.perf_counter()
    for name, items in sets.items():
        if not items:
            print(f"{name:36} n=0")
            continue
        right = 0
        for question, expected in items:
            a = path.answer(question)
            ok = has_fact(a.text, expected)
            right += ok
            if args.show and not ok:
                print(f"  x {question!r} -> {a.text[:140]!r}")
        print(f"{name:36} n={len(items):3}  expected fact in answer {right / len(items):.3f}")
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
