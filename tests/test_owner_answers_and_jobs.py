"""The owner's own FAQ answers (written in the app) and the background jobs the app starts."""

from __future__ import annotations

import contextlib
import signal
import time
from pathlib import Path

import pytest
from conftest import sample_kb

from kb import corrections
from kb.errors import BadInput
from kb.settings import Settings
from kb.store import Store
from ui import jobs


def test_an_owner_answer_is_saved_ingested_and_replaced(tmp_path):
    kb = sample_kb(tmp_path, 3)
    with Store(kb) as store:
        first = corrections.add_answer(store, Settings(), "Do you repair bicycles?", "No, only pottery.")
        assert first.status == "added" and first.n_faqs == 1
        corrections.add_answer(store, Settings(), "do you repair bicycles", "No: we only teach pottery.")
        corrections.add_answer(store, Settings(), "Is there Wi-Fi?", "Yes, ask at the desk for the password.")
        assert corrections.answers(kb) == [("do you repair bicycles", "No: we only teach pottery."),
                                           ("Is there Wi-Fi?", "Yes, ask at the desk for the password.")]
        faqs = {c.faq.question: c.faq.answer for c in store.faqs()}
        assert faqs["do you repair bicycles"] == "No: we only teach pottery." and "Do you repair bicycles?" not in faqs
        with pytest.raises(BadInput, match="answer is empty"):
            corrections.add_answer(store, Settings(), "Is there Wi-Fi?", "  ")
        assert len(corrections.answers(kb)) == 2  # nothing half-written


def test_removing_the_owner_answers_from_the_cli_deletes_them_as_the_app_does(tmp_path, monkeypatch):
    """`kbchat remove owner_faq.csv` did not delete the file: the next answer the owner wrote
    brought every removed answer back. The CLI and the Knowledge page now call kb.sources.remove.
    The folder is given as the default `--kb` is, relative to where kbchat runs."""
    from conftest import Cli

    kb = sample_kb(tmp_path, 3)
    with Store(kb) as store:
        corrections.add_answer(store, Settings(), "Do you repair bicycles?", "No, only pottery.")
    monkeypatch.chdir(kb.parent)
    out = Cli(Path(kb.name))("remove", corrections.FILE)
    assert "(1 passage). The copy kbchat kept of it is deleted too." in out.output, out.output
    assert not corrections.path(kb).exists()
    with Store(kb) as store:
        corrections.add_answer(store, Settings(), "Is there Wi-Fi?", "Yes, ask at the desk.")
        owner = [c.faq.question for c in store.faqs() if c.source == str(corrections.path(kb))]
    assert owner == ["Is there Wi-Fi?"] and corrections.answers(kb) == [("Is there Wi-Fi?", "Yes, ask at the desk.")]


def test_an_upload_removed_from_the_cli_is_not_read_again(tmp_path):
    from conftest import Cli

    from kb import sources

    kb = sample_kb(tmp_path, 3)
    with Store(kb) as store:
        results = sources.add_uploads(store, Settings(), [("hours.md", b"# Hours\nWe open at 9 and close at 5.\n"),
                                                          ("..", b"x")])
        assert [r.status for r in results] == ["failed", "added"] and "file name" in results[0].reason
    assert (kb / sources.UPLOADS / "hours.md").exists()
    Cli(kb)("remove", "hours.md")
    assert not (kb / sources.UPLOADS / "hours.md").exists()


def test_a_background_job_runs_reports_and_stops(tmp_path):
    kb = sample_kb(tmp_path, 3)
    assert jobs.status(kb, "sources") is None
    job = jobs.start(kb, "sources", ["sources", "--json"])
    deadline = time.time() + 60
    while jobs.status(kb, "sources").running and time.time() < deadline:
        time.sleep(0.2)
    done = jobs.status(kb, "sources")
    assert job.pid and not done.running and done.exit_code == 0 and "faq.csv" in done.log_tail
    failing = jobs.start(kb, "bad", ["chunks", "no-such-source"])
    while jobs.status(kb, "bad").running:
        time.sleep(0.2)
    assert jobs.status(kb, "bad").failed and "No source named" in jobs.status(kb, "bad").log_tail
    # A long job: refused twice, then stopped as Ctrl-C would, even when started by a process that
    # ignores SIGINT (as one started with `&` by a script does), which its children inherit.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        jobs.start(kb, "slow", ["ask", "--path", "base", "Tell me a very long story about clay."])
    finally:
        signal.signal(signal.SIGINT, previous)
    with pytest.raises(BadInput, match="already running"):
        jobs.start(kb, "slow", ["sources"])
    deadline = time.time() + 120
    while not jobs.status(kb, "slow").log_tail.strip() and time.time() < deadline:
        time.sleep(0.2)  # the model is writing: stop it half-way
    assert jobs.stop(kb, "slow")
    deadline = time.time() + 60
    while jobs.status(kb, "slow").running and time.time() < deadline:
        time.sleep(0.2)
    stopped = jobs.status(kb, "slow")
    assert stopped.exit_code == 130 and stopped.stopped and not stopped.failed and "Stopped" in stopped.log_tail
    assert failing.name == "bad"


@pytest.mark.parametrize("moment", ["while its Python starts", "as soon as it is ready"])
def test_a_stop_at_any_moment_of_a_jobs_start_ends_as_stopped_without_a_traceback(tmp_path, moment):
    kb = sample_kb(tmp_path, 3)
    jobs.start(kb, "early", ["ask", "--path", "base", "Tell me a very long story about clay."])
    if moment == "as soon as it is ready":  # Ctrl-C is on again: the stop lands in the middle of the imports
        deadline = time.time() + 120
        while not (kb / jobs.DIR / "early.ready").exists():
            assert time.time() < deadline and jobs.status(kb, "early").running, jobs.status(kb, "early").log_tail
            time.sleep(0.05)
    assert jobs.stop(kb, "early")
    deadline = time.time() + 120
    while jobs.status(kb, "early").running:
        assert time.time() < deadline, "the job did not stop"
        time.sleep(0.1)
    job = jobs.status(kb, "early")
    assert job.exit_code == 130 and job.stopped and not job.failed, job.log_tail
    assert "Traceback" not in job.log_tail


def test_sigterm_ends_the_app_its_streamlit_and_its_jobs(tmp_path, model_cache):
    import os

    import psutil
    from conftest import free_port, kbchat_command, wait_for_http

    from kb.process import Process

    kb = sample_kb(tmp_path, 3)
    port = free_port()
    server = Process([*kbchat_command(), "--kb", str(kb), "ui", "--port", str(port), "--no-browser"],
                     env={**os.environ, "KBCHAT_CACHE": str(model_cache)})
    app = server.proc
    started: list[psutil.Process] = []
    try:
        wait_for_http(f"http://127.0.0.1:{port}/_stcore/health", server)
        started = psutil.Process(app.pid).children(recursive=True)
        assert any("streamlit" in " ".join(p.cmdline()) for p in started)
        job = jobs.start(kb, "slow", ["ask", "--path", "base", "Tell me a very long story about clay."])
        started.append(psutil.Process(job.pid))
        app.send_signal(signal.SIGTERM)
        assert app.wait(120) == 0, server.output()
        gone, alive = psutil.wait_procs(started, timeout=60)
        assert not alive, [p.cmdline() for p in alive]
        assert jobs.status(kb, "slow").stopped
        assert "Stopped the app's background work: slow." in server.output()
    finally:
        for p in [psutil.Process(app.pid) if app.poll() is None else None, *started]:
            if p is not None:
                with contextlib.suppress(psutil.Error):
                    p.kill()
        server.close()
