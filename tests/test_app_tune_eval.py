"""The Fine-tune and Evaluate pages of the app (Streamlit AppTest): the training data check and
settings, starting, stopping and resuming a background run, the trained versions, the evaluation
choices, and a finished evaluation shown as a verdict, scores, charts and a downloadable report.

Background jobs are real `kbchat` processes; they are stopped (or fail on purpose) within seconds, so
no test trains or evaluates in full. The finished report comes from a real evaluation of four
questions with the rag path and short answers."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from conftest import ROOT, sample_kb
from streamlit.testing.v1 import AppTest

from tuning import adapters
from tuning.train import TuneSettings
from ui import jobs

APP = ROOT / "ui" / "app.py"
REPORT = "20260102-093000"  # a report folder name: the page shows it as a date


def open_page(monkeypatch, kb: Path, view: str) -> AppTest:
    monkeypatch.setenv("KBCHAT_HOME", str(kb))
    at = AppTest.from_file(APP, default_timeout=180)
    at.switch_page(f"views/{view}.py")
    return at.run()


def texts(at: AppTest) -> str:
    """Every piece of text on the page, to search in."""
    parts = [e.value for kind in ("markdown", "caption", "info", "warning", "error", "success", "code")
             for e in getattr(at, kind)]
    return "\n".join(map(str, parts))


def wait_for_job(kb: Path, name: str, seconds: float = 240) -> jobs.Job:
    deadline = time.time() + seconds
    while jobs.status(kb, name).running:
        assert time.time() < deadline, jobs.status(kb, name).log_tail
        time.sleep(0.5)
    return jobs.status(kb, name)


def button(at: AppTest, label: str):
    found = [b for b in at.button if b.label == label]
    assert len(found) == 1, [b.label for b in at.button]
    return found[0]


@pytest.fixture(scope="module")
def full_kb(tmp_path_factory) -> Path:
    return sample_kb(tmp_path_factory.mktemp("full"), 30, "price_list.md")


# ---------------------------------------------------------------- both pages


@pytest.mark.parametrize("view", ["tune", "evaluate"])
def test_every_page_renders_with_an_empty_knowledge_base(monkeypatch, tmp_path, view):
    at = open_page(monkeypatch, tmp_path / "kb", view)
    assert not at.exception
    assert any("knowledge base is empty" in i.value for i in at.info)
    assert not [b for b in at.button if b.label in ("Start training", "Run the evaluation")]


# ---------------------------------------------------------------- Fine-tune


def test_fine_tune_shows_the_data_check_and_the_settings(monkeypatch, full_kb):
    at = open_page(monkeypatch, full_kb, "tune")
    assert not at.exception
    page = texts(at)
    assert "Checked 30 question/answer pairs" in page
    assert "training examples" in page and "held-out rewordings" in page
    assert not [w for w in at.warning if "Too few" in w.value]
    defaults = TuneSettings()
    epochs = [n for n in at.number_input if n.label == "Epochs"]
    assert len(epochs) == 1 and epochs[0].value == defaults.epochs
    rate = [s for s in at.select_slider if s.label == "Learning rate"]
    assert len(rate) == 1 and rate[0].value == defaults.learning_rate
    assert "how many times the model reads all your questions" in page.lower()
    assert not button(at, "Start training").disabled
    assert button(at, "Resume the stopped run").disabled  # nothing was stopped
    assert "No fine-tuned model yet" in page


def test_fine_tune_warns_when_there_are_too_few_pairs(monkeypatch, tmp_path):
    at = open_page(monkeypatch, sample_kb(tmp_path, 5), "tune")
    assert not at.exception
    warned = [w.value for w in at.warning if "Too few" in w.value]
    assert len(warned) == 1 and "Only 5 question/answer pairs" in warned[0]


def test_training_starts_with_the_chosen_settings_and_stops_from_the_page(monkeypatch, tmp_path, model_cache):
    kb = sample_kb(tmp_path, 20)
    at = open_page(monkeypatch, kb, "tune")
    [n for n in at.number_input if n.label == "Epochs"][0].set_value(2)
    [s for s in at.select_slider if s.label == "Learning rate"][0].set_value(0.0005)
    button(at, "Start training").click()
    at.run()
    try:
        job = jobs.status(kb, "tune")
        assert job.args == ["tune", "--epochs", "2", "--lr", "0.0005"]
        assert not at.exception
        assert not [b for b in at.button if b.label == "Start training"]  # one run at a time
        assert at.progress, "the live part shows a progress bar while the run goes on"
        button(at, "Stop training").click()
        at.run()
    finally:
        jobs.stop(kb, "tune")
    stopped = wait_for_job(kb, "tune", 60)
    assert stopped.stopped, stopped.log_tail
    at.run()
    assert any("Training was stopped" in i.value for i in at.info)
    assert button(at, "Start training")


def test_resuming_runs_in_the_background_and_a_failure_shows_its_last_lines(monkeypatch, tmp_path, model_cache):
    kb = sample_kb(tmp_path, 20)
    # An interrupted run whose FAQ pairs have changed since: resuming it must fail with a plain reason.
    run = kb / "tuning" / "run-20260101-080000"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({
        "settings": TuneSettings(epochs=1).__dict__, "extra": [], "data_hash": "older-data",
        "faq_hash": "older-faq", "started_at": "2026-01-01T08:00:00Z", "report": []}))
    at = open_page(monkeypatch, kb, "tune")
    resume = button(at, "Resume the stopped run")
    assert not resume.disabled
    resume.click()
    at.run()
    assert jobs.status(kb, "tune").args == ["tune", "--resume"]
    failed = wait_for_job(kb, "tune")
    assert failed.failed and "FAQ pairs changed" in failed.log_tail
    at.run()
    assert not at.exception
    assert any("Training did not finish" in e.value for e in at.error)
    assert any("FAQ pairs changed" in c.value for c in at.code)


def _publish(kb: Path, run_name: str, faq_hash: str) -> adapters.AdapterInfo:
    weights = kb.parent / f"weights-{run_name}"
    weights.mkdir()
    (weights / "adapter_config.json").write_text("{}")  # the page never loads the weights
    return adapters.publish(
        kb, weights, run_name, base_model="SmolLM2-135M-Instruct", settings={}, data_hash="d", faq_hash=faq_hash,
        n_train=60, n_validation=20, epochs_run=3, best_epoch=2, best_val_loss=0.4321, stopped_early=True,
        train_seconds=150.0, tokens_per_s=110.0, train_loss=[(1, 2.5), (10, 1.2), (20, 0.6)], val_loss=[(1, 0.9), (2, 0.43)])


def test_trained_versions_are_listed_and_one_can_be_made_active(monkeypatch, tmp_path):
    kb = sample_kb(tmp_path, 20)
    from kb.store import Store

    with Store(kb) as store:
        current = store.faq_hash()
    first = _publish(kb, "run-20260101-100000", current)
    second = _publish(kb, "run-20260102-100000", "an-older-faq")  # published last: active
    at = open_page(monkeypatch, kb, "tune")
    assert not at.exception
    table = at.dataframe[0].value
    rows = {r["Version"]: r for r in table.to_dict("records")}
    assert set(rows) == {first.id, second.id}
    assert rows[second.id]["Active"] == "active" and rows[second.id]["FAQ"] == "outdated"
    assert rows[first.id]["Active"] == "" and rows[first.id]["FAQ"] == "up to date"
    assert rows[first.id]["Validation loss"] == pytest.approx(0.432) and rows[first.id]["Training time"] == "2.5 min"
    assert len(at.image) == 2  # each version's loss curve
    labels = [e.label for e in at.expander]
    assert f"{second.id} (active) (outdated)" in labels and first.id in labels
    button(at, "Make active").click()
    at.run()
    assert adapters.active_id(kb) == first.id
    rows = {r["Version"]: r for r in at.dataframe[0].value.to_dict("records")}
    assert rows[first.id]["Active"] == "active" and rows[second.id]["Active"] == ""


# ---------------------------------------------------------------- Evaluate


def test_evaluate_lists_the_question_choices_and_the_paths(monkeypatch, full_kb):
    at = open_page(monkeypatch, full_kb, "evaluate")
    assert not at.exception
    choices = at.radio[0]
    assert choices.options[0].startswith("Made from your knowledge base")
    assert any("own questions" in o for o in choices.options) and any("sample questions" in o for o in choices.options)
    boxes = {c.label: c for c in at.checkbox}
    rag = next(c for label, c in boxes.items() if label.endswith("(rag)"))
    tuned = next(c for label, c in boxes.items() if label.endswith("(tuned)"))
    assert rag.value and not rag.disabled
    assert not tuned.value and tuned.disabled
    assert any("Not available" in c.value and "no fine-tuned model" in c.value for c in at.caption)
    assert "Quick look: only the first 20 questions" in boxes and "Also run the staleness test" in boxes
    assert not button(at, "Run the evaluation").disabled
    assert "No evaluation yet" in texts(at)


def test_an_uploaded_questions_file_is_checked_line_by_line(monkeypatch, full_kb):
    at = open_page(monkeypatch, full_kb, "evaluate")
    at.radio[0].set_value("upload").run()  # the choice's key; the options are its words
    assert button(at, "Run the evaluation").disabled  # no file yet
    at.file_uploader[0].upload("mine.jsonl", b'{"question": "When are you open?", "expected": "9 am"}\nnot json\n').run()
    assert not at.exception
    assert any("mine.jsonl line 2 is not valid JSON" in e.value for e in at.error)
    assert button(at, "Run the evaluation").disabled
    good = b'{"question": "When are you open?", "expected": "9 am"}\n{"question": "Who won the World Cup?", "in_scope": false}\n'
    at.file_uploader[0].set_value(("mine.jsonl", good, "application/octet-stream")).run()
    assert any("2 questions read from mine.jsonl" in s.value for s in at.success)
    assert (full_kb / "eval" / "uploaded.jsonl").read_bytes() == good
    assert not button(at, "Run the evaluation").disabled


@pytest.fixture(scope="module")
def report_kb(tmp_path_factory, model_cache):
    """A knowledge base with one finished evaluation report (real models, four questions, rag)."""
    from compare.evaluate import evaluate
    from compare.paths import build
    from rag.questions import EvalQuestion, facts
    from compare.report import write_report
    from kb.settings import Settings
    from kb.store import Store

    kb = sample_kb(tmp_path_factory.mktemp("report"), 8, "price_list.md")
    short = Settings(max_new_tokens=24)
    with Store(kb) as store:
        faq = store.faqs()[0].faq
        asked = [
            EvalQuestion(faq.question, "verbatim", True, faq.answer, facts(faq.answer), faq.question),
            EvalQuestion("What is the price for a Canvas studio apron?", "document", True, "Item: Canvas studio apron; Price: $28.", ["$28"]),
            EvalQuestion("Who won the World Cup in 2018?", "out_of_scope", False),
            EvalQuestion("What is the capital of Australia?", "out_of_scope", False),
        ]
        result = evaluate(asked, build(store, short, ["rag"]), store, short)
    write_report(result, kb / "reports" / REPORT)
    return kb, result


def test_a_finished_evaluation_shows_the_verdict_charts_and_report(monkeypatch, report_kb):
    from compare.verdict import verdict

    kb, result = report_kb
    at = open_page(monkeypatch, kb, "evaluate")
    assert not at.exception
    headline = verdict(result)[0]
    assert headline.startswith("On your 4 questions")
    shown = [m.value.replace("\\", "") for m in at.markdown]
    assert f"#### {headline}" in shown
    assert at.selectbox[0].value == kb / "reports" / REPORT
    pngs = sorted(p.name for p in (kb / "reports" / REPORT).glob("*.png"))
    assert pngs and len(at.image) == len(pngs)
    scores, answers = at.table[0].value, at.dataframe[0].value
    assert list(scores.index)[:3] == ["Questions covered", "Questions not covered", "Fact accuracy"]
    assert "documents (RAG)" in scores.columns and "What it means" in scores.columns
    assert list(answers["Question"]) == [q.question for q in result.questions]
    assert all(a[:1] in "✓✗?" for a in answers["documents (RAG)"])
    download = at.get("download_button")
    assert len(download) == 1 and "Download the report" in download[0].label


def test_an_evaluation_runs_in_the_background_and_stops_keeping_the_last_report(monkeypatch, report_kb):
    kb, _ = report_kb
    at = open_page(monkeypatch, kb, "evaluate")
    for box in at.checkbox:
        if box.label.endswith("(base)") or box.label.startswith("Quick look"):
            box.set_value(not box.value)
    button(at, "Run the evaluation").click()
    at.run()
    try:
        job = jobs.status(kb, "eval")
        assert job.args[:3] == ["eval", "--paths", "rag"]
        assert job.args[3] == "--report" and Path(job.args[4]).parent == kb / "reports"
        assert job.args[5:] == ["--limit", "20"]  # no hidden flag: the run keeps its progress in the knowledge base
        assert at.progress and not [b for b in at.button if b.label == "Run the evaluation"]
        button(at, "Stop").click()
        at.run()
    finally:
        jobs.stop(kb, "eval")
    stopped = wait_for_job(kb, "eval", 60)
    assert stopped.stopped, stopped.log_tail
    at.run()
    assert not at.exception
    assert any("was stopped" in i.value and "answers so far are kept" in i.value for i in at.info)
    assert at.selectbox[0].value == kb / "reports" / REPORT  # the stopped run left no report to show


def test_measured_profiles_are_shown_and_one_click_switches_the_profile(monkeypatch, report_kb, tmp_path):
    from compare.report import write_report
    from compare.result import Profiles
    from compare.results import metric_text
    from kb.settings import Settings

    kb, result = report_kb
    kb = Path(shutil.copytree(kb, tmp_path / "kb"))  # this test changes the settings: never the module's copy
    rag = result.paths["rag"]
    rows = [{"profile": "small", "in_use": True, "model": result.models["rag"], "search_model": "all-MiniLM-L6-v2",
             **{k: rag.value(k) for k in ("fact_accuracy", "fact_accuracy_ci", "refusal_accuracy", "refusal_accuracy_ci",
                                    "wrongly_refused", "wrongly_refused_ci", "latency_p50_ms", "latency_p95_ms")}},
            {"profile": "quality", "in_use": False, "model": "qwen2.5-coder-1.5b-instruct-q4_k_m (llama.cpp, 2 threads)",
             "search_model": "all-mpnet-base-v2", "fact_accuracy": 1.0, "fact_accuracy_ci": [1.0, 1.0],
             "refusal_accuracy": 1.0, "refusal_accuracy_ci": [1.0, 1.0], "wrongly_refused": 0.0,
             "wrongly_refused_ci": None, "latency_p50_ms": 4200.0, "latency_p95_ms": 7000.0}]
    measured = result.model_copy(update={"profiles": Profiles.from_dict({"path": "rag", "n_questions": 4, "rows": rows})})
    write_report(measured, kb / "reports" / "20260103-093000")
    at = open_page(monkeypatch, kb, "evaluate")
    assert not at.exception
    assert any(b.label == "Also measure the quality model profile" for b in at.checkbox)
    [table] = [d.value for d in at.dataframe if "Profile" in d.value.columns]
    assert list(table["Profile"]) == ["the small profile (in use)", "the quality profile"]
    assert list(table["Typical answer time"]) == [metric_text(rag, "latency_p50_ms", "seconds"), "4.2 s"]
    assert table["Right fact in the answer"][1] == "1.00 (1.00–1.00)"
    assert Settings.load(kb).models.model_profile == "small"
    button(at, "Use the quality profile").click()
    at.run()
    assert not at.exception and Settings.load(kb).models.model_profile == "quality"
    assert [b.label for b in at.button if b.label.startswith("Use the ")] == ["Use the small profile"]  # and back
