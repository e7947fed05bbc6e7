"""The comparison layer with the real models: every path behind one interface, evaluation sets that
keep training questions out, an evaluation that scores, resumes and reports, and the staleness test.

One small knowledge base (the first FAQ rows and the price list) and one tiny real LoRA adapter are
shared by the module; answers are kept short so four paths answer in seconds."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import sample_kb

from compare import evaluate, staleness
from rag import questions
from compare.paths import NAMES, availability, build, parse_names
from compare.report import write_report
from compare.result import EvalResult
from kb.errors import BadInput, NotFound
from kb.ingest import ingest
from kb.records import Answer, question_key
from kb.settings import Settings
from kb.store import Store
from tuning.data import split_for_training
from tuning.train import TuneSettings

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
SHORT = Settings(max_new_tokens=32)
METRIC_KEYS = {
    "fact_accuracy", "fact_accuracy_ci", "answer_f1", "rouge_l", "semantic_similarity", "refusal_accuracy",
    "hallucination_rate", "retrieval_hit_at_1", "retrieval_hit_at_5", "retrieval_mrr", "latency_p50_ms",
    "latency_p95_ms", "tokens_per_s",
}


def _small_kb(folder: Path) -> Path:
    return sample_kb(folder, 8, "price_list.md")


def test_path_names_are_checked():
    assert parse_names(None) == list(NAMES) and parse_names("all") == list(NAMES)
    assert parse_names(" rag, tuned,rag ") == ["rag", "tuned"]
    with pytest.raises(BadInput, match="Unknown answer path 'rgb'.*rag, base, tuned, rag\\+tuned"):
        parse_names("rag,rgb")


def test_every_path_answers_through_one_interface(tuned_kb):
    kb, info = tuned_kb
    with Store(kb) as store:
        paths = build(store, SHORT)
        assert paths.names == list(NAMES) and paths.unavailable == {}
        by_name = {p.name: p for p in paths}
        assert by_name["rag"].retriever is by_name["rag+tuned"].retriever  # one index, one embedder
        assert by_name["rag"].generator is by_name["base"].generator  # one copy of the plain model
        for path in paths:
            answer = path.answer("How much is the beginner wheel-throwing course?")
            assert isinstance(answer, Answer) and answer.path == path.name and answer.text
        assert by_name["tuned"].adapter.id == info.id


def test_paths_that_cannot_run_say_why(tmp_path):
    kb = _small_kb(tmp_path)  # no fine-tuned model here
    with Store(kb) as store:
        paths = build(store, SHORT, ["rag", "tuned", "rag+tuned"])
        cheap = availability(store)  # the same verdicts without loading a model
    assert paths.names == ["rag"]
    assert set(paths.unavailable) == {"tuned", "rag+tuned"} and "kbchat tune" in paths.unavailable["tuned"]
    assert {n for n, why in cheap.items() if why is None} == {"rag", "base"} and "kbchat tune" in cheap["rag+tuned"]
    assert {n for n, why in availability(None).items() if why is None} == {"base"}
    alone = build(None, SHORT, ["base", "rag"])
    assert alone.names == ["base"] and "kbchat ingest" in alone.unavailable["rag"]


def test_questions_made_from_the_knowledge_base_were_never_trained_on(tmp_path):
    with Store(tmp_path / "kb") as store:
        assert not [r for r in ingest(store, [str(SAMPLE)], Settings()) if r.failed]
        made = questions.from_knowledge_base(store)
        training = split_for_training(store.faq_pairs(), TuneSettings().n_rewordings, TuneSettings().n_validation)
        faq_questions = {p.question for p in store.faq_pairs()}
    kinds = {q.kind for q in made}
    assert kinds == {"verbatim", "reworded", "document", "out_of_scope"}
    assert {q.question for q in made if q.kind == "verbatim"} == faq_questions
    reworded = [q for q in made if q.kind == "reworded"]
    assert len(reworded) >= 0.9 * len(faq_questions)
    # Neither trained on nor used for validation: unseen by fine-tuning in every way.
    seen = {e.question.lower() for e in training.train + training.validation}
    assert not [q.question for q in reworded if training.contains_question(q.question) or q.question.lower() in seen]
    assert all(q.reference and q.faq_question in faq_questions for q in reworded)
    documents = [q for q in made if q.kind == "document"]
    assert documents and all(q.expected and all(e in q.reference for e in q.expected) for q in documents)
    assert all(not q.in_scope and not q.expected for q in made if q.kind == "out_of_scope")


def test_the_evaluation_never_asks_what_the_thresholds_were_calibrated_on(tmp_path):
    """Calibration draws its own probes and the built-in evaluation others (only the FAQ questions
    as written are shared, on purpose), and an evaluation says how many of its questions calibration
    asked, as it does for fine-tuning's training data."""
    from rag.retrieve import Retriever

    kb = sample_kb(tmp_path, 20, "price_list.md", "policies.pdf")
    with Store(kb) as store:
        probes = set(Retriever(store, Settings()).calibration().probes)
        made = questions.from_knowledge_base(store)
        verbatim = [q for q in made if q.kind == "verbatim"]
        shared = [q.question for q in made if question_key(q.question) in probes]
        assert {q.kind for q in made if q.question in shared} == {"verbatim"}, shared
        assert len(probes) > len(verbatim) * 3  # rewordings, document questions and out-of-scope probes too
        probe = next(q for q in questions.CALIBRATION_OUT_OF_SCOPE if question_key(q) in probes)
        mine = [questions.EvalQuestion(probe, "out_of_scope", False),
                questions.EvalQuestion("Do you repair bicycles?", "out_of_scope", False),
                questions.EvalQuestion(made[0].question, "verbatim", True, expected=made[0].expected)]
        result = evaluate.evaluate(mine, build(store, SHORT, ["rag"]), store, SHORT)
    assert result.calibration_overlap.to_dict() == {"checked": True, "n_calibrated": 1, "questions": [probe]}
    assert "1 test question(s) were also among those kbchat used to set this knowledge base" in \
        write_report(result, tmp_path / "report").read_text()


def test_facts_are_the_checkable_parts_of_an_answer():
    assert questions.facts("Open 10 am to 9 pm; call (555) 314-2760 or hello@x.com. It is $1,595.") == [
        "10 am", "9 pm", "(555) 314-2760", "hello@x.com"]
    assert questions.facts("We're at 214 Alder Street, near Cedar Lane.") == ["214 Alder Street", "Cedar Lane"]
    assert questions.facts("Yes, you can.") == []


def test_the_sample_questions_file_loads_with_its_kinds():
    loaded = questions.load(SAMPLE / "eval_questions.jsonl")
    counts = {k: sum(q.kind == k for q in loaded) for k in ("reworded", "document", "out_of_scope")}
    assert counts == {"reworded": 117, "document": 33, "out_of_scope": 35} and len(loaded) == 185
    assert all(q.expected for q in loaded if q.in_scope)


@pytest.mark.parametrize("content, message", [
    ('{"question": "When are you open?"}\nnot json\n', "line 2 is not valid JSON"),
    ('{"answer": "9 am"}\n', "line 1 has no question"),
    ('{"question": "Hours?", "expected": 9}\n', "line 1: \"expected\" must be a text or a list"),
    ('{"question": "Hours?", "in_scope": "yes"}\n', "line 1: \"in_scope\" must be true or false"),
    ('["When are you open?"]\n', "line 1 must be a JSON object"),
    ("\n\n", "has no questions"),
])
def test_a_bad_questions_file_is_named_line_by_line(tmp_path, content, message):
    path = tmp_path / "q.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BadInput, match=message):
        questions.load(path)


def test_a_missing_questions_file_says_what_to_give(tmp_path):
    with pytest.raises(NotFound, match="no questions file"):
        questions.load(tmp_path / "nope.jsonl")


class _Counting:
    """Counts the questions a real path is asked (and otherwise is that path)."""

    def __init__(self, path):
        self._path, self.asked = path, 0

    def __getattr__(self, name):
        return getattr(self._path, name)

    def answer(self, question, history=()):
        self.asked += 1
        return self._path.answer(question, history)


def _eval_questions() -> list[questions.EvalQuestion]:
    faq = "How much does the beginner wheel-throwing course cost?"  # row 6 of the sample FAQ
    with open(SAMPLE / "faq.csv", newline="", encoding="utf-8") as f:
        reference = dict(list(csv.reader(f))[1:])[faq]
    return [
        questions.EvalQuestion(faq, "verbatim", True, reference, ["$285"], faq),
        questions.EvalQuestion("what does the beginner wheel class cost", "reworded", True, reference, ["$285"], faq),
        questions.EvalQuestion("What is the price for a Canvas studio apron?", "document", True, "Item: Canvas studio apron; Price: $28.", ["$28"]),
        questions.EvalQuestion("Who won the World Cup in 2018?", "out_of_scope", False),
    ]


def test_evaluation_scores_every_path_and_resumes_after_an_interruption(tuned_kb, tmp_path):
    kb, info = tuned_kb
    asked = _eval_questions()
    with Store(kb) as store:
        paths = build(store, SHORT)
        paths.available = [_Counting(p) for p in paths.available]

        def stop_after_six(path, done, total):
            if done == 6:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            evaluate.evaluate(asked, paths, store, SHORT, stop_after_six)
        partial = list((kb / evaluate.PARTIAL_DIR).glob("partial-*.jsonl"))
        assert len(partial) == 1 and len(partial[0].read_text().splitlines()) == 6
        progress = []
        result = evaluate.evaluate(asked, paths, store, SHORT, lambda p, d, t: progress.append(d), workers=2)
    # 16 answers in all; the 6 kept from the first run were not asked again (two at a time now).
    assert sum(p.asked for p in paths.available) == 16 and progress == list(range(6, 17))
    assert result.workers == 2
    assert not partial[0].exists()
    assert result.n_questions == 4 and set(result.paths) == set(NAMES) == set(result.evaluated())
    for name, m in result.paths.items():
        assert METRIC_KEYS <= set(m.to_dict()), name  # the keys results.json keeps
        rows = [q.answers[name] for q in result.questions]
        facts = [r.fact for r in rows if r.fact is not None]
        assert m.fact_accuracy == pytest.approx(sum(facts) / len(facts), abs=1e-4)
        lo, hi = m.fact_accuracy_ci
        assert lo <= m.fact_accuracy <= hi
        assert m.hallucination_rate == pytest.approx(1 - m.refusal_accuracy)
        assert m.by_kind["verbatim"].n == 1 and m.by_kind["out_of_scope"].n == 1
    rag = result.paths["rag"]
    # The FAQ question word for word takes the fast path, so rag finds the fact and its FAQ entry.
    assert result.questions[0].answers["rag"].method == "faq" and result.questions[0].answers["rag"].fact
    assert rag.retrieval_hit_at_1 is not None and rag.retrieval_mrr >= 0.5
    assert result.paths["tuned"].retrieval_hit_at_1 is None and result.paths["base"].retrieval_mrr is None
    assert result.paths["base"].tokens_per_s > 0 and result.paths["rag"].latency_p50_ms > 0
    assert result.training_overlap.to_dict() == {"adapter": info.id, "checked": True, "n_in_training": 0, "questions": []}
    assert len(result.comparisons) == 6 and all(0 <= c.p_value <= 1 for c in result.comparisons)
    assert EvalResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result  # JSON and back, unchanged
    html = write_report(result, tmp_path / "report").read_text(encoding="utf-8")
    assert all(name in html for name in NAMES) and "data:image/png;base64," in html


def test_staleness_rag_gives_the_new_price_and_the_owner_kb_is_untouched(tuned_kb):
    kb, _ = tuned_kb
    with Store(kb) as store:
        before = store.faq_hash()
        chunk, old, new = staleness.pick_fact(store)
        result = staleness.run(store, SHORT, ["rag", "tuned"])
        assert store.faq_hash() == before and old in store.get_chunks([chunk.id])[0].faq.answer
    assert (result.old_value, result.new_value) == (old, new) and new != old
    rag, tuned = result.paths["rag"], result.paths["tuned"]
    assert rag.says_new and not rag.says_old and rag.reflect_seconds > 0
    assert old in rag.before
    assert not tuned.says_new and tuned.reflect_seconds is None and "training" in tuned.how


def test_staleness_needs_a_price_in_the_faq(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "faq.csv").write_text("question,answer\nDo you have parking?,Yes, behind the studio.\n", encoding="utf-8")
    with Store(tmp_path / "kb") as store:
        list(ingest(store, [str(docs)], Settings()))
        with pytest.raises(BadInput, match="none of them has a price"):
            staleness.pick_fact(store)


def test_cli_compare_and_eval(tuned_kb, tmp_path):
    from click.testing import CliRunner

    from ui.cli import cli

    kb, _ = tuned_kb
    run = lambda *args: CliRunner().invoke(cli, ["--kb", str(kb), *args], catch_exceptions=False)  # noqa: E731
    (kb / "settings.toml").write_text("max_new_tokens = 32\n", encoding="utf-8")
    try:
        out = run("compare", "How much is the beginner wheel-throwing course?", "--paths", "rag,tuned", "--json")
        assert out.exit_code == 0, out.output
        record = json.loads(out.output)
        assert [a["path"] for a in record["answers"]] == ["rag", "tuned"] and record["unavailable"] == {}
        table = run("compare", "How much is the beginner wheel-throwing course?", "--paths", "rag")
        assert table.exit_code == 0 and "$285" in table.output and "faq.csv" in table.output
        bad = run("compare", "Hours?", "--paths", "rag,gpt")
        assert bad.exit_code == 1 and "Unknown answer path 'gpt'" in bad.output
        broken = tmp_path / "q.jsonl"
        broken.write_text('{"question": "Hours?"}\n{"question": \n', encoding="utf-8")
        bad_file = run("eval", str(broken))
        assert bad_file.exit_code == 1 and "q.jsonl line 2 is not valid JSON" in bad_file.output
        good = tmp_path / "good.jsonl"
        rows = [{"question": q.question, "answer": q.reference, "expected": q.expected, "in_scope": q.in_scope}
                for q in _eval_questions()]
        good.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        report = tmp_path / "report"
        shown = run("eval", str(good), "--paths", "rag", "--report", str(report))
        assert shown.exit_code == 0, shown.output
        assert "Right fact in the answer" in shown.output and "Use " in shown.output
        assert (report / "report.html").exists() and json.loads((report / "results.json").read_text())["n_questions"] == 4
    finally:
        (kb / "settings.toml").unlink()
