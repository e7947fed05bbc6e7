"""Scores for an evaluation: each answer against its question (`score`), each path's measures over
all of them (`path_metrics`), and the paired tests between paths (`comparisons`). The measures
themselves (fact match, F1, ROUGE-L, intervals, tests) are in compare.metrics.
"""

from __future__ import annotations

import itertools

from compare import metrics
from compare.result import Comparison, ContextScore, KindScore, PathMetrics, ScoredAnswer
from kb.records import question_key
from rag.questions import EvalQuestion


def score(q: EvalQuestion, answer: dict, fallback: str) -> ScoredAnswer:
    """One answer (an Answer's dict) scored against its question; `semantic` is filled in later, in
    one batch for every answer (compare.evaluate)."""
    text = answer["text"]
    refused = bool(answer.get("refused")) or metrics.looks_refused(text, fallback)
    fact = metrics.has_fact(text, q.expected) if q.in_scope and q.expected else None
    with_reference = q.in_scope and bool(q.reference)
    return ScoredAnswer(
        text=text,
        method=answer.get("method", ""),
        refused=refused,
        right=fact if q.in_scope else refused,
        fact=fact,
        f1=metrics.token_f1(text, q.reference) if with_reference else None,
        rouge_l=metrics.rouge_l(text, q.reference) if with_reference else None,
        style=metrics.style_similarity(text, q.reference) if with_reference else None,
        latency_ms=round(answer.get("total_ms") or 0.0, 1),
        n_tokens=answer.get("n_tokens") or 0,
        generation_ms=answer.get("generation_ms") or 0.0,
        citations=[{k: c[k] for k in ("n", "source", "location", "snippet")} for c in answer.get("citations", [])],
        notes=answer.get("notes", []),
        why=answer.get("why", ""),
        searched=answer.get("searched", ""),
        held_back=len(answer.get("held_back") or []),
    )


def path_metrics(questions: list[EvalQuestion], rows: list[ScoredAnswer], ranks: list[int | None] | None) -> PathMetrics:
    """One path's measures over its scored answers; `ranks` are the right FAQ entry's search ranks
    (compare.evaluate.retrieval_ranks), None for a path that does not search."""
    in_scope = [r for q, r in zip(questions, rows) if q.in_scope]
    out_scope = [r for q, r in zip(questions, rows) if not q.in_scope]
    facts = [r.fact for r in in_scope if r.fact is not None]
    refusals = [r.refused for r in out_scope]
    latencies = [r.latency_ms for r in rows]
    tokens = sum(r.n_tokens for r in rows)
    gen_ms = sum(r.generation_ms for r in rows if r.n_tokens)
    targets = [rank for rank in ranks or [] if rank != -1]  # the FAQ entry's rank, None when missed
    out = PathMetrics(
        n_in_scope=len(in_scope), n_out_of_scope=len(out_scope), n_with_facts=len(facts),
        held_back_answers=sum(bool(r.held_back) for r in rows),
        held_back_sentences=sum(r.held_back for r in rows),
        n_retrieval=len(targets),
        latency_p50_ms=_round(metrics.percentile(latencies, 50), 1),
        latency_p95_ms=_round(metrics.percentile(latencies, 95), 1),
        tokens_per_s=_round(tokens / (gen_ms / 1000), 1) if tokens and gen_ms else None,
        by_kind=by_kind(questions, rows),
    )
    # Every rate and mean score with its 95% bootstrap interval (None where it does not apply).
    _with_ci(out, "fact_accuracy", facts)
    _with_ci(out, "answer_f1", [r.f1 for r in in_scope if r.f1 is not None])
    _with_ci(out, "rouge_l", [r.rouge_l for r in in_scope if r.rouge_l is not None])
    _with_ci(out, "semantic_similarity", [r.semantic for r in in_scope if r.semantic is not None])
    _with_ci(out, "style_similarity", [r.style for r in in_scope if r.style is not None])
    _with_ci(out, "refusal_accuracy", refusals)
    _with_ci(out, "hallucination_rate", [not refused for refused in refusals])
    _with_ci(out, "wrongly_refused", [r.refused for r in in_scope])
    _with_ci(out, "retrieval_hit_at_1", [t == 1 for t in targets])
    _with_ci(out, "retrieval_hit_at_5", [t is not None for t in targets])
    _with_ci(out, "retrieval_mrr", [1 / t if t else 0.0 for t in targets])
    if any(q.chat is not None for q in questions):
        out.by_context = chats = by_context(questions, rows)
        out.first_turn_accuracy = chats["first"].right if "first" in chats else None
        out.follow_up_accuracy = chats["follow-up"].right if "follow-up" in chats else None
        out.switch_accuracy = chats["switch"].right if "switch" in chats else None
        out.switches_searched_with_old_topic = sum(
            bool(r.searched) and question_key(r.searched) != question_key(q.question)
            for q, r in zip(questions, rows) if q.context == "switch")
    return out


def by_kind(questions: list[EvalQuestion], rows: list[ScoredAnswer]) -> dict[str, KindScore]:
    """The share right per kind of question: facts for covered kinds, declines for out_of_scope."""
    out = {}
    for kind in dict.fromkeys(q.kind for q in questions):
        picked = [r for q, r in zip(questions, rows) if q.kind == kind]
        if kind == "out_of_scope":
            out[kind] = KindScore(n=len(picked), refusal_accuracy=_round(metrics.mean([r.refused for r in picked])))
        else:
            out[kind] = KindScore(n=len(picked), fact_accuracy=_round(metrics.mean([r.fact for r in picked if r.fact is not None])))
    return out


def by_context(questions: list[EvalQuestion], rows: list[ScoredAnswer]) -> dict[str, ContextScore]:
    """For chats: the share right, the time and the tokens of single questions, first turns,
    follow-ups and topic switches apart."""
    out = {}
    for context in ("single", "first", "follow-up", "switch"):
        picked = [r for q, r in zip(questions, rows) if q.context == context]
        if picked:
            out[context] = ContextScore(
                n=len(picked),
                right=_round(metrics.mean([r.right for r in picked if r.right is not None])),
                latency_p50_ms=_round(metrics.percentile([r.latency_ms for r in picked], 50), 1),
                tokens=_round(metrics.mean([r.n_tokens for r in picked]), 1),
            )
    return out


def comparisons(scored: dict[str, list[ScoredAnswer]]) -> list[Comparison]:
    """A paired test of fact accuracy for each two paths, on the questions both could be scored on."""
    out = []
    for a, b in itertools.combinations(scored, 2):
        pairs = [(ra.fact, rb.fact) for ra, rb in zip(scored[a], scored[b]) if ra.fact is not None and rb.fact is not None]
        if not pairs:
            continue
        xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
        test = metrics.paired_test(xs, ys)
        out.append(Comparison(a=a, b=b, metric="fact_accuracy", a_value=_round(metrics.mean(xs)),
                              b_value=_round(metrics.mean(ys)), **{**test, "p_value": float(f"{test['p_value']:.3g}")}))
    return out


def _with_ci(out: PathMetrics, key: str, values: list) -> None:
    setattr(out, key, _round(metrics.mean(values)))
    setattr(out, f"{key}_ci", _round_pair(metrics.bootstrap_ci(values)))


def _round(value, digits: int = 4):
    return None if value is None else round(float(value), digits)


def _round_pair(pair):
    return None if pair is None else [round(float(pair[0]), 4), round(float(pair[1]), 4)]
