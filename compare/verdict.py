"""The evaluation's verdict in plain words: short sentences, the headline first and the
recommendation last; every number and path name in them comes from the result.

    >>> verdict(result)[0]                                             # doctest: +SKIP
    'On your 62 questions, answers from your documents (RAG) gave the right fact 55 times out of 60; the fine-tuned model 19 times.'
"""

from __future__ import annotations

from compare.result import Comparison, EvalResult
from compare.results import (CLEAR_P, COMPARE_VERBS, PROFILE_WORDS, cap, fact_counts, kind_accuracy, p_text, path_words,
                             pct, profile_rows, profile_words, refusal_counts, secs)


def verdict(result: EvalResult) -> list[str]:
    """Plain sentences about `result`: the headline first, the recommendation last."""
    lines = [_headline(result)]
    lines += [f"{cap(path_words(n))} was not evaluated: {why}" for n, why in result.unavailable().items()]
    ranked = _rank(result)
    # The best path against each other one: the comparisons an owner's choice depends on.
    lines += [s for c in result.comparisons if ranked and ranked[0] in (c.a, c.b)
              and (s := _comparison_sentence(c))]
    lines += [s for n in result.evaluated() if (s := _memorization_sentence(result, n))]
    lines += [s for s in (_voice_sentence(result), _refusal_sentence(result), _staleness_sentence(result), _speed_sentence(result),
                          _profiles_sentence(result)) if s]
    if rec := _recommendation(result):
        lines.append(rec)
    return lines


def _headline(result: EvalResult) -> str:
    n_q = result.n_questions
    names = result.evaluated()
    if not names:
        return f"No answer path was evaluated on your {n_q} questions."
    counted = [(n, c) for n in names if (c := fact_counts(result, n))]
    if not counted:
        return f"On your {n_q} questions, no answer could be checked for the right fact."
    counted.sort(key=lambda nc: -nc[1][0] / nc[1][1])
    first_total = counted[0][1][1]
    parts = []
    for i, (name, (right, total)) in enumerate(counted):
        out_of = f" out of {total}" if i == 0 or total != first_total else ""
        verb = "gave the right fact " if i == 0 else ""
        times = "once" if right == 1 else f"{right} times"
        parts.append(f"{path_words(name)} {verb}{times}{out_of}")
    return f"On your {n_q} questions, " + "; ".join(parts) + "."


def _comparison_sentence(c: Comparison) -> str | None:
    a, b, p = c.a, c.b, c.p_value
    av, bv = c.a_value, c.b_value
    if av is None or bv is None:
        return None
    metric = c.metric
    show = pct if metric in COMPARE_VERBS or metric.startswith("retrieval_") else (lambda x: f"{x:.2f}")
    on_n = f" on {c.n} questions" if c.n else ""
    if av == bv:
        what = f"{cap(path_words(a))} and {path_words(b)} scored the same on {metric} ({show(av)}{on_n})"
    else:
        (hi, hv), (lo, lv) = sorted([(a, av), (b, bv)], key=lambda x: -x[1])
        verb = COMPARE_VERBS.get(metric)
        did = f"{verb} more often than" if verb else f"scored higher on {metric} than"
        what = f"{cap(path_words(hi))} {did} {path_words(lo)} ({show(hv)} vs {show(lv)}{on_n})"
    if p < CLEAR_P:
        return f"{what}: a clear difference ({p_text(p)})."
    return f"{what}: too close to call on this many questions ({p_text(p)})."


def _memorization_sentence(result: EvalResult, path: str) -> str | None:
    verbatim = kind_accuracy(result, path, "verbatim")
    reworded = kind_accuracy(result, path, "reworded")
    if verbatim is None or reworded is None:
        return None
    if verbatim - reworded <= 0.10:  # within a question or two: no memorization gap to report
        return None
    return (f"{cap(path_words(path))} knew {pct(verbatim)} of your FAQ questions asked word for word "
            f"but only {pct(reworded)} when customers worded them differently.")


def _voice_sentence(result: EvalResult) -> str | None:
    """Which path sounds most like the owner (style, then wording), and whether that is the path
    with the facts: fine-tuning's gain (voice) beside its loss (facts)."""
    styled = [(n, v) for n in result.evaluated() if (v := result.metric(n, "style_similarity")) is not None]
    if len(styled) < 2:
        return None
    styled.sort(key=lambda x: -x[1])
    (best, best_v), rest = styled[0], styled[1:]
    words = result.metric(best, "answer_f1")
    worded = f", word overlap {words:.2f}" if words is not None else ""
    others = "; ".join(f"{path_words(n)} {v:.2f}" for n, v in rest)
    line = (f"Closest to the style of your own answers: {path_words(best)} (style {best_v:.2f}{worded}); "
            f"then {others}.")
    facts = {n: v for n in result.evaluated() if (v := result.metric(n, "fact_accuracy")) is not None}
    if facts and best in facts and max(facts.values()) > facts[best] + 0.05:
        top = max(facts, key=facts.get)
        line += (f" So {path_words(best)} sounds more like you, but {path_words(top)} gives the right fact more often "
                 f"({pct(facts[top])} vs {pct(facts[best])}).")
    return line


def _refusal_sentence(result: EvalResult) -> str | None:
    counted = [(n, c) for n in result.evaluated() if (c := refusal_counts(result, n))]
    if not counted:
        return None
    n_out = max(total for _, (_, total) in counted)
    parts = []
    for name, (declined, total) in counted:
        made_up = total - declined
        if made_up == 0:
            did = f"declined all {total}" if total > 1 else "declined it"
        elif declined == 0:
            did = f"made up an answer to all {total}" if total > 1 else "made up an answer"
        else:
            did = f"declined {declined} and made up an answer to {made_up}"
        parts.append(f"{path_words(name)} {did}")
    noun = "question" if n_out == 1 else "questions"
    verb = "does" if n_out == 1 else "do"
    return f"Of the {n_out} {noun} your documents {verb} not cover, " + "; ".join(parts) + "."


def _staleness_sentence(result: EvalResult) -> str | None:
    stale = result.staleness
    if stale is None or not stale.paths:
        return None
    change = f" from {stale.old_value} to {stale.new_value}" if stale.old_value and stale.new_value else ""
    parts = []
    for name, s in stale.paths.items():
        how = s.how or (f"after {s.reflect_seconds:.1f} s" if s.reflect_seconds is not None else "")
        if s.says_new:
            did = "gave the new one"
        elif s.says_old:
            did = "still gave the old one"
        else:
            did = "gave neither"
        parts.append(f"{path_words(name)} {did}" + (f" ({how})" if how else ""))
    return f"When an answer in your FAQ changed{change}, " + "; ".join(parts) + "."


def _speed_sentence(result: EvalResult) -> str | None:
    timed = [(n, p50) for n in result.evaluated() if (p50 := result.metric(n, "latency_p50_ms")) is not None]
    if not timed:
        return None
    parts = []
    for name, p50 in sorted(timed, key=lambda x: x[1]):
        p95 = result.metric(name, "latency_p95_ms")
        slow = f" (the slowest 1 in 20: {secs(p95)})" if p95 is not None else ""
        parts.append(f"{path_words(name)} {secs(p50)}{slow}")
    workers = result.workers or 1
    during = f" (measured with {workers} questions answered at a time, so one visitor alone gets answers sooner)" if workers > 1 else ""
    return f"Typical time to answer{during}: " + "; ".join(parts) + "."


def _profiles_sentence(result: EvalResult) -> str | None:
    rows = [r for r in profile_rows(result) if r.fact_accuracy is not None]
    if len(rows) < 2:
        return None
    parts = []
    for r in rows:
        declined = r.refusal_accuracy
        declines = f", declined {pct(declined)} of the questions your documents do not cover" if declined is not None else ""
        took = f" and took {secs(r.latency_p50_ms)} per answer" if r.latency_p50_ms is not None else ""
        parts.append(f"with {profile_words(r)} it gave the right fact in {pct(r.fact_accuracy)}{declines}{took}")
    used = rows[0]
    return ("On this machine, answering from your documents: " + "; ".join(parts) + f". You use "
            f"{PROFILE_WORDS.get(used.profile, used.profile)}; the setting model_profile changes it.")


def _rank(result: EvalResult) -> list[str]:
    """Evaluated paths, best first: fact accuracy, then fewer made-up answers, then speed."""
    def key(name: str) -> tuple[float, float, float]:
        acc = result.metric(name, "fact_accuracy")
        hall = result.metric(name, "hallucination_rate")
        p50 = result.metric(name, "latency_p50_ms")
        return (-(round(acc, 4) if acc is not None else -1.0),
                round(hall, 4) if hall is not None else 2.0,
                p50 if p50 is not None else float("inf"))
    return sorted(result.evaluated(), key=key)


def _recommendation(result: EvalResult) -> str | None:
    ranked = _rank(result)
    if not ranked:
        return None
    best = ranked[0]
    acc = result.metric(best, "fact_accuracy")
    hall = result.metric(best, "hallucination_rate")
    use = f"Use {path_words(best)}: "
    if acc is None:
        return use + "no path could be checked for the right fact, so this choice rests on the other numbers only."
    why = f"it gave the right fact most often ({pct(acc)})"
    if len(ranked) > 1:
        runner = ranked[1]
        r_acc = result.metric(runner, "fact_accuracy")
        if r_acc is not None and round(r_acc, 4) == round(acc, 4):
            why = f"it tied with {path_words(runner)} on the right fact ({pct(acc)}) and " + _tie_reason(result, best, runner)
    if hall == 0:
        why += ", and it made up no answers to questions your documents do not cover"
    elif hall is not None:
        why += f", though it made up an answer to {pct(hall)} of the questions your documents do not cover"
    return use + why + _caveat(result, best, ranked) + "."


def _tie_reason(result: EvalResult, best: str, runner: str) -> str:
    hall, r_hall = result.metric(best, "hallucination_rate"), result.metric(runner, "hallucination_rate")
    if hall is not None and r_hall is not None and round(hall, 4) != round(r_hall, 4):
        return f"made up fewer answers ({pct(hall)} vs {pct(r_hall)})"
    p50, r_p50 = result.metric(best, "latency_p50_ms"), result.metric(runner, "latency_p50_ms")
    if p50 is not None and r_p50 is not None and secs(p50) != secs(r_p50):  # a gap the owner can see
        return f"answers faster ({secs(p50)} vs {secs(r_p50)})"
    return "did as well on everything else"


def _caveat(result: EvalResult, best: str, ranked: list[str]) -> str:
    """A warning when the lead over the runner-up is not statistically clear."""
    if len(ranked) < 2:
        return ""
    runner = ranked[1]
    for c in result.comparisons:
        if c.metric == "fact_accuracy" and {c.a, c.b} == {best, runner}:
            if c.p_value >= CLEAR_P:
                return (f" (but its lead over {path_words(runner)} is too close to call on this many "
                        f"questions; more test questions would settle it)")
    return ""
