"""The evaluation report an owner reads: a plain-language verdict, charts and one HTML file.

`verdict(result)` turns the numbers of an evaluation into short sentences, the headline first and
the recommendation last; every number and path name in them comes from `result`.
`write_report(result, out_dir)` writes `results.json`, four PNG charts and `report.html`, one
self-contained file (charts inlined as data URIs, inline CSS, no script) that can be mailed.

    >>> lines = verdict(result)                                        # doctest: +SKIP
    >>> lines[0]                                                       # doctest: +SKIP
    'On your 62 questions, answers from your documents (RAG) gave the right fact 55 times out of 60; the fine-tuned model 19 times.'
    >>> write_report(result, "kbchat_data/reports/2026-11-23")         # doctest: +SKIP
    PosixPath('kbchat_data/reports/2026-11-23/report.html')

Everything taken from `result` is HTML-escaped: answers echo customer questions and documents.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from compare.paths import DESCRIPTIONS

PATH_WORDS = DESCRIPTIONS
# Chart axes have room for a few words only.
SHORT_WORDS = {
    "rag": "documents (RAG)",
    "tuned": "fine-tuned",
    "rag+tuned": "fine-tuned + documents",
    "base": "plain model",
}
KIND_WORDS = {
    "verbatim": "FAQ, word for word",
    "reworded": "FAQ, reworded",
    "document": "in your documents",
    "question": "your question",
    "out_of_scope": "not covered",
}
# The one table of measures: (key, label, short label for a terminal, one-line explanation, how to
# show it). The report, the CLI and the app all read it.
METRICS = [
    ("n_in_scope", "Questions covered", "Questions covered", "test questions your documents answer", "count"),
    ("n_out_of_scope", "Questions not covered", "Questions not covered", "test questions your documents do not answer", "count"),
    ("fact_accuracy", "Fact accuracy", "Right fact in the answer",
     "share of answers that contain the right fact (price, time, address…)", "rate"),
    ("answer_f1", "Answer F1", "Word overlap with your answer (F1)",
     "word overlap with your reference answer (1 = the same words)", "rate"),
    ("rouge_l", "ROUGE-L", "Longest shared wording (ROUGE-L)", "longest shared word sequence with your reference answer", "rate"),
    ("semantic_similarity", "Semantic similarity", "Closeness in meaning", "closeness in meaning to your reference answer", "rate"),
    ("style_similarity", "Style similarity", "Closeness to your style",
     "closeness to the style of your reference answers (their mix of function words, contractions and "
     "punctuation), whatever the facts", "rate"),
    ("refusal_accuracy", "Refusal accuracy", "Declined questions it cannot answer",
     "share of questions your documents don't cover that it politely declined", "rate"),
    ("hallucination_rate", "Hallucination rate", "Made-up answers to those",
     "made-up answers to questions your documents don't cover (lower is better)", "rate"),
    ("wrongly_refused", "Wrongly declined", "Declined questions it should answer",
     "share of questions your documents answer that it declined anyway (lower is better)", "rate"),
    ("first_turn_accuracy", "Chats: first messages right", "Chats: first messages right",
     "in chats, the share of first messages answered right (the right fact, or declined when not covered)", "rate"),
    ("follow_up_accuracy", "Chats: follow-ups right", "Chats: follow-ups right",
     "in chats, the share of follow-up messages (\"how much is it?\") answered right", "rate"),
    ("switch_accuracy", "Chats: topic switches right", "Chats: topic switches right",
     "in chats, the share of messages that change the subject answered right (not about the old topic)", "rate"),
    ("held_back_answers", "Made-up facts held back", "Answers with a made-up fact left out",
     "answers where a written sentence was left out because it named a number, price, phone number or code "
     "that none of your documents has", "count"),
    ("retrieval_hit_at_1", "Retrieval hit@1", "Right FAQ entry found first", "the right FAQ entry was found first", "rate"),
    ("retrieval_hit_at_5", "Retrieval hit@5", "Right FAQ entry in the top 5", "the right FAQ entry was in the top 5", "rate"),
    ("retrieval_mrr", "Retrieval MRR", "How high the right FAQ entry ranked",
     "how high the right FAQ entry ranked on average (1 = always first)", "rate"),
    ("latency_p50_ms", "Latency p50", "Typical answer time", "typical time to answer", "seconds"),
    ("latency_p95_ms", "Latency p95", "Slow answer time (95th percentile)", "time to answer for the slowest 1 question in 20", "seconds"),
    ("tokens_per_s", "Tokens/s", "Model speed (tokens/s)", "writing speed, in word pieces per second", "speed"),
]
CHART_CAPTIONS = {
    "accuracy": "Right fact given, per path",
    "latency": "Time to answer (seconds)",
    "memorization": "FAQ questions word for word vs reworded",
    "refusals": "Questions your documents do not cover: declined or made up",
}
# What a paired test compares, in words: "<a> <verb> more often than <b>".
COMPARE_VERBS = {
    "fact_accuracy": "gave the right fact",
    "refusal_accuracy": "declined questions your documents do not cover",
    "hallucination_rate": "made up answers",
}
# The model profiles (kb.settings.PROFILES) in an owner's words.
PROFILE_WORDS = {
    "quality": "the quality profile",
    "small": "the small profile",
    "custom": "your own models",
}
CLEAR_P = 0.05  # below this a difference is called clear, not luck
NOT_APPLICABLE = "–"
CHARTS = ("accuracy", "latency", "memorization", "refusals")


# ---------------------------------------------------------------- small helpers


def path_words(name: str) -> str:
    """The owner's words for a path; an unknown path is shown as named."""
    return PATH_WORDS.get(name, name)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _pct(x: float) -> str:
    return f"{round(x * 100)}%"


def _secs(ms: float) -> str:
    s = ms / 1000
    if s < 1:
        return f"{s:.2f} s"
    return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def _paths(result: dict) -> dict[str, dict]:
    return result.get("paths") or {}


def evaluated(result: dict) -> list[str]:
    """Names of the paths that have metrics, in the result's order."""
    return [n for n, m in _paths(result).items() if isinstance(m, dict) and "unavailable" not in m]


def unavailable(result: dict) -> dict[str, str]:
    """Path name -> why it was not evaluated."""
    out = {}
    for name, m in _paths(result).items():
        if not isinstance(m, dict):
            out[name] = "no results"
        elif "unavailable" in m:
            out[name] = str(m["unavailable"])
    return out


def _metric(result: dict, path: str, key: str) -> Any:
    m = _paths(result).get(path)
    return m.get(key) if isinstance(m, dict) else None


def _answers(result: dict, path: str, in_scope: bool) -> list[dict]:
    """Each question's answer dict for `path`, in scope or out of it."""
    out = []
    for q in result.get("questions") or []:
        a = (q.get("answers") or {}).get(path)
        if isinstance(a, dict) and bool(q.get("in_scope", q.get("kind") != "out_of_scope")) == in_scope:
            out.append(a)
    return out


def fact_counts(result: dict, path: str) -> tuple[int, int] | None:
    """(right facts, questions scored) for a path; from the questions, else from the metrics."""
    scored = [a["fact"] for a in _answers(result, path, True) if a.get("fact") is not None]
    if scored:
        return sum(bool(f) for f in scored), len(scored)
    acc, n = _metric(result, path, "fact_accuracy"), _metric(result, path, "n_in_scope")
    if acc is None or not n:
        return None
    return round(acc * n), int(n)


def refusal_counts(result: dict, path: str) -> tuple[int, int] | None:
    """(declined, questions not covered) for a path; the rest were answered, i.e. made up."""
    answers = _answers(result, path, False)
    if answers:
        return sum(bool(a.get("refused")) for a in answers), len(answers)
    acc, n = _metric(result, path, "refusal_accuracy"), _metric(result, path, "n_out_of_scope")
    if acc is None or not n:
        return None
    return round(acc * n), int(n)


def _kind_accuracy(result: dict, path: str, kind: str) -> float | None:
    by_kind = _metric(result, path, "by_kind") or {}
    return (by_kind.get(kind) or {}).get("fact_accuracy")


# ---------------------------------------------------------------- the verdict


def verdict(result: dict) -> list[str]:
    """Plain sentences about `result`: the headline first, the recommendation last."""
    lines = [_headline(result)]
    lines += [f"{_cap(path_words(n))} was not evaluated: {why}" for n, why in unavailable(result).items()]
    ranked = _rank(result)
    # The best path against each other one: the comparisons an owner's choice depends on.
    lines += [s for c in result.get("comparisons") or [] if ranked and ranked[0] in (c.get("a"), c.get("b"))
              and (s := _comparison_sentence(c))]
    lines += [s for n in evaluated(result) if (s := _memorization_sentence(result, n))]
    lines += [s for s in (_voice_sentence(result), _refusal_sentence(result), _staleness_sentence(result), _speed_sentence(result),
                          _profiles_sentence(result)) if s]
    if rec := _recommendation(result):
        lines.append(rec)
    return lines


def _headline(result: dict) -> str:
    n_q = result.get("n_questions", len(result.get("questions") or []))
    names = evaluated(result)
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


def _comparison_sentence(c: dict) -> str | None:
    a, b, p = c.get("a"), c.get("b"), c.get("p_value")
    av, bv = c.get("a_value"), c.get("b_value")
    if a is None or b is None or av is None or bv is None:
        return None
    metric = c.get("metric", "fact_accuracy")
    show = _pct if metric in COMPARE_VERBS or metric.startswith("retrieval_") else (lambda x: f"{x:.2f}")
    on_n = f" on {c['n']} questions" if c.get("n") else ""
    if av == bv:
        what = f"{_cap(path_words(a))} and {path_words(b)} scored the same on {metric} ({show(av)}{on_n})"
    else:
        (hi, hv), (lo, lv) = sorted([(a, av), (b, bv)], key=lambda x: -x[1])
        verb = COMPARE_VERBS.get(metric)
        did = f"{verb} more often than" if verb else f"scored higher on {metric} than"
        what = f"{_cap(path_words(hi))} {did} {path_words(lo)} ({show(hv)} vs {show(lv)}{on_n})"
    if p is None:
        return what + "; the difference could not be tested."
    if p < CLEAR_P:
        return f"{what}: a clear difference ({_p(p)})."
    return f"{what}: too close to call on this many questions ({_p(p)})."


def _memorization_sentence(result: dict, path: str) -> str | None:
    verbatim = _kind_accuracy(result, path, "verbatim")
    reworded = _kind_accuracy(result, path, "reworded")
    if verbatim is None or reworded is None:
        return None
    if verbatim - reworded <= 0.10:  # within a question or two: no memorization gap to report
        return None
    return (f"{_cap(path_words(path))} knew {_pct(verbatim)} of your FAQ questions asked word for word "
            f"but only {_pct(reworded)} when customers worded them differently.")


def _voice_sentence(result: dict) -> str | None:
    """Which path sounds most like the owner (style, then wording), and whether that is the path
    with the facts: fine-tuning's gain (voice) beside its loss (facts)."""
    styled = [(n, v) for n in evaluated(result) if (v := _metric(result, n, "style_similarity")) is not None]
    if len(styled) < 2:
        return None
    styled.sort(key=lambda x: -x[1])
    (best, best_v), rest = styled[0], styled[1:]
    words = _metric(result, best, "answer_f1")
    worded = f", word overlap {words:.2f}" if words is not None else ""
    others = "; ".join(f"{path_words(n)} {v:.2f}" for n, v in rest)
    line = (f"Closest to the style of your own answers: {path_words(best)} (style {best_v:.2f}{worded}); "
            f"then {others}.")
    facts = {n: v for n in evaluated(result) if (v := _metric(result, n, "fact_accuracy")) is not None}
    if facts and best in facts and max(facts.values()) > facts[best] + 0.05:
        top = max(facts, key=facts.get)
        line += (f" So {path_words(best)} sounds more like you, but {path_words(top)} gives the right fact more often "
                 f"({_pct(facts[top])} vs {_pct(facts[best])}).")
    return line


def _refusal_sentence(result: dict) -> str | None:
    counted = [(n, c) for n in evaluated(result) if (c := refusal_counts(result, n))]
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


def _staleness_sentence(result: dict) -> str | None:
    stale = result.get("staleness")
    if not isinstance(stale, dict) or not stale.get("paths"):
        return None
    old, new = stale.get("old_value"), stale.get("new_value")
    change = f" from {old} to {new}" if old is not None and new is not None else ""
    parts = []
    for name, s in stale["paths"].items():
        how = s.get("how") or (f"after {s['reflect_seconds']:.1f} s" if s.get("reflect_seconds") is not None else "")
        if s.get("says_new"):
            did = "gave the new one"
        elif s.get("says_old"):
            did = "still gave the old one"
        else:
            did = "gave neither"
        parts.append(f"{path_words(name)} {did}" + (f" ({how})" if how else ""))
    return f"When an answer in your FAQ changed{change}, " + "; ".join(parts) + "."


def _speed_sentence(result: dict) -> str | None:
    timed = [(n, p50) for n in evaluated(result) if (p50 := _metric(result, n, "latency_p50_ms")) is not None]
    if not timed:
        return None
    parts = []
    for name, p50 in sorted(timed, key=lambda x: x[1]):
        p95 = _metric(result, name, "latency_p95_ms")
        slow = f" (the slowest 1 in 20: {_secs(p95)})" if p95 is not None else ""
        parts.append(f"{path_words(name)} {_secs(p50)}{slow}")
    workers = result.get("workers") or 1
    during = f" (measured with {workers} questions answered at a time, so one visitor alone gets answers sooner)" if workers > 1 else ""
    return f"Typical time to answer{during}: " + "; ".join(parts) + "."


def profile_rows(result: dict) -> list[dict]:
    """The measured model profiles (compare.profiles), the one in use first; [] when not measured."""
    profiles = result.get("profiles")
    rows = profiles.get("rows") if isinstance(profiles, dict) else None
    return [r for r in rows or [] if isinstance(r, dict) and r.get("profile")]


def profile_words(row: dict) -> str:
    model = (row.get("model") or "").split(" (")[0]
    how = "answers quoted from your documents" if row.get("quoted") else model
    return PROFILE_WORDS.get(row["profile"], row["profile"]) + (f" ({how})" if how else "")


def profile_models(row: dict) -> str:
    """'qwen2.5-... (llama.cpp, 2 threads); search: all-mpnet-base-v2', or for quoted answers the
    model that would write them, marked as not writing."""
    model = row.get("model") or NOT_APPLICABLE
    if row.get("quoted"):
        model = f"quoted from the passages ({model.split(' (')[0]} does not write them)"
    return f"{model}; search: {row.get('search_model') or NOT_APPLICABLE}"


def _profiles_sentence(result: dict) -> str | None:
    rows = [r for r in profile_rows(result) if r.get("fact_accuracy") is not None]
    if len(rows) < 2:
        return None
    parts = []
    for r in rows:
        declined = r.get("refusal_accuracy")
        declines = f", declined {_pct(declined)} of the questions your documents do not cover" if declined is not None else ""
        took = f" and took {_secs(r['latency_p50_ms'])} per answer" if r.get("latency_p50_ms") is not None else ""
        parts.append(f"with {profile_words(r)} it gave the right fact in {_pct(r['fact_accuracy'])}{declines}{took}")
    used = rows[0]
    return (f"On this machine, answering from your documents: " + "; ".join(parts) + f". You use "
            f"{PROFILE_WORDS.get(used['profile'], used['profile'])}; the setting model_profile changes it.")


def _rank(result: dict) -> list[str]:
    """Evaluated paths, best first: fact accuracy, then fewer made-up answers, then speed."""
    def key(name: str) -> tuple[float, float, float]:
        acc = _metric(result, name, "fact_accuracy")
        hall = _metric(result, name, "hallucination_rate")
        p50 = _metric(result, name, "latency_p50_ms")
        return (-(round(acc, 4) if acc is not None else -1.0),
                round(hall, 4) if hall is not None else 2.0,
                p50 if p50 is not None else float("inf"))
    return sorted(evaluated(result), key=key)


def _recommendation(result: dict) -> str | None:
    ranked = _rank(result)
    if not ranked:
        return None
    best = ranked[0]
    acc = _metric(result, best, "fact_accuracy")
    hall = _metric(result, best, "hallucination_rate")
    use = f"Use {path_words(best)}: "
    if acc is None:
        return use + "no path could be checked for the right fact, so this choice rests on the other numbers only."
    why = f"it gave the right fact most often ({_pct(acc)})"
    if len(ranked) > 1:
        runner = ranked[1]
        r_acc = _metric(result, runner, "fact_accuracy")
        if r_acc is not None and round(r_acc, 4) == round(acc, 4):
            why = f"it tied with {path_words(runner)} on the right fact ({_pct(acc)}) and " + _tie_reason(result, best, runner)
    if hall == 0:
        why += ", and it made up no answers to questions your documents do not cover"
    elif hall is not None:
        why += f", though it made up an answer to {_pct(hall)} of the questions your documents do not cover"
    return use + why + _caveat(result, best, ranked) + "."


def _tie_reason(result: dict, best: str, runner: str) -> str:
    hall, r_hall = _metric(result, best, "hallucination_rate"), _metric(result, runner, "hallucination_rate")
    if hall is not None and r_hall is not None and round(hall, 4) != round(r_hall, 4):
        return f"made up fewer answers ({_pct(hall)} vs {_pct(r_hall)})"
    p50, r_p50 = _metric(result, best, "latency_p50_ms"), _metric(result, runner, "latency_p50_ms")
    if p50 is not None and r_p50 is not None and _secs(p50) != _secs(r_p50):  # a gap the owner can see
        return f"answers faster ({_secs(p50)} vs {_secs(r_p50)})"
    return "did as well on everything else"


def _caveat(result: dict, best: str, ranked: list[str]) -> str:
    """A warning when the lead over the runner-up is not statistically clear."""
    if len(ranked) < 2:
        return ""
    runner = ranked[1]
    for c in result.get("comparisons") or []:
        if c.get("metric", "fact_accuracy") == "fact_accuracy" and {c.get("a"), c.get("b")} == {best, runner}:
            p = c.get("p_value")
            if p is not None and p >= CLEAR_P:
                return (f" (but its lead over {path_words(runner)} is too close to call on this many "
                        f"questions; more test questions would settle it)")
    return ""


# ---------------------------------------------------------------- charts


def _bars(title: str, ylabel: str, names: list[str], series: dict[str, list[float | None]],
          errors: list[tuple[float, float]] | None = None, ylim: tuple[float, float] | None = None) -> bytes:
    """A (grouped) bar chart as PNG bytes. None values leave a gap."""
    import io

    from matplotlib.figure import Figure  # heavy: only when a report is written

    fig = Figure(figsize=(6.4, 3.6), dpi=100)
    ax = fig.add_subplot()
    width = 0.8 / len(series)
    xs = range(len(names))
    for i, (label, values) in enumerate(series.items()):
        offsets = [x - 0.4 + width * (i + 0.5) for x in xs]
        heights = [float("nan") if v is None else v for v in values]
        yerr = None
        if errors is not None and i == 0:
            yerr = [[lo for lo, _ in errors], [hi for _, hi in errors]]
        ax.bar(offsets, heights, width, label=label, yerr=yerr, capsize=4 if yerr else 0)
    ax.set_xticks(list(xs), [SHORT_WORDS.get(n, n) for n in names])
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if ylim:
        ax.set_ylim(*ylim)
    if len(series) > 1:
        ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _accuracy_chart(result: dict) -> bytes | None:
    names = [n for n in evaluated(result) if _metric(result, n, "fact_accuracy") is not None]
    if not names:
        return None
    accs = [_metric(result, n, "fact_accuracy") for n in names]
    errors = []
    for n, acc in zip(names, accs):
        ci = _metric(result, n, "fact_accuracy_ci")
        errors.append((max(acc - ci[0], 0.0), max(ci[1] - acc, 0.0)) if ci and None not in ci else (0.0, 0.0))
    return _bars("Right fact given (bars: 95% confidence range)", "fact accuracy", names,
                 {"fact accuracy": accs}, errors=errors, ylim=(0, 1.05))


def _latency_chart(result: dict) -> bytes | None:
    keys = ("latency_p50_ms", "latency_p95_ms")
    names = [n for n in evaluated(result) if any(_metric(result, n, k) is not None for k in keys)]
    if not names:
        return None
    series = {label: [None if (v := _metric(result, n, k)) is None else v / 1000 for n in names]
              for label, k in zip(("typical (p50)", "slowest 1 in 20 (p95)"), keys)}
    return _bars("Time to answer", "seconds", names, series)


def _memorization_chart(result: dict) -> bytes | None:
    kinds = ("verbatim", "reworded")
    names = [n for n in evaluated(result) if any(_kind_accuracy(result, n, k) is not None for k in kinds)]
    if not names:
        return None
    series = {label: [_kind_accuracy(result, n, k) for n in names]
              for label, k in zip(("asked word for word", "worded differently"), kinds)}
    return _bars("FAQ questions: word for word vs reworded", "fact accuracy", names, series, ylim=(0, 1.05))


def _refusals_chart(result: dict) -> bytes | None:
    keys = ("refusal_accuracy", "hallucination_rate")
    names = [n for n in evaluated(result) if any(_metric(result, n, k) is not None for k in keys)]
    if not names:
        return None
    series = {label: [_metric(result, n, k) for n in names]
              for label, k in zip(("declined (good)", "made up an answer (bad)"), keys)}
    return _bars("Questions your documents do not cover", "share of questions", names, series, ylim=(0, 1.05))


def charts(result: dict) -> dict[str, bytes]:
    """Chart name -> PNG bytes, leaving out a chart no path has data for."""
    makers = {"accuracy": _accuracy_chart, "latency": _latency_chart,
              "memorization": _memorization_chart, "refusals": _refusals_chart}
    return {name: png for name, make in makers.items() if (png := make(result)) is not None}


# ---------------------------------------------------------------- HTML

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } .meta { color: #555; margin-top: 0; }
.verdict { background: #eef6ee; border-left: 6px solid #2e7d32; padding: 0.8em 1.2em; margin: 1.2em 0; }
.verdict .headline { font-size: 1.25em; font-weight: 600; }
.verdict .recommendation { font-weight: 600; }
table { border-collapse: collapse; margin: 0.8em 0; width: 100%; }
th, td { border: 1px solid #ccc; padding: 0.35em 0.55em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; white-space: nowrap; }
.explain { color: #555; font-size: 0.9em; }
.right { background: #eefaf0; } .wrong { background: #fdecec; } .unknown { background: #f7f7f7; }
.mark { font-weight: 700; margin-right: 0.3em; }
.right .mark { color: #2e7d32; } .wrong .mark { color: #c62828; } .unknown .mark { color: #777; }
.tag { color: #555; font-size: 0.85em; }
figure { display: inline-block; margin: 0.5em; } figure img { max-width: 100%; }
.note { color: #555; }
"""


def e(value: Any) -> str:
    """Text from the result, safe inside HTML."""
    return html.escape(str(value))


def _fmt(value: Any, how: str) -> str:
    if value is None:
        return NOT_APPLICABLE
    if how == "rate":
        return f"{value:.2f}"
    if how == "seconds":
        return _secs(value)
    if how == "speed":
        return f"{value:.1f}"
    return str(value)


def metric_text(m: dict, key: str, how: str, ci: bool = True) -> str:
    """One path's measure as shown everywhere: '0.80 (0.38–0.96)', '1.2 s', or '–' when it does
    not apply. `how` comes from METRICS."""
    text = _fmt(m.get(key), how)
    interval = m.get(f"{key}_ci")
    if ci and m.get(key) is not None and interval and len(interval) == 2 and None not in interval:
        text += f" ({interval[0]:.2f}–{interval[1]:.2f})"
    return text


def _metric_cell(m: dict, key: str, how: str) -> str:
    return f'<td class="num">{e(metric_text(m, key, how))}</td>'


def _metrics_html(result: dict) -> str:
    names = evaluated(result)
    notes = "".join(f'<p class="note">{e(_cap(path_words(n)))} was not evaluated: {e(why)}</p>'
                    for n, why in unavailable(result).items())
    if not names:
        return "<h2>Scores</h2>" + (notes or '<p class="note">No answer path was evaluated.</p>')
    head = "<tr><th>Measure</th>" + "".join(f"<th>{e(n)}<br><span class=\"explain\">{e(path_words(n))}</span></th>"
                                            for n in names) + "<th>What it means</th></tr>"
    rows = []
    for key, label, _short, explain, how in METRICS:
        cells = "".join(_metric_cell(_paths(result)[n], key, how) for n in names)
        rows.append(f"<tr><th>{e(label)}</th>{cells}<td class=\"explain\">{e(explain)}</td></tr>")
    return ("<h2>Scores</h2><p class=\"note\">Ranges in brackets are 95% confidence intervals; "
            f"{NOT_APPLICABLE} means not applicable.</p><table>{head}{''.join(rows)}</table>{notes}")


def _comparisons_html(result: dict) -> str:
    comps = result.get("comparisons") or []
    if not comps:
        return ""
    rows = []
    for c in comps:
        p = c.get("p_value")
        call = "—" if p is None else ("clear difference" if p < CLEAR_P else "too close to call")
        cells = [c.get("a"), c.get("b"), c.get("metric"), _fmt(c.get("a_value"), "rate"),
                 _fmt(c.get("b_value"), "rate"), c.get("test"), c.get("n"),
                 NOT_APPLICABLE if p is None else ("< 0.001" if p < 0.001 else f"{p:.3g}"), call]
        rows.append("<tr>" + "".join(f"<td>{e(NOT_APPLICABLE if v is None else v)}</td>" for v in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("A", "B", "Measure", "A", "B", "Test", "Questions", "p-value", "Verdict"))
    return ("<h2>Is the difference real?</h2><p class=\"note\">Paired tests on the same questions: a p-value "
            f"below {CLEAR_P} means the difference is unlikely to be luck.</p>"
            f"<table><tr>{head}</tr>{''.join(rows)}</table>")


def _charts_html(pngs: dict[str, bytes]) -> str:
    captions = CHART_CAPTIONS
    figs = []
    for name, png in pngs.items():
        data = base64.b64encode(png).decode("ascii")
        figs.append(f'<figure><img src="data:image/png;base64,{data}" alt="{e(captions[name])}">'
                    f"<figcaption>{e(captions[name])}</figcaption></figure>")
    return "<h2>Charts</h2>" + "".join(figs) if figs else ""


def _staleness_html(result: dict) -> str:
    stale = result.get("staleness")
    if not isinstance(stale, dict):
        return ""
    rows = "".join(
        f"<tr><td>{e(n)}</td><td>{e(s.get('answer') or '')}</td>"
        f"<td>{'yes' if s.get('says_new') else 'no'}</td><td>{'yes' if s.get('says_old') else 'no'}</td>"
        f"<td>{e(s.get('how') or '')}</td></tr>"
        for n, s in (stale.get("paths") or {}).items())
    return ("<h2>When an answer changes</h2>"
            f"<p>We changed the FAQ answer to <q>{e(stale.get('faq_question') or '')}</q> from "
            f"<b>{e(stale.get('old_value'))}</b> to <b>{e(stale.get('new_value'))}</b> and asked "
            f"<q>{e(stale.get('question') or '')}</q>.</p>"
            "<table><tr><th>Path</th><th>Answer</th><th>New value?</th><th>Old value?</th><th>How</th></tr>"
            f"{rows}</table>")


def _profiles_html(result: dict) -> str:
    rows = profile_rows(result)
    if not rows:
        return ""
    keys = [("fact_accuracy", "rate"), ("refusal_accuracy", "rate"), ("wrongly_refused", "rate"),
            ("latency_p50_ms", "seconds"), ("latency_p95_ms", "seconds")]
    labels = {k: label for k, label, *_ in METRICS}
    head = "<tr><th>Profile</th><th>Models</th>" + "".join(f"<th>{e(labels[k])}</th>" for k, _ in keys) + "</tr>"
    body = []
    for r in rows:
        name = PROFILE_WORDS.get(r["profile"], r["profile"]) + (" (in use)" if r.get("in_use") else "")
        models = profile_models(r)
        if r.get("unavailable"):
            cells = f'<td colspan="{len(keys)}">{e(r["unavailable"])}</td>'
        else:
            cells = "".join(_metric_cell(r, k, how) for k, how in keys)
        body.append(f"<tr><th>{e(name)}</th><td>{e(models)}</td>{cells}</tr>")
    return ("<h2>Model profiles on this machine</h2><p class=\"note\">The answers from your documents with each "
            "model profile, on the same questions. The profile not in use was measured on a copy of your "
            "knowledge base. Change it with the setting <code>model_profile</code>.</p>"
            f"<table>{head}{''.join(body)}</table>")


def _overlap_html(result: dict) -> str:
    ov = result.get("training_overlap") or {}
    adapter = ov.get("adapter")
    if not ov.get("checked"):
        why = "no fine-tuned model was evaluated" if adapter is None else f"adapter {adapter}"
        html = f"<h2>Training overlap</h2><p class=\"note\">Not checked ({e(why)}).</p>"
    elif not ov.get("n_in_training"):
        text = (f"None of the test questions were in the fine-tuned model's training data "
                f"(adapter {adapter}), so its scores are not inflated by memory.")
        html = f"<h2>Training overlap</h2><p>{e(text)}</p>"
    else:
        items = "".join(f"<li>{e(q)}</li>" for q in ov.get("questions") or [])
        text = (f"{ov['n_in_training']} test question(s) were also in the training data of adapter {adapter}: "
                "the fine-tuned model's score on them shows memory, not understanding.")
        html = f"<h2>Training overlap</h2><p>{e(text)}</p><ul>{items}</ul>"
    return html + _calibration_overlap_html(result)


def _calibration_overlap_html(result: dict) -> str:
    cal = result.get("calibration_overlap") or {}
    if not cal.get("checked"):
        return ""
    if not cal.get("n_calibrated"):
        return ("<p>None of the test questions were among those kbchat used to set this knowledge base's thresholds "
                "(when to give a curated answer, when to decline), so its decline figures are measured on new questions.</p>")
    items = "".join(f"<li>{e(q)}</li>" for q in cal.get("questions") or [])
    return (f"<p>{cal['n_calibrated']} test question(s) were also among those kbchat used to set this knowledge base's "
            f"thresholds: the answers from your documents may look better on them than on new questions.</p><ul>{items}</ul>")


def _answer_cell(a: dict | None) -> str:
    if not isinstance(a, dict):
        return f'<td class="unknown">{NOT_APPLICABLE}</td>'
    right = a.get("right")
    cls, mark = ("unknown", "?") if right is None else (("right", "✓") if right else ("wrong", "✗"))
    tag = ' <span class="tag">(declined)</span>' if a.get("refused") else ""
    return f'<td class="{cls}"><span class="mark">{mark}</span>{e(a.get("text") or "")}{tag}</td>'


def _question_names(result: dict) -> list[str]:
    names = evaluated(result)
    skip = set(unavailable(result))
    for q in result.get("questions") or []:
        names += [n for n in q.get("answers") or {} if n not in names and n not in skip]
    return names


def _questions_html(result: dict) -> str:
    questions = result.get("questions") or []
    if not questions:
        return ""
    names = _question_names(result)
    head = "<tr><th>Question</th><th>Kind</th><th>Reference answer</th>" + "".join(
        f"<th>{e(n)}</th>" for n in names) + "</tr>"
    rows = []
    for q in questions:
        kind = q.get("kind") or ""
        if q.get("reference") is not None:
            ref = e(q["reference"])
        elif q.get("in_scope") is False:
            ref = '<span class="tag">not covered by your documents: should decline</span>'
        else:
            ref = NOT_APPLICABLE
        if q.get("expected"):
            ref += '<br><span class="tag">expects: ' + e("; ".join(map(str, q["expected"]))) + "</span>"
        answers = q.get("answers") or {}
        cells = "".join(_answer_cell(answers.get(n)) for n in names)
        rows.append(f"<tr><td>{e(q.get('question') or '')}</td><td>{e(KIND_WORDS.get(kind, kind))}</td>"
                    f"<td>{ref}</td>{cells}</tr>")
    return ("<h2>Every question</h2><p class=\"note\">✓ right fact (or, for questions your documents do not "
            "cover, politely declined); ✗ wrong; ? could not be checked.</p>"
            f"<table>{head}{''.join(rows)}</table>")


def _verdict_html(lines: list[str]) -> str:
    head, rest = lines[0], lines[1:]
    items = "".join(f'<li class="recommendation">{e(s)}</li>' if s.startswith("Use ") else f"<li>{e(s)}</li>"
                    for s in rest)
    return f'<div class="verdict"><p class="headline">{e(head)}</p><ul>{items}</ul></div>'


def render_html(result: dict, pngs: dict[str, bytes]) -> str:
    """The whole report as one self-contained HTML page."""
    n_q = result.get("n_questions", len(result.get("questions") or []))
    source = result.get("questions_file") or "built from the knowledge base"
    meta = (f"{e(result.get('created_at') or '')} · knowledge base {e(result.get('kb') or NOT_APPLICABLE)} · "
            f"{e(n_q)} questions ({e(source)}) · meaning compared with {e(result.get('semantic_model') or NOT_APPLICABLE)}")
    models = sorted(set((result.get("models") or {}).values()))
    if models:
        meta += f" · answers written by {e('; '.join(models))}"
    body = "".join([
        "<h1>How well does your chatbot answer?</h1>", f'<p class="meta">{meta}</p>',
        _verdict_html(verdict(result)), _metrics_html(result), _comparisons_html(result),
        _charts_html(pngs), _staleness_html(result), _profiles_html(result), _overlap_html(result),
        _questions_html(result),
    ])
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            "<title>Chatbot evaluation report</title>"
            f"<style>{CSS}</style></head><body>{body}</body></html>\n")


def write_report(result: dict, out_dir: str | Path) -> Path:
    """Write results.json, the charts and report.html into `out_dir`; return report.html's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n",
                                      encoding="utf-8")
    pngs = charts(result)
    for name in CHARTS:
        png_path = out / f"{name}.png"
        if name in pngs:
            png_path.write_bytes(pngs[name])
        else:
            png_path.unlink(missing_ok=True)  # a chart left from an earlier run would mislead
    report = out / "report.html"
    report.write_text(render_html(result, pngs), encoding="utf-8")
    return report
