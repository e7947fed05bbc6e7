"""Run every answer path over the same questions and score them.

`evaluate()` asks each path every question (answers are appended to a file in the knowledge base as
they come, so an interrupted run resumes where it stopped), scores each answer (compare.metrics) and
returns one `EvalResult` (compare.result): per-path measures with 95% bootstrap intervals, paired
significance tests between paths, the training and calibration overlap checks, and every question
with every path's answer. The report (compare.report) and `kbchat eval --json` show it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from compare import metrics
from compare.paths import Paths
from compare.result import CalibrationOverlap, EvalResult, PathMetrics, QuestionRow, ScoredAnswer, TrainingOverlap
from compare.scoring import comparisons, path_metrics, score
from rag.questions import EvalQuestion
from kb.records import Turn, question_key
from kb.settings import Settings
from kb.store import Store

PARTIAL_DIR = "eval"


def evaluate(questions: list[EvalQuestion], paths: Paths, store: Store | None, settings: Settings,
             on_answer: Callable[[str, int, int], None] | None = None, questions_file: str | None = None,
             workers: int = 1) -> EvalResult:
    """Ask every available path every question and score the answers (see the module doc).
    `on_answer(path, done, total)` is called after each answer, resumed ones included.

    `workers` > 1 answers that many questions at a time, each on one torch thread (see
    default_workers for when that pays). Each answer then takes longer than it would alone, so the
    result records the number of workers beside the latencies."""
    partial = _partial_file(store, settings, questions, paths)
    done = _read_partial(partial)
    total = len(questions) * len(paths)
    answers: dict[str, list] = {p.name: [None] * len(questions) for p in paths}
    todo: list[tuple] = []  # (path, indices): a single question, or the unanswered turns of one chat, in order
    for path in paths:
        got = done.get(path.name, {})
        chats: dict[int, list[int]] = {}
        for i, q in enumerate(questions):
            record = got.get(i)
            if record is not None and record["question"] == q.question:
                answers[path.name][i] = record
            elif q.chat is None:
                todo.append((path, [i]))
            else:
                if q.chat not in chats:
                    chats[q.chat] = []
                    todo.append((path, chats[q.chat]))  # one worker asks a chat's turns in order
                chats[q.chat].append(i)
    count = [total - sum(len(indices) for _, indices in todo)]
    lock = threading.Lock()
    if on_answer and count[0]:  # the answers kept from an interrupted run
        on_answer(paths.names[0], count[0], total)

    def ask(path, indices: list[int]) -> None:
        for i in indices:
            record = path.answer(questions[i].question, history(questions, answers[path.name], i)).to_dict()
            with lock:
                _append(partial, {"path": path.name, "i": i, "question": questions[i].question, "answer": record})
                answers[path.name][i] = record
                count[0] += 1
                if on_answer:
                    on_answer(path.name, count[0], total)

    _run(todo, ask, max(1, min(workers, len(todo))))
    result = summarize(questions, answers, paths, store, settings, questions_file)
    result.workers = workers
    if partial:
        partial.unlink(missing_ok=True)
    return result


def history(questions: list[EvalQuestion], records: list, i: int) -> list[Turn]:
    """The earlier turns of question i's chat as this path answered them ([] for a single question)."""
    q = questions[i]
    if q.chat is None:
        return []
    return [Turn(questions[j].question, records[j]["text"], records[j].get("searched") or "")
            for j in range(i) if questions[j].chat == q.chat and records[j] is not None]


def default_workers(paths: Paths | None = None) -> int:
    """One worker when the paths answer on llama.cpp (the default): it writes one answer at a time
    on all cores, and on 2 cores 24 sample questions on rag and base took 80-88 s with one worker
    against 99 s with two. On transformers (a model folder) two workers gave 1.45x the answers per
    second of one, with the same answers: decoding one token at a time does not keep two threads busy."""
    on_torch = any(p.info().on_torch for p in paths or [])
    return 2 if on_torch and (os.cpu_count() or 1) >= 2 else 1


def _run(todo: list, ask: Callable, workers: int) -> None:
    """ask(*item) for every item, `workers` at a time, each worker on one torch thread. The calling
    thread is one of the workers, so Ctrl-C stops it at once; the others finish the answer they are
    writing (it is kept) and stop."""
    if workers == 1:
        for item in todo:
            ask(*item)
        return
    import torch

    items = iter(todo)
    take = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def work() -> None:
        while not stop.is_set():
            with take:
                item = next(items, None)
            if item is None:
                return
            try:
                ask(*item)
            except BaseException as e:  # noqa: BLE001 - handed to the calling thread
                errors.append(e)
                stop.set()

    threads_before = torch.get_num_threads()
    torch.set_num_threads(1)
    helpers = [threading.Thread(target=work, daemon=True) for _ in range(workers - 1)]
    try:
        for t in helpers:
            t.start()
        work()  # hands any error, Ctrl-C included, to `errors` and stops the others
    finally:
        stop.set()
        for t in helpers:
            t.join()
        torch.set_num_threads(threads_before)
    if errors:
        raise errors[0]


def summarize(questions: list[EvalQuestion], answers: dict[str, list[dict]], paths: Paths, store: Store | None,
              settings: Settings, questions_file: str | None = None) -> EvalResult:
    """Score every path's answers (each an Answer's dict, in question order) into one EvalResult."""
    scored = {name: [score(q, a, settings.answers.fallback_message) for q, a in zip(questions, got)] for name, got in answers.items()}
    semantic_model = _add_semantic(questions, scored, paths, settings)
    ranks: dict[int, list] = {}  # by retriever: rag and rag+tuned share one, so search once
    result = EvalResult(
        n_questions=len(questions),
        created_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        kb=str(store.dir) if store is not None else None,
        questions_file=questions_file,
        semantic_model=semantic_model,
        profile=settings.profile_in_use,
        models={p.name: p.info().model_id for p in paths},
        training_overlap=training_overlap(questions, paths),
        calibration_overlap=calibration_overlap(questions, paths),
        comparisons=comparisons(scored),
        questions=[QuestionRow(**{k: v for k, v in q.to_dict().items() if k != "faq_question"},
                               answers={name: rows[i] for name, rows in scored.items()})
                   for i, q in enumerate(questions)],
    )
    for path in paths:
        retriever = path.info().retriever
        if retriever is not None and id(retriever) not in ranks:
            ranks[id(retriever)] = retrieval_ranks(questions, retriever, store)
        result.paths[path.name] = path_metrics(questions, scored[path.name], ranks.get(id(retriever)) if retriever else None)
    for name, reason in paths.unavailable.items():
        result.paths[name] = PathMetrics(unavailable=reason)
    return result


def retrieval_ranks(questions: list[EvalQuestion], retriever, store: Store | None, k: int = 5) -> list[int | None]:
    """For each question whose reference is an FAQ answer of the knowledge base: the rank (1..k) of
    that FAQ entry in search, or None when it is not in the top k. -1 for the other questions (the
    metric does not apply to them)."""
    faqs = store.faqs() if store is not None else []
    by_question = {question_key(c.faq.question): c.id for c in faqs}
    by_answer: dict[str, set[str]] = {}
    for c in faqs:
        by_answer.setdefault(metrics.normalize(c.faq.answer), set()).add(c.id)
    ranks: list[int | None] = []
    for q in questions:
        target = set()
        if q.in_scope and q.faq_question and question_key(q.faq_question) in by_question:
            target = {by_question[question_key(q.faq_question)]}
        elif q.in_scope and q.reference:
            target = by_answer.get(metrics.normalize(q.reference), set())
        if not target:
            ranks.append(-1)
            continue
        hits = retriever.search(q.question, k)
        ranks.append(next((n for n, h in enumerate(hits, start=1) if h.chunk.id in target), None))
    return ranks


def training_overlap(questions: list[EvalQuestion], paths: Paths) -> TrainingOverlap:
    """Which evaluation questions the fine-tuned model was trained on. Word-for-word FAQ questions
    are trained on by design (they measure memorization) and are not counted."""
    adapter = paths.adapter()
    if adapter is None:
        return TrainingOverlap()
    trained = {question_key(t) for t in adapter.trained_questions}
    hits = [q.question for q in questions if q.kind != "verbatim" and question_key(q.question) in trained]
    return TrainingOverlap(adapter=adapter.id, checked=True, n_in_training=len(hits), questions=hits)


def calibration_overlap(questions: list[EvalQuestion], paths: Paths) -> CalibrationOverlap:
    """Which evaluation questions the rag path's thresholds were calibrated on (rag.calibrate), so
    that a decline figure measured on them is not read as one on new questions. As with training,
    the FAQ questions as written are shared by design and not counted. Not checked when the
    thresholds are fixed numbers in the settings (nothing was calibrated)."""
    retriever = paths.retriever()
    if retriever is None or retriever.settings.answers.refusal_threshold is not None:
        return CalibrationOverlap()
    probes = set(retriever.calibration().probes)
    hits = [q.question for q in questions if q.kind != "verbatim" and question_key(q.question) in probes]
    return CalibrationOverlap(checked=True, n_calibrated=len(hits), questions=hits)


def _add_semantic(questions: list[EvalQuestion], scored: dict[str, list[ScoredAnswer]], paths: Paths, settings: Settings) -> str:
    """Cosine similarity of each in-scope answer to its reference, in one batch, with the retriever's
    own model (no second embedding model in memory; it favours retrieved text, which the report says)."""
    from rag.embed import Embedder

    retriever = paths.retriever()
    embedder = retriever.embedder if retriever is not None else Embedder(settings)
    jobs = [(name, i) for name, rows in scored.items() for i, q in enumerate(questions) if q.in_scope and q.reference]
    model = f"{settings.models.embedder or 'all-MiniLM-L6-v2'} (the same model search uses)"
    if not jobs:
        return model
    refs = sorted({questions[i].reference for _, i in jobs})
    ref_vecs = dict(zip(refs, embedder.embed(refs)))
    texts = [scored[name][i].text or " " for name, i in jobs]
    vecs = embedder.embed(texts)
    for (name, i), vec in zip(jobs, vecs):
        scored[name][i].semantic = round(float(vec @ ref_vecs[questions[i].reference]), 4)
    return model


def _partial_file(store: Store | None, settings: Settings, questions: list[EvalQuestion], paths: Paths) -> Path | None:
    """Where answers are kept while the run goes on: named by everything the answers depend on
    (questions, paths and their models, knowledge base revision, settings), so a resumed run never
    mixes in answers made under other conditions."""
    if store is None:
        return None
    h = hashlib.sha256()
    h.update(json.dumps([q.to_dict() for q in questions], sort_keys=True).encode())
    h.update(json.dumps(asdict(settings), sort_keys=True, default=str).encode())
    h.update(str(store.revision).encode())
    for path in paths:
        adapter = path.info().adapter
        h.update(f"{path.name}:{adapter.id if adapter else ''}".encode())
    return Path(store.dir) / PARTIAL_DIR / f"partial-{h.hexdigest()[:16]}.jsonl"


def _read_partial(path: Path | None) -> dict[str, dict[int, dict]]:
    done: dict[str, dict[int, dict]] = {}
    if path is None or not path.exists():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
            done.setdefault(row["path"], {})[int(row["i"])] = {**row["answer"], "question": row["question"]}
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue  # a line cut short when the run was stopped: that answer is asked again
    return done


def _append(path: Path | None, row: dict) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())
