"""Evaluate: ask every answer path the same questions in the background (`kbchat eval`), watch it go,
and read the report: the verdict, the scores in plain words, the charts and every answer side by side.

The run is a job (ui.jobs, running compare.run) that writes a report folder under `reports/`; the
live part reads the progress the run keeps in the knowledge base (compare.run.read_progress) every
2 seconds in a fragment. A stopped run keeps its answers and picks up
where it stopped when it is run again with the same choices.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from compare.paths import availability
from compare.charts import charts
from compare.result import EvalResult
from compare.results import (CHART_CAPTIONS, CHARTS, KIND_WORDS, METRICS, PROFILE_WORDS, SHORT_WORDS, metric_text,
                             profile_models, profile_rows)
from compare.run import progress_file, read_progress
from compare.verdict import verdict
from kb.errors import KbchatError
from kb.setting_groups import PROFILES
from kb.settings import Settings
from rag import questions as question_sets
from ui import appkit, jobs
from ui.appkit import local_time, md

JOB = "eval"
SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "eval_questions.jsonl"
QUICK = 20
CHOICES = {
    "kb": "Made from your knowledge base: your FAQ questions, reworded ones, questions from your documents "
          "and questions your documents do not cover",
    "upload": "My own questions (a .jsonl file)",
    "sample": "The sample questions (for the sample pottery studio)",
}
MARKS = {True: "✓", False: "✗", None: "?"}


# ---------------------------------------------------------------- choosing and running


def choose_questions(kb: Path) -> list[str] | None:
    """The question file arguments for `kbchat eval` ([] for the knowledge base), or None when the
    choice cannot run yet."""
    st.subheader("1. The questions")
    options = [k for k in CHOICES if k != "sample" or SAMPLE.exists()]
    choice = st.radio("Which questions should every path answer?", options, format_func=CHOICES.get, key="eval_questions")
    if choice == "kb":
        with appkit.friendly():
            n = len(question_sets.from_knowledge_base(appkit.store()))
            st.caption(f"{n} questions, each with the answer your documents give, so every answer can be checked.")
            return []
        return None
    if choice == "sample":
        st.caption(f"{len(question_sets.load(SAMPLE))} questions about the sample pottery studio: useful only when "
                   "your knowledge base holds the sample documents.")
        return [str(SAMPLE)]
    saved = kb / "eval" / "uploaded.jsonl"
    st.caption('One question per line, like {"question": "When are you open?", "expected": "9 am"}. '
               '"expected" is the fact a right answer must contain; add "in_scope": false for questions '
               "the bot should politely decline.")
    upload = st.file_uploader("Your questions file", type=["jsonl"], key="eval_upload")
    if upload is not None:
        with tempfile.TemporaryDirectory() as tmp:
            candidate = Path(tmp) / Path(upload.name).name  # messages name the owner's file, not ours
            candidate.write_bytes(upload.getvalue())
            try:
                loaded = question_sets.load(candidate)
            except KbchatError as e:
                st.error(f"This file cannot be used: {e}")
                return None
            saved.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(candidate, saved)
        st.success(f"{len(loaded)} questions read from {upload.name}.")
        return [str(saved)]
    if saved.exists():
        try:
            st.caption(f"Using the file you uploaded before ({len(question_sets.load(saved))} questions); "
                       "upload another to replace it.")
            return [str(saved)]
        except KbchatError:
            pass
    return None


def choose_paths() -> list[str]:
    st.subheader("2. The answer paths")
    chosen = []
    for name, why in availability(appkit.store()).items():
        words = appkit.path_words(name)
        label = f"{words[:1].upper()}{words[1:]} ({name})"
        if st.checkbox(label, value=why is None, disabled=why is not None, key=f"eval_path_{name}"):
            chosen.append(name)
        if why:
            st.caption(f"Not available: {why}")
    return chosen


def run_controls(kb: Path, files: list[str] | None, names: list[str]) -> None:
    st.subheader("3. Run")
    quick = st.checkbox(f"Quick look: only the first {QUICK} questions", key="eval_quick",
                        help="A rough answer in a few minutes; the full set gives surer numbers.")
    stale = st.checkbox("Also run the staleness test", key="eval_staleness")
    st.caption("Staleness test: when you change a price, which paths notice at once and which keep the old one. "
               "It changes one price on a copy of your knowledge base; yours is not touched.")
    other = [p for p in PROFILES if p != appkit.settings().profile_in_use]
    profiles = st.checkbox(f"Also measure the {' and '.join(other)} model profile", key="eval_profiles")
    st.caption("Model profiles: the quality profile gives better answers and needs more time per answer; the small "
               "one is fast and light. This runs the answers from your documents again with the other profile's "
               "models, on a copy of your knowledge base, so you can see both on this machine.")
    job = jobs.status(kb, JOB)
    if job is not None and job.running:
        return
    ready = files is not None and bool(names)
    if not names:
        st.caption("Choose at least one answer path.")
    if st.button("Run the evaluation", type="primary", disabled=not ready, key="eval_run"):
        report_dir = kb / "reports" / time.strftime("%Y%m%d-%H%M%S")
        progress_file(kb).unlink(missing_ok=True)  # the last run's numbers would show until its first answer
        args = ["eval", *files, "--paths", ",".join(names), "--report", str(report_dir),
                *(["--staleness"] if stale else []),
                *(["--profiles"] if profiles else []),
                *(["--limit", str(QUICK)] if quick else [])]
        with appkit.friendly():
            jobs.start(kb, JOB, args)
            st.rerun()


def live(kb: Path, was_running: bool) -> None:
    """The run's state; refreshes itself every 2 s while a run goes on."""

    def running(job) -> None:
        _show_progress(kb)
        if st.button("Stop", key="eval_stop", help="The answers so far are kept: run again with the same "
                                                  "choices and it picks up where it stopped."):
            jobs.stop(kb, JOB)
            st.info("Stopping… the answers so far are kept.")

    def ended(job) -> None:
        if job.stopped:
            st.info("The last evaluation was stopped. The answers so far are kept: run it again with the same "
                    "choices and it picks up where it stopped.")
        elif job.exit_code == 0:
            st.success("The evaluation finished: its report is below.")
        elif job.failed:
            appkit.job_failed(job, "The last evaluation did not finish. The lines below say why.", "the evaluation")

    appkit.job_panel(kb, JOB, was_running, running, ended)


def _show_progress(kb: Path) -> None:
    p = read_progress(kb)
    if p is None:
        st.progress(0.0, text="Loading the models and preparing the questions…")
        return
    share = p.done / p.total if p.total else 0.0
    if p.stage == "profiles":
        st.progress(share, text=f"All answers in; now the other model profile, on a copy: {p.done} of {p.total} answers")
        return
    if p.stage == "staleness":
        st.progress(1.0, text="All answers in; now the staleness test: changing a price on a copy and asking again…")
        return
    now = f" · now: {appkit.path_words(p.path)}" if p.path else ""
    st.progress(share, text=f"{p.done} of {p.total} answers{now}")


# ---------------------------------------------------------------- the results


def results(kb: Path) -> None:
    st.subheader("Results")
    folders = _reports(kb)
    if not folders:
        st.caption("No evaluation yet: run one above and its report appears here.")
        return
    folder = st.selectbox("Report", folders, format_func=_when, key="eval_report",
                          help="The newest first; older reports stay for comparison.")
    try:
        result = EvalResult.from_dict(json.loads((folder / "results.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, KbchatError) as e:
        st.error(f"This report cannot be read ({e}). Run the evaluation again.")
        return
    with appkit.friendly():
        show_verdict(result)
        show_scores(result)
        show_charts(folder, result)
        show_staleness(result)
        show_profiles(result)
        show_questions(result)
        report = folder / "report.html"
        if report.exists():
            st.download_button("Download the report (one HTML file you can open or email)", report.read_bytes(),
                               file_name=f"kbchat-report-{folder.name}.html", mime="text/html", key="eval_download")


def _reports(kb: Path) -> list[Path]:
    """Report folders with results, newest first (a stopped run leaves an empty one)."""
    root = kb / "reports"
    found = [p for p in root.iterdir() if (p / "results.json").exists()] if root.is_dir() else []
    return sorted(found, key=lambda p: p.name, reverse=True)


def _when(folder: Path) -> str:
    try:
        return datetime.strptime(folder.name, "%Y%m%d-%H%M%S").strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return folder.name


def show_verdict(result: EvalResult) -> None:
    head, *rest = verdict(result)
    st.markdown(f"#### {md(head)}")
    for line in rest:
        st.markdown(f"- **{md(line)}**" if line.startswith("Use ") else f"- {md(line)}")
    source = Path(result.questions_file).name if result.questions_file else "made from your knowledge base"
    workers = result.workers or 1
    st.caption(f"{result.n_questions} questions ({source}); evaluated {local_time(result.created_at)}"
               + (f"; {workers} questions answered at a time" if workers > 1 else "") + ".")
    if result.training_overlap.n_in_training:
        st.warning(f"{result.training_overlap.n_in_training} test question(s) were also in the fine-tuned model's training "
                   "data, so its score on them shows memory, not understanding.")
    if result.calibration_overlap.n_calibrated:
        st.warning(f"{result.calibration_overlap.n_calibrated} test question(s) were also used to set this knowledge base's "
                   "thresholds (when to give a curated answer, when to decline), so the answers from your documents "
                   "may look better on them than on new questions.")


def show_scores(result: EvalResult) -> None:
    names = result.evaluated()
    if not names:
        return
    st.markdown("**Scores** (ranges in brackets: where the true value most likely lies, given this many questions)")
    paths = result.paths
    rows = []
    for key, label, _short, explain, how in METRICS:
        cells = {_column(n): metric_text(paths[n], key, how) for n in names}
        if all(c == "–" for c in cells.values()):
            continue
        rows.append({"Measure": label, **cells, "What it means": explain})
    st.table(pd.DataFrame(rows).set_index("Measure"))


def _column(name: str) -> str:
    return SHORT_WORDS.get(name, name)


def show_charts(folder: Path, result: EvalResult) -> None:
    pngs = {n: (folder / f"{n}.png").read_bytes() for n in CHARTS if (folder / f"{n}.png").exists()}
    if not pngs:
        pngs = charts(result)  # a report written without its pictures
    columns = st.columns(2)
    for i, (name, png) in enumerate(pngs.items()):
        columns[i % 2].image(png, caption=CHART_CAPTIONS.get(name, name))


def show_staleness(result: EvalResult) -> None:
    stale = result.staleness
    if stale is None or not stale.paths:
        return
    st.markdown("**When an answer changes (staleness test)**")
    st.write(md(f"On a copy of your knowledge base, the FAQ answer to “{stale.faq_question}” was "
                 f"changed from {stale.old_value} to {stale.new_value}, then every path was asked "
                 f"“{stale.question}”."))
    st.dataframe(pd.DataFrame([{
        "Path": _column(name), "Answer": s.answer,
        "Gave the new value": "yes" if s.says_new else "no",
        "Gave the old value": "yes" if s.says_old else "no",
        "How": s.how,
    } for name, s in stale.paths.items()]), hide_index=True)


def show_profiles(result: EvalResult) -> None:
    rows = profile_rows(result)
    if not rows:
        return
    st.markdown("**Model profiles on this machine** (answers from your documents)")
    table = []
    for r in rows:
        row = {"Profile": PROFILE_WORDS.get(r.profile, r.profile) + (" (in use)" if r.in_use else ""),
               "Models": f"{profile_models(r)}"}
        for key, _label, short, _explain, how in METRICS:
            if key in ("fact_accuracy", "refusal_accuracy", "wrongly_refused", "latency_p50_ms", "latency_p95_ms"):
                row[short] = r.unavailable or metric_text(r, key, how)
        table.append(row)
    st.dataframe(pd.DataFrame(table), hide_index=True)
    st.caption("The profile not in use was measured on a copy of your knowledge base. Switching makes every page, "
               "the widget and the API answer with that profile's models; the search index is rebuilt for it at the "
               "next question, and a fine-tuned model trained on the other profile's model must be trained again.")
    current = appkit.settings().profile_in_use
    for r in rows:
        name = r.profile
        if name in PROFILES and name != current and st.button(f"Use {PROFILE_WORDS[name]}", key=f"eval_use_{name}"):
            with appkit.friendly():
                kb = appkit.kb_dir()
                Settings.load(kb).updated(model_profile=name).save(kb)
                st.toast(f"Now answering with {PROFILE_WORDS[name]}.")
                st.rerun()


def show_questions(result: EvalResult) -> None:
    questions = result.questions
    if not questions:
        return
    names = result.evaluated()
    st.markdown("**Every question, side by side**")
    st.caption("✓ right fact (or, for a question your documents do not cover, politely declined); ✗ wrong; "
               "? could not be checked.")
    only_wrong = st.checkbox("Only questions at least one path got wrong", key="eval_only_wrong")
    rows = []
    for q in questions:
        answers = {n: q.answers[n] for n in names if n in q.answers}
        marks = [answers[n].right if n in answers else None for n in names]
        if only_wrong and False not in marks:
            continue
        row = {"Question": q.question}
        for name, mark in zip(names, marks):
            a = answers.get(name)
            row[_column(name)] = (f"{MARKS.get(mark, '?')} {a.text if a else ''}" + (" (declined)" if a and a.refused else ""))
        row["Your answer"] = q.reference or ("(should decline)" if not q.in_scope else "")
        row["Kind"] = KIND_WORDS.get(q.kind, q.kind)
        rows.append(row)
    wide = {column: st.column_config.TextColumn(width="medium") for column in rows[0]} if rows else None
    st.dataframe(pd.DataFrame(rows), hide_index=True, column_config=wide)


# ---------------------------------------------------------------- the page

st.title("Evaluate")
st.write("Which answer path should you trust? kbchat asks every path the same questions and checks the answers: "
         "did it give the right fact, did it politely decline what your documents do not cover, and how fast was it.")
kb = appkit.kb_dir()
if appkit.need_documents():
    files = choose_questions(kb)
    names = choose_paths()
    job = jobs.status(kb, JOB)
    running = job is not None and job.running
    run_controls(kb, files, names)
    live(kb, running)
results(kb)
