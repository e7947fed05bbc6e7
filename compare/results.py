"""An evaluation result as the owner's screens and reports read it: the metric catalogue (what each
number is called and how it is shown), the owner's words for paths, questions and profiles, and
small readers of a result (compare.result.EvalResult): counts, one kind of question, the profiles.
"""

from __future__ import annotations

from typing import Any

from compare.paths import DESCRIPTIONS
from compare.result import EvalResult, PathMetrics, ProfileRow

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


def path_words(name: str) -> str:
    """The owner's words for a path; an unknown path is shown as named."""
    return PATH_WORDS.get(name, name)


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def pct(x: float) -> str:
    return f"{round(x * 100)}%"


def secs(ms: float) -> str:
    s = ms / 1000
    if s < 1:
        return f"{s:.2f} s"
    return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"


def p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def fact_counts(result: EvalResult, path: str) -> tuple[int, int] | None:
    """(right facts, questions scored) for a path; from the questions, else from the measures."""
    scored = [a.fact for a in result.answers_of(path, True) if a.fact is not None]
    if scored:
        return sum(scored), len(scored)
    acc, n = result.metric(path, "fact_accuracy"), result.metric(path, "n_in_scope")
    if acc is None or not n:
        return None
    return round(acc * n), int(n)


def refusal_counts(result: EvalResult, path: str) -> tuple[int, int] | None:
    """(declined, questions not covered) for a path; the rest were answered, i.e. made up."""
    answers = result.answers_of(path, False)
    if answers:
        return sum(a.refused for a in answers), len(answers)
    acc, n = result.metric(path, "refusal_accuracy"), result.metric(path, "n_out_of_scope")
    if acc is None or not n:
        return None
    return round(acc * n), int(n)


def kind_accuracy(result: EvalResult, path: str, kind: str) -> float | None:
    score = (result.metric(path, "by_kind") or {}).get(kind)
    return score.fact_accuracy if score is not None else None


def profile_rows(result: EvalResult) -> list[ProfileRow]:
    """The measured model profiles (compare.profiles), the one in use first; [] when not measured."""
    return result.profiles.rows if result.profiles is not None else []


def profile_words(row: ProfileRow) -> str:
    model = row.model.split(" (")[0]
    how = "answers quoted from your documents" if row.quoted else model
    return PROFILE_WORDS.get(row.profile, row.profile) + (f" ({how})" if how else "")


def profile_models(row: ProfileRow) -> str:
    """'qwen2.5-... (llama.cpp, up to 2 threads); search: all-mpnet-base-v2', or for quoted answers the
    model that would write them, marked as not writing."""
    model = row.model or NOT_APPLICABLE
    if row.quoted:
        model = f"quoted from the passages ({model.split(' (')[0]} does not write them)"
    return f"{model}; search: {row.search_model or NOT_APPLICABLE}"


def fmt(value: Any, how: str) -> str:
    if value is None:
        return NOT_APPLICABLE
    if how == "rate":
        return f"{value:.2f}"
    if how == "seconds":
        return secs(value)
    if how == "speed":
        return f"{value:.1f}"
    return str(value)


def metric_text(m: PathMetrics | ProfileRow, key: str, how: str, ci: bool = True) -> str:
    """One path's measure as shown everywhere: '0.80 (0.38–0.96)', '1.2 s', or '–' when it does
    not apply. `how` comes from METRICS."""
    value = getattr(m, key)
    text = fmt(value, how)
    interval = getattr(m, f"{key}_ci", None)
    if ci and value is not None and interval and len(interval) == 2:
        text += f" ({interval[0]:.2f}–{interval[1]:.2f})"
    return text
