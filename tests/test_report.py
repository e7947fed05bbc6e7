"""The owner's evaluation report: the verdict comes from the numbers, the HTML is safe and complete."""

from __future__ import annotations

import html
import json
import re

import pytest

from compare.charts import charts
from compare.result import EvalResult
from compare.report import write_report
from compare.verdict import verdict
from kb.errors import BadInput

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHART_FILES = ("accuracy.png", "latency.png", "memorization.png", "refusals.png")
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"


def _answer(text: str, right: bool | None, *, fact: bool | None = None, refused: bool = False,
            latency_ms: float = 30.0) -> dict:
    return {"text": text, "method": "faq", "refused": refused, "right": right,
            "fact": right if fact is None and not refused else fact,
            "f1": 0.5, "rouge_l": 0.4, "semantic": 0.7, "latency_ms": latency_ms, "citations": []}


def _question(question: str, kind: str, reference: str | None, expected: list[str], rag: dict, tuned: dict) -> dict:
    return {"question": question, "kind": kind, "in_scope": kind != "out_of_scope", "reference": reference,
            "expected": expected, "answers": {"rag": rag, "tuned": tuned}}


def _metrics(fact: float, ci: list[float], refusal: float, hallucination: float, p50: float, p95: float,
             by_kind: dict, retrieval: bool) -> dict:
    return {
        "n_in_scope": 6, "n_out_of_scope": 2,
        "fact_accuracy": fact, "fact_accuracy_ci": ci,
        "answer_f1": 0.61, "rouge_l": 0.55, "semantic_similarity": 0.78,
        "refusal_accuracy": refusal, "refusal_accuracy_ci": [refusal, refusal], "hallucination_rate": hallucination,
        "retrieval_hit_at_1": 0.8 if retrieval else None, "retrieval_hit_at_5": 1.0 if retrieval else None,
        "retrieval_mrr": 0.9 if retrieval else None,
        "latency_p50_ms": p50, "latency_p95_ms": p95, "tokens_per_s": 27.5,
        "by_kind": by_kind,
    }


def make_result() -> EvalResult:
    """8 questions: RAG right on 4 of 5 scored facts and declines both uncovered questions; the
    tuned model knows the FAQ word for word only and makes up answers (one of them hostile HTML)."""
    questions = [
        _question("What are your opening hours?", "verbatim", "We're open 10-6, Tuesday to Sunday.", ["10-6"],
                  _answer("We're open 10-6.", True), _answer("Open 10-6, Tuesday to Sunday.", True, latency_ms=1200)),
        _question("How much is the wheel course?", "verbatim", "The six-week wheel course is $180.", ["$180"],
                  _answer("It is $180.", True), _answer("The course is $180.", True, latency_ms=1100)),
        _question("When do you open on weekends?", "reworded", "Saturdays and Sundays from 10.", ["10"],
                  _answer("From 10 on Saturdays and Sundays.", True),
                  _answer(f"Weekends {SCRIPT} we are closed.", False, latency_ms=1300)),
        _question("Where's the studio?", "reworded", "We're at 214 Alder Street, Portland.", ["214 Alder Street"],
                  _answer("We are downtown.", False), _answer("Main Street 5.", False, latency_ms=1250)),
        _question("Can I bring my own clay?", "document", "Outside clay is not allowed in the kilns.", ["not allowed"],
                  _answer("Outside clay is not allowed.", True), _answer("Yes, any clay works!", False)),
        _question("Do you sell gift cards & vouchers?", "question", None, [],
                  _answer("Yes, at the front desk.", None), _answer("Yes.", None)),
        _question("Who won the World Series?", "out_of_scope", None, [],
                  _answer("Sorry, I can only answer questions about the studio.", True, refused=True),
                  _answer(f"The Dodgers {IMG}", False)),
        _question("What's the weather tomorrow?", "out_of_scope", None, [],
                  _answer("Sorry, I can only answer questions about the studio.", True, refused=True),
                  _answer("Sunny, 25 degrees.", False)),
    ]
    for q in questions[-2:]:  # out of scope: no fact to check
        for a in q["answers"].values():
            a["fact"] = None
    return EvalResult.from_dict({
        "n_questions": 8,
        "created_at": "2026-11-23T15:40:00Z",
        "kb": "/srv/kb/clay & kiln",
        "questions_file": "sample_data/eval_questions.jsonl",
        "semantic_model": "all-MiniLM-L6-v2",
        "training_overlap": {"adapter": "v3-20261123-1010", "checked": True, "n_in_training": 0, "questions": []},
        "paths": {
            "rag": _metrics(0.8, [0.38, 0.96], 1.0, 0.0, 30.0, 2400.0, {
                "verbatim": {"n": 2, "fact_accuracy": 1.0}, "reworded": {"n": 2, "fact_accuracy": 0.5},
                "document": {"n": 1, "fact_accuracy": 1.0}, "out_of_scope": {"n": 2, "refusal_accuracy": 1.0}},
                retrieval=True),
            "tuned": _metrics(0.4, [0.12, 0.77], 0.0, 1.0, 1200.0, 3100.0, {
                "verbatim": {"n": 2, "fact_accuracy": 1.0}, "reworded": {"n": 2, "fact_accuracy": 0.0},
                "document": {"n": 1, "fact_accuracy": 0.0}, "out_of_scope": {"n": 2, "refusal_accuracy": 0.0}},
                retrieval=False),
            "rag+tuned": {"unavailable": "No fine-tuned model yet: run kbchat tune"},
        },
        "comparisons": [
            {"a": "rag", "b": "tuned", "metric": "fact_accuracy", "a_value": 0.8, "b_value": 0.4,
             "test": "McNemar exact", "n": 5, "p_value": 0.5, "a_better": 2, "b_better": 0},
        ],
        "staleness": {
            "faq_question": "How much is the wheel course?", "question": "How much is the wheel course?",
            "old_value": "$180", "new_value": "$215",
            "paths": {
                "rag": {"answer": "The course is $215.", "says_new": True, "says_old": False, "reflect_seconds": 1.4,
                        "how": "re-indexed the changed FAQ in 1.4 s"},
                "tuned": {"answer": "It is $180.", "says_new": False, "says_old": True, "reflect_seconds": None,
                          "how": "needs retraining (the last training run took 8.4 min)"},
            },
        },
        "questions": questions,
    })


def swap_rag_and_tuned(result: EvalResult) -> EvalResult:
    """The same result with the two paths' names exchanged everywhere."""
    text = json.dumps(result.to_dict())
    text = text.replace('"rag"', '"@@"').replace('"tuned"', '"rag"').replace('"@@"', '"tuned"')
    return EvalResult.from_dict(json.loads(text))


@pytest.fixture
def result() -> EvalResult:
    return make_result()


@pytest.fixture
def report(result, tmp_path) -> str:
    path = write_report(result, tmp_path / "out")
    return path.read_text(encoding="utf-8")


# ---------------------------------------------------------------- files


def test_write_report_writes_every_file(result, tmp_path):
    out = tmp_path / "new" / "folder"
    path = write_report(result, out)
    assert path == out / "report.html" and path.is_file()
    for name in CHART_FILES:
        assert (out / name).read_bytes().startswith(PNG_SIGNATURE), name


def test_results_json_round_trips(result, tmp_path):
    write_report(result, tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert saved == make_result().to_dict() and EvalResult.from_dict(saved) == make_result()


def test_a_report_of_an_older_kbchat_still_opens():
    older = make_result().to_dict()
    older["paths"]["rag"].update(by_context={"first": {"n": 2, "right": 0.5}, "switches_searched_with_old_topic": 1},
                                 switches_searched_with_old_topic=None)
    del older["paths"]["rag"]["switches_searched_with_old_topic"], older["calibration_overlap"], older["workers"]
    result = EvalResult.from_dict(older)
    assert result.paths["rag"].switches_searched_with_old_topic == 1 and result.paths["rag"].by_context["first"].n == 2
    assert result.workers == 1 and not result.calibration_overlap.checked


def test_a_result_with_a_key_kbchat_does_not_know_is_refused():
    renamed = make_result().to_dict()
    renamed["paths"]["rag"]["fact_acuracy"] = renamed["paths"]["rag"].pop("fact_accuracy")
    with pytest.raises(BadInput, match="paths.rag.fact_acuracy"):
        EvalResult.from_dict(renamed)


def test_accuracy_chart_draws_the_intervals(result):
    with_ci = charts(result)["accuracy"]
    for name in ("rag", "tuned"):
        result.paths[name].fact_accuracy_ci = None
    assert charts(result)["accuracy"] != with_ci


def test_a_chart_without_data_is_left_out(result, tmp_path):
    write_report(result, tmp_path)  # a first run leaves memorization.png behind
    for name in ("rag", "tuned"):
        result.paths[name].by_kind = {}
    html_text = write_report(result, tmp_path).read_text(encoding="utf-8")
    assert not (tmp_path / "memorization.png").exists()
    assert (tmp_path / "accuracy.png").exists()
    assert html_text.count("data:image/png;base64,") == 3


# ---------------------------------------------------------------- HTML


def test_html_holds_paths_verdict_and_charts(result, report):
    assert html.escape(verdict(result)[0]) in report
    for name in ("rag", "tuned"):
        assert f"<th>{name}<br>" in report
    assert report.count('src="data:image/png;base64,') == 4
    assert "The fine-tuned model reading your documents was not evaluated: No fine-tuned model yet" in report
    assert "http" not in report  # nothing fetched from elsewhere


def test_html_escapes_everything_from_the_data(report):
    assert html.escape(SCRIPT) in report
    assert html.escape(IMG) in report
    assert "<script" not in report  # the page needs no script, and the data brings none
    assert "<img src=x" not in report
    assert "clay &amp; kiln" in report and "gift cards &amp; vouchers" in report


def test_wrong_and_right_answers_are_marked(result, report):
    def count(value) -> int:
        return sum(a.right is value for q in result.questions for a in q.answers.values())

    assert report.count('<td class="wrong"><span class="mark">✗</span>') == count(False) == 6
    assert report.count('<td class="right"><span class="mark">✓</span>') == count(True) == 8
    assert report.count('<td class="unknown"><span class="mark">?</span>') == count(None) == 2
    assert '<td class="wrong"><span class="mark">✗</span>The Dodgers' in report


def test_metrics_show_intervals_and_dashes_for_nulls(report):
    assert "0.80 (0.38–0.96)" in report
    hit1_row = re.search(r"<tr><th>Retrieval hit@1</th>(.*?)</tr>", report).group(1)
    assert '<td class="num">0.80</td><td class="num">–</td>' in hit1_row
    assert "word overlap with your reference answer" in report


def test_staleness_section_only_when_present(result, tmp_path):
    with_it = write_report(result, tmp_path / "a").read_text(encoding="utf-8")
    result.staleness = None
    without = write_report(result, tmp_path / "b").read_text(encoding="utf-8")
    assert "When an answer changes" in with_it and "The course is $215." in with_it
    assert "When an answer changes" not in without


@pytest.mark.parametrize("empty", [
    {},
    {"n_questions": 0, "paths": {}, "comparisons": [], "staleness": None, "questions": []},
    {"n_questions": 2, "paths": {"rag": {"unavailable": "no index"}, "tuned": {"unavailable": "no adapter"}},
     "training_overlap": {"adapter": None, "checked": False}, "questions": [
         {"question": "Hours?", "kind": "verbatim", "in_scope": True, "reference": "10-6", "answers": {}}]},
])
def test_empty_or_unavailable_results_still_render(empty, tmp_path):
    text = write_report(EvalResult.from_dict(empty), tmp_path).read_text(encoding="utf-8")
    assert "No answer path was evaluated" in text
    assert "data:image/png" not in text
    assert not any((tmp_path / name).exists() for name in CHART_FILES)


# ---------------------------------------------------------------- verdict


def test_headline_counts_come_from_the_answers(result):
    assert verdict(result)[0] == ("On your 8 questions, answers from your documents (RAG) gave the right fact "
                                  "4 times out of 5; the fine-tuned model 2 times.")
    result.paths = dict(reversed(result.paths.items()))  # best first, whatever the order
    assert verdict(result)[0].startswith("On your 8 questions, answers from your documents (RAG) gave")
    result.questions[2].answers["tuned"].fact = True
    result.n_questions = 9
    assert verdict(result)[0] == ("On your 9 questions, answers from your documents (RAG) gave the right fact "
                                  "4 times out of 5; the fine-tuned model 3 times.")


def test_recommends_the_more_accurate_path(result):
    assert verdict(result)[-1].startswith("Use answers from your documents (RAG): it gave the right fact most "
                                          "often (80%)")
    assert "and it made up no answers to questions your documents do not cover" in verdict(result)[-1]
    result.paths["rag"].fact_accuracy = 0.9
    result.paths["rag"].hallucination_rate = 0.5
    assert "most often (90%), though it made up an answer to 50% of the questions" in verdict(result)[-1]
    swapped = verdict(swap_rag_and_tuned(result))
    assert swapped[-1].startswith("Use the fine-tuned model: it gave the right fact most often (90%)")
    assert swapped[0].startswith("On your 8 questions, the fine-tuned model gave the right fact 4 times")


def test_a_tie_is_broken_by_made_up_answers_then_speed(result):
    result.paths["tuned"].fact_accuracy = 0.8
    result.paths["tuned"].hallucination_rate = 0.0
    result.paths["rag"].hallucination_rate = 0.5
    assert verdict(result)[-1].startswith("Use the fine-tuned model: it tied with answers from your documents "
                                          "(RAG) on the right fact (80%) and made up fewer answers (0% vs 50%)")
    result.paths["rag"].hallucination_rate = 0.0
    assert verdict(result)[-1].startswith("Use answers from your documents (RAG): it tied with the fine-tuned "
                                          "model on the right fact (80%) and answers faster (0.03 s vs 1.2 s)")


def test_significance_decides_the_wording(result):
    lines = verdict(result)
    assert ("Answers from your documents (RAG) gave the right fact more often than the fine-tuned model "
            "(80% vs 40% on 5 questions): too close to call on this many questions (p = 0.5).") in lines
    assert "too close to call" in lines[-1]
    result.comparisons[0].p_value = 0.01
    lines = verdict(result)
    assert any(line.endswith("a clear difference (p = 0.01).") for line in lines)
    assert "too close to call" not in " ".join(lines)


def test_memorization_gap(result):
    assert ("The fine-tuned model knew 100% of your FAQ questions asked word for word but only 0% when "
            "customers worded them differently.") in verdict(result)
    result.paths["tuned"].by_kind["reworded"].fact_accuracy = 0.95  # within 10 points: no gap to tell
    assert not any(s.startswith("The fine-tuned model knew") for s in verdict(result))
    result.paths["tuned"].by_kind["reworded"].fact_accuracy = 0.85
    assert any("knew 100% of your FAQ questions asked word for word but only 85% when" in s for s in verdict(result))
    del result.paths["tuned"].by_kind["reworded"]
    assert not any(s.startswith("The fine-tuned model knew") for s in verdict(result))


def test_refusals_sentence(result):
    expected = ("Of the 2 questions your documents do not cover, answers from your documents (RAG) declined all 2; "
                "the fine-tuned model made up an answer to all 2.")
    assert expected in verdict(result)
    result.questions[-1].answers["tuned"].refused = True
    assert any("the fine-tuned model declined 1 and made up an answer to 1." in s for s in verdict(result))


def test_staleness_sentence_only_when_present(result):
    stale = [s for s in verdict(result) if s.startswith("When an answer in your FAQ changed")]
    assert stale == ["When an answer in your FAQ changed from $180 to $215, answers from your documents (RAG) gave "
                     "the new one (re-indexed the changed FAQ in 1.4 s); the fine-tuned model still gave the old one "
                     "(needs retraining (the last training run took 8.4 min))."]
    result.staleness = None
    assert not any("changed" in s for s in verdict(result))


def test_speed_and_unavailable_paths(result):
    lines = verdict(result)
    assert ("Typical time to answer: answers from your documents (RAG) 0.03 s (the slowest 1 in 20: 2.4 s); "
            "the fine-tuned model 1.2 s (the slowest 1 in 20: 3.1 s).") in lines
    assert sum("was not evaluated" in s for s in lines) == 1


def test_unknown_path_names_are_shown_as_is(result):
    result.paths["my-bot"] = result.paths["rag"].model_copy(update={"fact_accuracy": 0.95, "latency_p50_ms": 10.0})
    assert verdict(result)[-1].startswith("Use my-bot: it gave the right fact most often (95%)")


def test_verdict_of_nothing():
    assert verdict(EvalResult()) == ["No answer path was evaluated on your 0 questions."]


PROFILES = {"path": "rag", "n_questions": 4, "rows": [
    {"profile": "quality", "in_use": True, "model": "qwen2.5-coder-1.5b-instruct-q4_k_m (llama.cpp, 2 threads)",
     "search_model": "all-mpnet-base-v2", "fact_accuracy": 0.75, "fact_accuracy_ci": [0.5, 1.0],
     "refusal_accuracy": 1.0, "refusal_accuracy_ci": [1.0, 1.0], "wrongly_refused": 0.0, "wrongly_refused_ci": None,
     "latency_p50_ms": 4100.0, "latency_p95_ms": 9800.0},
    {"profile": "small", "in_use": False, "model": "SmolLM2-135M-Instruct (f16) (llama.cpp, 2 threads)", "quoted": True,
     "search_model": "all-MiniLM-L6-v2",
     "fact_accuracy": 0.5, "fact_accuracy_ci": [0.0, 1.0], "refusal_accuracy": 0.0, "refusal_accuracy_ci": None,
     "wrongly_refused": 0.25, "wrongly_refused_ci": None, "latency_p50_ms": 12.0, "latency_p95_ms": 30.0},
]}


def test_model_profiles_are_one_sentence_and_one_table_when_measured(result, tmp_path):
    without = write_report(result, tmp_path / "a").read_text(encoding="utf-8")
    assert "Model profiles on this machine" not in without
    assert not any(s.startswith("On this machine") for s in verdict(result))
    result.profiles = PROFILES
    sentence = [s for s in verdict(result) if s.startswith("On this machine")]
    assert sentence == ["On this machine, answering from your documents: with the quality profile "
                        "(qwen2.5-coder-1.5b-instruct-q4_k_m) it gave the right fact in 75%, declined 100% of the "
                        "questions your documents do not cover and took 4.1 s per answer; with the small profile "
                        "(answers quoted from your documents) it gave the right fact in 50%, declined 0% of the questions your "
                        "documents do not cover and took 0.01 s per answer. You use the quality profile; the setting "
                        "model_profile changes it."]
    text = write_report(result, tmp_path / "b").read_text(encoding="utf-8")
    table = text.split("Model profiles on this machine", 1)[1].split("</table>", 1)[0]
    assert "the quality profile (in use)" in table and "search: all-MiniLM-L6-v2" in table
    assert "0.75 (0.50–1.00)" in table and "4.1 s" in table and "0.01 s" in table


def test_a_profile_that_could_not_run_says_why(result, tmp_path):
    rows = [PROFILES["rows"][0], {"profile": "small", "in_use": False, "model": "", "search_model": "all-MiniLM-L6-v2",
                                  "unavailable": "There are no documents yet."}]
    result.profiles = {**PROFILES, "rows": rows}
    assert not any(s.startswith("On this machine") for s in verdict(result))  # one profile: nothing to compare
    text = write_report(result, tmp_path).read_text(encoding="utf-8")
    assert "There are no documents yet." in text.split("Model profiles on this machine", 1)[1]


def test_the_verdict_says_which_path_sounds_like_the_owner_and_what_it_costs(result):
    result.paths["rag"].style_similarity = 0.58
    result.paths["tuned"].style_similarity = 0.83
    voice = next(line for line in verdict(result) if line.startswith("Closest to the style"))
    assert voice.startswith("Closest to the style of your own answers: the fine-tuned model") or "fine-tuned" in voice
    assert "(style 0.83, word overlap 0.61); then answers from your documents (RAG) 0.58." in voice
    assert "sounds more like you, but answers from your documents (RAG) gives the right fact more often" in voice
    result.paths["rag"].style_similarity = 0.9  # RAG closest in style too: no trade-off to report
    voice = next(line for line in verdict(result) if line.startswith("Closest to the style"))
    assert "sounds more like you" not in voice


def test_a_tie_is_not_called_faster_when_the_times_read_the_same(result):
    tuned = result.paths["tuned"]
    rag = result.paths["rag"]
    tuned.fact_accuracy, tuned.hallucination_rate = rag.fact_accuracy, rag.hallucination_rate
    tuned.latency_p50_ms = rag.latency_p50_ms + 1  # 1 ms apart: the same when shown in seconds
    last = verdict(result)[-1]
    assert "answers faster" not in last and "did as well on everything else" in last, last
