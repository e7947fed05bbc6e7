"""The paraphrase check on public data another team wrote: the FAQ fast path and FAQ search on
../shared/data/covidqa_question_similarity_en.csv, for one model profile.

    .venv/bin/python bench/paraphrase.py                  # the quality profile (~2 min on 2 cores)
    .venv/bin/python bench/paraphrase.py --profile small

Every `question_1` of the file becomes a curated FAQ question (the file has no answers), and each
`question_2` is asked. 244 pairs are paraphrases; the other 244 pair the same
questions with related but different ones, so a curated answer is right only when the file pairs
the two as paraphrases. The fast
path's threshold is calibrated on this knowledge base as on any other (rag.calibrate), never on
these pairs. Prints, with the ratio to its target:
  * fast-path precision: of the curated answers given (each distinct question asked once), the share
    the file pairs with the question as a paraphrase (target 0.98), and how many it gave;
  * hit@1: the paraphrase's own FAQ ranked first by hybrid search, against dense search alone
    measured in the same run.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kb.records import Chunk, FaqPair, Source, chunk_id  # noqa: E402
from kb.settings import Settings  # noqa: E402
from kb.store import Store, now_iso  # noqa: E402
from rag.retrieve import Retriever  # noqa: E402

COVIDQA = ROOT.parent / "shared" / "data" / "covidqa_question_similarity_en.csv"
PRECISION_TARGET = 0.98


def covidqa_kb(folder: Path, profile: str) -> tuple[Store, list[tuple[str, str, bool]]]:
    """A knowledge base of every question_1 as an FAQ question, and (question_2, question_1, similar)."""
    with open(COVIDQA, newline="", encoding="utf-8") as f:
        rows = [(r["question_2"].strip(), r["question_1"].strip(), r["similar"].strip() == "1") for r in csv.DictReader(f)]
    questions = list(dict.fromkeys(q1 for _, q1, _ in rows))
    seen: dict[str, int] = {}
    chunks = [Chunk(chunk_id("covidqa", q, seen), "covidqa.csv", f"row {i}", q, FaqPair(q, "", f"row {i}"))
              for i, q in enumerate(questions)]
    store = Store(folder)
    store.replace_source(Source("covidqa.csv", "faq", "covidqa.csv", "-", 0, now_iso()), chunks)
    Settings(model_profile=profile).save(store.dir)
    return store, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=["quality", "small"], default="quality")
    args = parser.parse_args()
    if not COVIDQA.exists():
        sys.exit(f"{COVIDQA} is missing: this check reads the public data in ../shared/data/.")
    with tempfile.TemporaryDirectory() as tmp:
        store, rows = covidqa_kb(Path(tmp), args.profile)
        retriever = Retriever(store)
        retriever.sync()
        # Each question once; the fast path's answer is right when the file pairs that question with
        # the curated one as a paraphrase (a question_2 is often a paraphrase of another row's question_1).
        paraphrases: dict[str, set[str]] = {}
        for query, q1, similar in rows:
            paraphrases.setdefault(query, set()).update([q1] if similar else [])
        given = right = 0
        wrong: list[tuple[str, str]] = []
        for query, same in paraphrases.items():
            fast = retriever.faq_answer(query)
            if fast is not None:
                given += 1
                right += fast[0].faq.question in same
                if fast[0].faq.question not in same:
                    wrong.append((query, fast[0].faq.question))
        hit = {"hybrid": 0, "dense": 0}
        for query, q1, similar in rows:
            if similar:
                for mode in hit:
                    top = retriever.search(query, 1, mode=mode)
                    hit[mode] += bool(top and top[0].chunk.faq.question == q1)
        c = retriever.calibration()
        precision = right / given if given else 1.0
        n_similar = sum(s for *_, s in rows)
        print(f"== covidqa paraphrase check, {args.profile} profile ({retriever.settings.models.embedder or 'all-MiniLM-L6-v2'}) ==")
        n_with = sum(bool(v) for v in paraphrases.values())
        print(f"{len(paraphrases)} distinct questions asked: {n_with} paraphrase a curated question, "
              f"{len(paraphrases) - n_with} are only related to one")
        print(f"fast path threshold (calibrated on this knowledge base): {c.faq_threshold}")
        print(f"fast path precision          {precision:.3f}  (target {PRECISION_TARGET}, ratio {precision / PRECISION_TARGET:.2f}); "
              f"gave {given} curated answers: {right} right, {given - right} wrong")
        for query, curated in wrong:
            print(f"  wrong: {query!r} got the answer to {curated!r}")
        print(f"fast path answered           {right / max(n_with, 1):.3f} of the paraphrasing questions in milliseconds")
        h, d = hit["hybrid"] / n_similar, hit["dense"] / n_similar
        print(f"hit@1 (paraphrase's own FAQ) {h:.3f}  (dense alone {d:.3f}, ratio {h / max(d, 1e-9):.2f})")


if __name__ == "__main__":
    main()
