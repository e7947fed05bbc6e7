"""Fine-tune: check the FAQ pairs, train a LoRA adapter in the background (`kbchat tune`), watch it
learn, and choose which trained version the fine-tuned answer paths use.

The training runs as a job (ui.jobs), so the page stays usable and the run goes on if the page is
closed; the live part reads `tuning/progress.json` every 2 seconds in a fragment.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from kb.errors import KbchatError
from kb.files import atomic_write
from tuning import adapters
from tuning.data import FAQ_EXTENSIONS, load_extra_pairs, rated_pairs
from tuning.train import LONG_RUN_S, Progress, TuneSettings, interrupted_runs, prepare
from ui import appkit, jobs
from ui.appkit import local_time, md
from kb.files import safe_name

JOB = "tune"
RATES = [0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005]


EXTRA_DIR = "tuning/extra"  # uploaded extra training files, kept for the job (and a resumed run)


def extra_sources(kb: Path, running: bool) -> dict:
    """More to learn from besides the FAQ: a transcript export or extra FAQ file, and the answers
    visitors rated helpful. Returns {"file": path or None, "rated": bool}."""
    st.markdown("**More to learn from (optional)**")
    folder = kb / EXTRA_DIR
    kept = sorted(folder.glob("*")) if folder.exists() else []
    upload = st.file_uploader(
        "A transcript export of real chats, or an extra questions file", type=[e.lstrip(".") for e in FAQ_EXTENSIONS],
        disabled=running, key="tune_extra_upload",
        help="Chats exported from your help desk or chat tool (one row or object per message, with who wrote it and "
             "the message), or a spreadsheet of questions and answers. Used for fine-tuning only, not for RAG.")
    if upload is not None:
        name = safe_name(upload.name) or "extra.csv"
        folder.mkdir(parents=True, exist_ok=True)
        for old in kept:
            old.unlink()
        atomic_write(folder / name, lambda f: f.write(upload.getvalue()))
        kept = [folder / name]
    file = kept[-1] if kept else None
    if file is not None and upload is None:
        left, right = st.columns([3, 1])
        left.caption(f"Also training on **{md(file.name)}** (uploaded earlier).")
        if right.button("Don't use it", key="tune_extra_drop", disabled=running):
            file.unlink()
            st.rerun()
    helpful = len(rated_pairs(kb))
    rated = st.checkbox(f"Also learn from the {helpful} answers visitors rated helpful in the website chat",
                        value=False, disabled=running or not helpful, key="tune_rated",
                        help="Each visitor question with the answer they marked 👍. Your own corrected answers are "
                             "in your FAQ already, so they are always learned.")
    return {"file": file, "rated": rated and helpful > 0}


def data_check(defaults: TuneSettings, kb: Path, running: bool) -> tuple[bool, dict]:
    """Show what training would learn from; False when there is nothing to train on, and the extra sources."""
    st.subheader("1. Your training data")
    extra = extra_sources(kb, running)
    said: list[str] = []
    try:
        pairs = load_extra_pairs(extra["file"], said) if extra["file"] else []
        if extra["rated"]:
            rated = rated_pairs(appkit.kb_dir())
            said.append(f"Answers visitors rated helpful: {len(rated)} question/answer pairs.")
            pairs += rated
        report, data = prepare(appkit.store(), defaults, pairs or None)
    except KbchatError as e:
        st.warning(str(e))
        return False, extra
    for line in said:
        st.caption(md(line))
    st.write(report.describe()[0])
    for problem in report.problems:
        if problem.kind == "too_few":
            st.warning(f"**Too few questions to fine-tune well.** {problem.message}")
    details = [f"- {p.message}" for p in report.problems if p.kind != "too_few"]
    if details:
        st.markdown("\n".join(md(line) for line in details))
    st.write(f"**{len(data.train)} training examples** (your questions, plus reworded versions of them) and "
             f"**{len(data.validation)} held-out rewordings**: questions the model never trains on, used to check "
             "that it understands new wordings and to stop training when it stops improving.")
    return True, extra


def choose_settings(defaults: TuneSettings, running: bool) -> dict:
    st.subheader("2. Settings")
    st.caption("The defaults suit most FAQs; change them only to experiment.")
    left, right = st.columns(2)
    epochs = left.number_input(
        "Epochs", min_value=1, max_value=50, value=defaults.epochs, step=1, disabled=running)
    left.caption("How many times the model reads all your questions; training stops early when it stops improving.")
    rates = sorted(set(RATES) | {defaults.learning_rate})
    rate = right.select_slider(
        "Learning rate", options=rates, value=defaults.learning_rate, disabled=running,
        format_func=lambda r: f"{r:g}" + (" (default)" if r == defaults.learning_rate else ""))
    right.caption("How big a correction the model makes after each example: too small learns slowly, "
                  "too large garbles what it learned. The default was measured on a sample FAQ.")
    return {"epochs": int(epochs), "learning_rate": float(rate)}


def controls(kb: Path, chosen: dict | None, running: bool, extra: dict | None = None) -> None:
    """Start or resume buttons (Stop lives in the live part, so it is there as soon as a run starts)."""
    st.subheader("3. Train")
    last = next((a for a in reversed(adapters.list_adapters(kb))), None)
    took = f" The last run here took {last.train_seconds / 60:.0f} min." if last is not None else ""
    st.caption("Training runs in the background; you can use the other pages meanwhile. After its first few steps it "
               "says how long it will take on this machine: minutes with the small model profile, longer with the "
               f"quality profile's bigger model.{took} Stop is safe: a stopped run can be resumed. The finished model "
               "is saved as a new version and made active.")
    if running:
        return
    left, right = st.columns(2)
    start = left.button("Start training", type="primary", disabled=chosen is None, key="tune_start")
    resumable = _resumable(kb)
    resume = right.button("Resume the stopped run", disabled=not resumable, key="tune_resume",
                          help="A stopped run keeps what it learned up to its last finished epoch and goes on from there.")
    if start or resume:
        args = ["tune", "--resume"] if resume else [
            "tune", "--epochs", str(chosen["epochs"]), "--lr", f"{chosen['learning_rate']:g}"]
        if not resume and extra and extra["file"] is not None:
            args += ["--extra", str(extra["file"])]
        if not resume and extra and extra["rated"]:
            args.append("--rated")
        with appkit.friendly():
            jobs.start(kb, JOB, args)
            st.rerun()


def live(kb: Path, was_running: bool) -> None:
    """The run's state; refreshes itself every 2 s while a run goes on."""

    def running(job) -> None:
        if st.button("Stop training", key="tune_stop",
                     help="Stops safely; a stopped run can be resumed later from its last finished epoch."):
            jobs.stop(kb, JOB)
            st.info("Stopping… the run saves what it has learned so far; you can resume it later.")
        _show_progress(_progress_of(kb, job))

    def ended(job) -> None:
        progress = _progress_of(kb, job)
        if job.stopped or (progress is not None and progress.status == "stopped"):
            st.info("Training was stopped. Press **Resume the stopped run** to go on from the last finished epoch, "
                    "or start a new run.")
        elif job.failed or (progress is not None and progress.status == "failed"):
            appkit.job_failed(job, "Training did not finish. The lines below say why; fix that (often: more or "
                                   "cleaner FAQ pairs on the Knowledge page) and start again.", "the training")
        elif progress is not None and progress.status == "done":
            st.success(f"The last run finished. {progress.message}")
            last = next(iter(reversed(adapters.list_adapters(kb))), None)
            fit = last.fit() if last is not None else None
            if fit is not None:
                (st.info if fit[1] - fit[0] <= adapters.GAP_SMALL else st.warning)(fit[2])
        if progress is not None and progress.train_loss:
            with st.expander("How the last run learned"):
                _show_progress(progress)

    appkit.job_panel(kb, JOB, was_running, running, ended)


def _progress_of(kb: Path, job) -> Progress | None:
    """This run's progress; None while the run loads the model (the file is still the last run's)."""
    progress = Progress.read(kb)
    file = kb / "tuning" / "progress.json"
    if progress is None or job is None or not file.exists():
        return progress
    return progress if file.stat().st_mtime >= job.started_at - 1 else None


def _show_progress(p: Progress | None) -> None:
    if p is None or not p.total_steps:
        st.progress(0.0, text="Loading the model and preparing your questions…")
        return
    minutes = f" · about {max(1, round(p.eta_s / 60))} min left" if p.eta_s else ""
    if p.status == "training" and p.expected_s is not None:
        (st.warning if p.expected_s > LONG_RUN_S else st.info)(p.message)
    epoch = min(p.epoch + 1, p.epochs) if p.status == "training" else p.epoch
    st.progress(min(p.step / p.total_steps, 1.0),
                text=f"Step {p.step} of {p.total_steps} · epoch {epoch} of {p.epochs}{minutes}")
    if p.train_loss:
        per_epoch = p.total_steps / max(p.epochs, 1)
        rows = [{"step": s, "loss": loss, "questions": "trained on"} for s, loss in p.train_loss]
        rows += [{"step": round(e * per_epoch), "loss": loss, "questions": "held out (reworded)"} for e, loss in p.val_loss]
        st.line_chart(pd.DataFrame(rows), x="step", y="loss", color="questions")
        st.caption("Loss: how far the model's answers are from yours (lower is better). When the held-out line "
                   "stops going down, more training would only memorize, so training stops.")


def _resumable(kb: Path) -> bool:
    return bool(interrupted_runs(kb))


def versions(kb: Path) -> None:
    st.subheader("Trained versions")
    found = adapters.list_adapters(kb)
    if not found:
        st.caption("No fine-tuned model yet: the first finished training run appears here.")
        return
    active = adapters.active_id(kb)
    current = appkit.store().faq_hash()
    st.caption("The **active** version is the one the fine-tuned answer paths use. **Outdated** means your FAQ "
               "changed after it was trained: train again to teach it the changes. Validation loss: how far its "
               "answers to the held-out rewordings were from yours (lower is better).")
    rows = [{
        "Version": a.id,
        "Trained": local_time(a.created_at),
        "Examples": a.n_train,
        "Epochs": a.epochs_run,
        "Validation loss": round(a.best_val_loss, 3),
        "Training time": f"{a.train_seconds / 60:.1f} min",
        "Active": "active" if a.id == active else "",
        "FAQ": "outdated" if a.faq_hash != current else "up to date",
    } for a in reversed(found)]
    st.dataframe(rows, hide_index=True)
    for a in reversed(found):
        label = a.id + (" (active)" if a.id == active else "") + (" (outdated)" if a.faq_hash != current else "")
        with st.expander(label, expanded=a.id == active):
            plot = Path(a.path) / "loss.png"
            if plot.exists():
                st.image(str(plot), caption="Loss during training: lower is better", width=520)
            fit = a.fit()
            if fit is not None:
                st.caption(md(fit[2]))
            if a.id == active:
                st.caption("This version answers on the fine-tuned paths.")
            elif st.button("Make active", key=f"activate_{a.id}"):
                with appkit.friendly():
                    adapters.activate(kb, a.id)
                    st.rerun()


st.title("Fine-tune")
st.write("Fine-tuning teaches the small model your FAQ answers by heart, so it answers from memory instead of "
         "looking them up in your documents. Whether that beats answering from your documents (RAG) is what "
         "the **Evaluate** page measures.")
kb = appkit.kb_dir()
if appkit.need_documents():
    defaults = TuneSettings()
    job = jobs.status(kb, JOB)
    running = job is not None and job.running
    usable, extra = data_check(defaults, kb, running)
    chosen = choose_settings(defaults, running) if usable else None
    controls(kb, chosen, running, extra)
    live(kb, running)
versions(kb)
