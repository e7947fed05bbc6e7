"""The records of an evaluation: each scored answer, each question, each path's measures, the
paired tests, the staleness test and the model profiles, gathered in one `EvalResult`.

They are pydantic models, so a result goes to JSON and back unchanged (`to_dict`/`from_dict`), and
reading one with a key it does not know (a renamed measure, a file from another program) fails with
the key's name instead of showing a blank. A key left out takes its default, so the reports of older
kbchat versions still open.

    >>> EvalResult.from_dict({"n_questions": 0}).paths
    {}
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from kb.errors import BadInput

Interval = list[float] | None  # a 95% bootstrap interval [low, high]; None where there is no value


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict):
        """The record of `data`, or BadInput naming each key that is wrong or unknown."""
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'result'}: {err['msg']}" for err in e.errors()[:5])
            raise BadInput(f"kbchat cannot read these evaluation results ({problems}).") from None


class ScoredAnswer(Record):
    """One path's answer to one question, with its scores: `fact` (an expected fact is in it; None
    without expected facts or out of scope), `right` (the fact, or for a question the documents do
    not cover, a decline), f1/rouge_l/style/semantic against the reference (None without one)."""
    text: str
    method: str = ""
    refused: bool = False
    right: bool | None = None
    fact: bool | None = None
    f1: float | None = None
    rouge_l: float | None = None
    style: float | None = None
    semantic: float | None = None
    latency_ms: float = 0.0
    n_tokens: int = 0
    generation_ms: float = 0.0
    citations: list[dict[str, Any]] = []
    notes: list[str] = []
    why: str = ""
    searched: str = ""  # what was searched for (a follow-up made standalone)
    held_back: int = 0  # sentences not shown: facts no passage holds


class QuestionRow(Record):
    """An evaluation question (rag.questions.EvalQuestion) with every path's scored answer."""
    question: str
    kind: str = "question"
    in_scope: bool = True
    reference: str | None = None
    expected: list[str] = []
    chat: int | None = None
    turn: int = 0
    switch: bool = False
    answers: dict[str, ScoredAnswer] = {}


class KindScore(Record):
    """One kind of question (verbatim, reworded, out_of_scope…): how many, and the share right."""
    n: int
    fact_accuracy: float | None = None
    refusal_accuracy: float | None = None


class ContextScore(Record):
    """Chat messages of one place in a chat (first, follow-up, topic switch, single)."""
    n: int
    right: float | None = None
    latency_p50_ms: float | None = None
    tokens: float | None = None


class PathMetrics(Record):
    """One path's measures; every rate has its 95% interval beside it (`<name>_ci`). A measure that
    does not apply (or has no questions) is None. A path that could not run has only `unavailable`."""
    unavailable: str | None = None
    n_in_scope: int = 0
    n_out_of_scope: int = 0
    n_with_facts: int = 0
    fact_accuracy: float | None = None
    fact_accuracy_ci: Interval = None
    answer_f1: float | None = None
    answer_f1_ci: Interval = None
    rouge_l: float | None = None
    rouge_l_ci: Interval = None
    semantic_similarity: float | None = None
    semantic_similarity_ci: Interval = None
    style_similarity: float | None = None
    style_similarity_ci: Interval = None
    refusal_accuracy: float | None = None
    refusal_accuracy_ci: Interval = None
    hallucination_rate: float | None = None
    hallucination_rate_ci: Interval = None
    wrongly_refused: float | None = None
    wrongly_refused_ci: Interval = None
    held_back_answers: int = 0
    held_back_sentences: int = 0
    by_context: dict[str, ContextScore] | None = None  # "single", "first", "follow-up", "switch"
    switches_searched_with_old_topic: int | None = None
    first_turn_accuracy: float | None = None
    follow_up_accuracy: float | None = None
    switch_accuracy: float | None = None
    retrieval_hit_at_1: float | None = None
    retrieval_hit_at_1_ci: Interval = None
    retrieval_hit_at_5: float | None = None
    retrieval_hit_at_5_ci: Interval = None
    retrieval_mrr: float | None = None
    retrieval_mrr_ci: Interval = None
    n_retrieval: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    tokens_per_s: float | None = None
    by_kind: dict[str, KindScore] = {}

    @model_validator(mode="before")
    @classmethod
    def _older_form(cls, data: Any) -> Any:
        """Reports before 2026-12 kept the count of topic switches inside `by_context`."""
        chats = data.get("by_context") if isinstance(data, dict) else None
        if isinstance(chats, dict) and "switches_searched_with_old_topic" in chats:
            chats = dict(chats)
            data = {**data, "by_context": chats, "switches_searched_with_old_topic": chats.pop("switches_searched_with_old_topic")}
        return data

    def value(self, key: str) -> Any:
        """A measure by its name in compare.results.METRICS."""
        return getattr(self, key)

    def interval(self, key: str) -> Interval:
        return getattr(self, f"{key}_ci", None)


class Comparison(Record):
    """A paired test of one measure between two paths, on the questions both were scored on."""
    a: str
    b: str
    metric: str = "fact_accuracy"
    a_value: float | None = None
    b_value: float | None = None
    test: str = ""
    n: int = 0
    p_value: float = 1.0
    a_better: int = 0
    b_better: int = 0


class TrainingOverlap(Record):
    """Evaluation questions the fine-tuned model was trained on (besides the word-for-word FAQ ones)."""
    adapter: str | None = None
    checked: bool = False
    n_in_training: int = 0
    questions: list[str] = []


class CalibrationOverlap(Record):
    """Evaluation questions the rag path's thresholds were calibrated on."""
    checked: bool = False
    n_calibrated: int = 0
    questions: list[str] = []


class StalePath(Record):
    before: str = ""
    answer: str = ""
    says_new: bool = False
    says_old: bool = False
    reflect_seconds: float | None = None  # from the change to an answer with the new value
    how: str = ""


class Staleness(Record):
    """One FAQ price changed on a copy of the knowledge base, and each path asked about it (compare.staleness)."""
    faq_question: str = ""
    question: str = ""
    old_value: str = ""
    new_value: str = ""
    index_seconds: float = 0.0
    paths: dict[str, StalePath] = {}
    unavailable: dict[str, str] = {}


class ProfileRow(Record):
    """The rag path under one model profile (compare.profiles)."""
    profile: str
    in_use: bool = False
    model: str = ""
    search_model: str = ""
    quoted: bool = False  # the answers are the best passage's own words, not written by the model
    unavailable: str | None = None
    fact_accuracy: float | None = None
    fact_accuracy_ci: Interval = None
    refusal_accuracy: float | None = None
    refusal_accuracy_ci: Interval = None
    wrongly_refused: float | None = None
    wrongly_refused_ci: Interval = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    n_in_scope: int = 0
    n_out_of_scope: int = 0


class Profiles(Record):
    path: str = "rag"
    n_questions: int = 0
    rows: list[ProfileRow] = []


class EvalResult(Record):
    """One evaluation: the measures per path, the paired tests, the overlap checks, every question
    with every path's answer, and (when asked for) the staleness test and the model profiles."""
    n_questions: int = 0
    created_at: str = ""
    kb: str | None = None
    questions_file: str | None = None
    semantic_model: str | None = None
    profile: str | None = None  # kb.settings.PROFILES, or "custom"
    models: dict[str, str] = {}  # the model (engine, threads) each path answered with
    training_overlap: TrainingOverlap = TrainingOverlap()
    calibration_overlap: CalibrationOverlap = CalibrationOverlap()
    paths: dict[str, PathMetrics] = {}
    comparisons: list[Comparison] = []
    staleness: Staleness | None = None
    profiles: Profiles | None = None
    questions: list[QuestionRow] = []
    workers: int = 1

    def evaluated(self) -> list[str]:
        """Names of the paths that have measures, in the result's order."""
        return [n for n, m in self.paths.items() if m.unavailable is None]

    def unavailable(self) -> dict[str, str]:
        """Path name -> why it was not evaluated."""
        return {n: m.unavailable for n, m in self.paths.items() if m.unavailable is not None}

    def metric(self, path: str, key: str) -> Any:
        """One measure of one path; None when the path was not evaluated."""
        m = self.paths.get(path)
        return None if m is None or m.unavailable is not None else m.value(key)

    def answers_of(self, path: str, in_scope: bool) -> list[ScoredAnswer]:
        """Each question's scored answer of `path`, in scope or out of it."""
        return [q.answers[path] for q in self.questions if path in q.answers and q.in_scope == in_scope]
