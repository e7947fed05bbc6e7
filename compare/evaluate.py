"""Run every answer path over the same questions and score them.

`evaluate()` asks each path every question (answers are appended to a file in the knowledge base as
they come, so an interrupted run resumes where it stopped), scores each answer (compare.metrics) and
returns one result dict: per-path metrics with 95% bootstrap intervals, paired significance tests
between paths, a training-overlap check, and every question with every path's answer. The report
(compare.report) and `kbchat eval --json` print that dict; its keys are documented in `summarize`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import threading
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from compare import metrics
from compare.paths import Paths
from rag.questions import EvalQuestion
from kb.records import Turn, question_key
from kb.settings import Settings
from kb.store import Store

PARTIAL_DIR = "eval"


def evaluate(questions: list[EvalQuestion], paths: Paths, store: Store | None, settings: Settings,
             on_answer: Callable[[str, int, int], None] | None = None, questions_file: str | None = None,
             workers: int = 1) -> dict:
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
    result["workers"] = workers
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


def score(q: EvalQuestion, answer: dict, fallback: str) -> dict:
    """One answer's scores. `fact`: an expected fact is in it (None without expected facts or out
    of scope); `right`: the fact, or for an out-of-scope question, a refusal; f1/rouge_l against the
    reference answer (None without one)."""
    text = answer["text"]
    refused = bool(answer.get("refused")) or metrics.looks_refused(text, fallback)
    fact = metrics.has_fact(text, q.expected) if q.in_scope and q.expected else None
    right = fact if q.in_scope else refused
    with_reference = q.in_scope and bool(q.reference)
    return {
        "text": text,
        "method": answer.get("method", ""),
        "refused": refused,
        "right": right,
        "fact": fact,
        "f1": metrics.token_f1(text, q.reference) if with_reference else None,
        "rouge_l": metrics.rouge_l(text, q.reference) if with_reference else None,
        "style": metrics.style_similarity(text, q.reference) if with_reference else None,
        "semantic": None,  # filled in one batch by summarize()
        "latency_ms": round(answer.get("total_ms") or 0.0, 1),
        "n_tokens": answer.get("n_tokens") or 0,
        "generation_ms": answer.get("generation_ms") or 0.0,
        "citations": [{k: c[k] for k in ("n", "source", "location", "snippet")} for c in answer.get("citations", [])],
        "notes": answer.get("notes", []),
        "why": answer.get("why", ""),
        "searched": answer.get("searched", ""),
        "held_back": len(answer.get("held_back") or []),  # sentences not shown: facts no passage holds
    }


def summarize(questions: list[EvalQuestion], answers: dict[str, list[dict]], paths: Paths, store: Store | None,
              settings: Settings, questions_file: str | None = None) -> dict:
    """The result dict:

    n_questions, created_at, kb, questions_file, semantic_model, profile (the model profile, or
    "custom"), models ({path: language model}),
    training_overlap: {adapter, checked, n_in_training, questions}: evaluation questions (other than
        the deliberate word-for-word FAQ ones) that the active fine-tuned model was trained on,
    calibration_overlap: {checked, n_calibrated, questions}: the same for the probes the rag path's
        thresholds were calibrated on (rag.calibrate),
    paths: {name: {n_in_scope, n_out_of_scope, fact_accuracy, fact_accuracy_ci, answer_f1, rouge_l,
        semantic_similarity, style_similarity, refusal_accuracy, refusal_accuracy_ci, hallucination_rate,
        wrongly_refused, retrieval_hit_at_1, retrieval_hit_at_5, retrieval_mrr, latency_p50_ms,
        latency_p95_ms, tokens_per_s, by_kind}} or {name: {unavailable: reason}},
    comparisons: paired tests of fact accuracy between each two paths,
    questions: [{question, kind, in_scope, reference, expected, answers: {path: scores}}].
    A metric that does not apply to a path (or has no questions) is None.
    """
    scored = {name: [score(q, a, settings.fallback_message) for q, a in zip(questions, got)] for name, got in answers.items()}
    semantic_model = _add_semantic(questions, scored, paths, settings)
    ranks: dict[int, list] = {}  # by retriever: rag and rag+tuned share one, so search once
    out_paths: dict[str, dict] = {}
    for path in paths:
        retriever = path.info().retriever
        if retriever is not None and id(retriever) not in ranks:
            ranks[id(retriever)] = retrieval_ranks(questions, retriever, store)
        out_paths[path.name] = path_metrics(questions, scored[path.name], ranks.get(id(retriever)) if retriever else None)
    for name, reason in paths.unavailable.items():
        out_paths[name] = {"unavailable": reason}
    return {
        "n_questions": len(questions),
        "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "kb": str(store.dir) if store is not None else None,
        "questions_file": questions_file,
        "semantic_model": semantic_model,
        "profile": settings.profile_in_use,  # kb.settings.PROFILES, or "custom"
        # the model (engine, threads) each path answered with
        "models": {p.name: p.info().model_id for p in paths},
        "training_overlap": training_overlap(questions, paths),
        "calibration_overlap": calibration_overlap(questions, paths),
        "paths": out_paths,
        "comparisons": comparisons(questions, scored),
        "staleness": None,  # compare.staleness, when asked for
        "profiles": None,  # compare.profiles, when asked for
        "questions": [
            {**{k: v for k, v in q.to_dict().items() if k != "faq_question"},
             "answers": {name: rows[i] for name, rows in scored.items()}}
            for i, q in enumerate(questions)
        ],
    }


def path_metrics(questions: list[EvalQuestion], rows: list[dict], ranks: list[int | None] | None) -> dict:
    in_scope = [(q, r) for q, r in zip(questions, rows) if q.in_scope]
    out_scope = [r for q, r in zip(questions, rows) if not q.in_scope]
    facts = [r["fact"] for _, r in in_scope if r["fact"] is not None]
    refusals = [r["refused"] for r in out_scope]
    latencies = [r["latency_ms"] for r in rows]
    tokens = sum(r["n_tokens"] for r in rows)
    gen_ms = sum(r["generation_ms"] for r in rows if r["n_tokens"])
    targets = [rank for rank in ranks or [] if rank != -1]  # the FAQ entry's rank, None when missed
    by_kind = {}
    for kind in dict.fromkeys(q.kind for q in questions):
        kind_rows = [r for q, r in zip(questions, rows) if q.kind == kind]
        entry: dict = {"n": len(kind_rows)}
        if kind == "out_of_scope":
            entry["refusal_accuracy"] = _round(metrics.mean([r["refused"] for r in kind_rows]))
        else:
            entry["fact_accuracy"] = _round(metrics.mean([r["fact"] for r in kind_rows if r["fact"] is not None]))
        by_kind[kind] = entry
    out: dict = {"n_in_scope": len(in_scope), "n_out_of_scope": len(out_scope), "n_with_facts": len(facts)}
    # Every rate and mean score with its 95% bootstrap interval (None where it does not apply).
    _with_ci(out, "fact_accuracy", facts)
    _with_ci(out, "answer_f1", [r["f1"] for _, r in in_scope if r["f1"] is not None])
    _with_ci(out, "rouge_l", [r["rouge_l"] for _, r in in_scope if r["rouge_l"] is not None])
    _with_ci(out, "semantic_similarity", [r["semantic"] for _, r in in_scope if r["semantic"] is not None])
    _with_ci(out, "style_similarity", [r["style"] for _, r in in_scope if r.get("style") is not None])
    _with_ci(out, "refusal_accuracy", refusals)
    _with_ci(out, "hallucination_rate", [not refused for refused in refusals])
    _with_ci(out, "wrongly_refused", [r["refused"] for _, r in in_scope])
    out["held_back_answers"] = sum(bool(r.get("held_back")) for r in rows)
    out["held_back_sentences"] = sum(r.get("held_back") or 0 for r in rows)
    out["by_context"] = chats = by_context(questions, rows)
    for context, key in (("first", "first_turn_accuracy"), ("follow-up", "follow_up_accuracy"), ("switch", "switch_accuracy")):
        out[key] = chats[context]["right"] if chats and context in chats else None
    _with_ci(out, "retrieval_hit_at_1", [t == 1 for t in targets])
    _with_ci(out, "retrieval_hit_at_5", [t is not None for t in targets])
    _with_ci(out, "retrieval_mrr", [1 / t if t else 0.0 for t in targets])
    return {
        **out,
        "n_retrieval": len(targets),
        "latency_p50_ms": _round(metrics.percentile(latencies, 50), 1),
        "latency_p95_ms": _round(metrics.percentile(latencies, 95), 1),
        "tokens_per_s": _round(tokens / (gen_ms / 1000), 1) if tokens and gen_ms else None,
        "by_kind": by_kind,
    }


def by_context(questions: list[EvalQuestion], rows: list[dict]) -> dict | None:
    """For chats: the share right, the time and the tokens of first turns, follow-ups and topic
    switches apart (None when no question is part of a chat), and how many topic switches were
    searched with the old topic."""
    if all(q.chat is None for q in questions):
        return None
    out: dict = {}
    for context in ("single", "first", "follow-up", "switch"):
        picked = [(q, r) for q, r in zip(questions, rows) if q.context == context]
        if picked:
            out[context] = {
                "n": len(picked),
                "right": _round(metrics.mean([r["right"] for _, r in picked if r["right"] is not None])),
                "latency_p50_ms": _round(metrics.percentile([r["latency_ms"] for _, r in picked], 50), 1),
                "tokens": _round(metrics.mean([r["n_tokens"] for _, r in picked]), 1),
            }
    switches = [(q, r) for q, r in zip(questions, rows) if q.context == "switch"]
    out["switches_searched_with_old_topic"] = sum(
        bool(r.get("searched")) and question_key(r["searched"]) != question_key(q.question) for q, r in switches)
    return out


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


def comparisons(questions: list[EvalQuestion], scored: dict[str, list[dict]]) -> list[dict]:
    """A paired test of fact accuracy for each two paths, on the questions both could be scored on."""
    out = []
    for a, b in itertools.combinations(scored, 2):
        pairs = [(ra["fact"], rb["fact"]) for ra, rb in zip(scored[a], scored[b])
                 if ra["fact"] is not None and rb["fact"] is not None]
        if not pairs:
            continue
        xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
        test = metrics.paired_test(xs, ys)
        out.append({"a": a, "b": b, "metric": "fact_accuracy", "a_value": _round(metrics.mean(xs)),
                    "b_value": _round(metrics.mean(ys)), **test, "p_value": float(f"{test['p_value']:.3g}")})
    return out


def training_overlap(questions: list[EvalQuestion], paths: Paths) -> dict:
    """Which evaluation questions the fine-tuned model was trained on. Word-for-word FAQ questions
    are trained on by design (they measure memorization) and are not counted."""
    adapter = paths.adapter()
    if adapter is None:
        return {"adapter": None, "checked": False, "n_in_training": 0, "questions": []}
    trained = {question_key(t) for t in adapter.trained_questions}
    hits = [q.question for q in questions if q.kind != "verbatim" and question_key(q.question) in trained]
    return {"adapter": adapter.id, "checked": True, "n_in_training": len(hits), "questions": hits}


def calibration_overlap(questions: list[EvalQuestion], paths: Paths) -> dict:
    """Which evaluation questions the rag path's thresholds were calibrated on (rag.calibrate), so
    that a decline figure measured on them is not read as one on new questions. As with training,
    the FAQ questions as written are shared by design and not counted. Not checked when the
    thresholds are fixed numbers in the settings (nothing was calibrated)."""
    retriever = paths.retriever()
    if retriever is None or retriever.settings.fixed_threshold("refusal_threshold") is not None:
        return {"checked": False, "n_calibrated": 0, "questions": []}
    probes = set(retriever.calibration().probes)
    hits = [q.question for q in questions if q.kind != "verbatim" and question_key(q.question) in probes]
    return {"checked": True, "n_calibrated": len(hits), "questions": hits}


def _add_semantic(questions: list[EvalQuestion], scored: dict[str, list[dict]], paths: Paths, settings: Settings) -> str:
    """Cosine similarity of each in-scope answer to its reference, in one batch, with the retriever's
    own model (no second embedding model in memory; it favours retrieved text, which the report says)."""
    from rag.embed import Embedder

    retriever = paths.retriever()
    embedder = retriever.embedder if retriever is not None else Embedder(settings)
    jobs = [(name, i) for name, rows in scored.items() for i, q in enumerate(questions) if q.in_scope and q.reference]
    model = f"{settings.embedder or 'all-MiniLM-L6-v2'} (the same model search uses)"
    if not jobs:
        return model
    refs = sorted({questions[i].reference for _, i in jobs})
    ref_vecs = dict(zip(refs, embedder.embed(refs)))
    texts = [scored[name][i]["text"] or " " for name, i in jobs]
    vecs = embedder.embed(texts)
    for (name, i), vec in zip(jobs, vecs):
        scored[name][i]["semantic"] = round(float(vec @ ref_vecs[questions[i].reference]), 4)
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


def _with_ci(out: dict, key: str, values: list) -> None:
    out[key] = _round(metrics.mean(values))
    out[f"{key}_ci"] = _round_pair(metrics.bootstrap_ci(values))


def _round(value, digits: int = 4):
    return None if value is None else round(float(value), digits)


def _round_pair(pair):
    return None if pair is None else [round(float(pair[0]), 4), round(float(pair[1]), 4)]
