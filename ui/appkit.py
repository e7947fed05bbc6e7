"""What the app's pages share: the knowledge base, settings, the answer paths (models loaded once per
app process), and plain-language error messages. Pages stay thin: the logic lives in the library
(kb, rag, tuning, compare, ui.jobs), as for the CLI and the API.

The knowledge base folder comes from $KBCHAT_HOME (`kbchat ui` sets it from --kb).
"""

from __future__ import annotations

import logging
import os
import re
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Callable

import streamlit as st

from compare.paths import DESCRIPTIONS
from kb.errors import KbchatError
from kb.settings import Settings
from kb.store import Store

log = logging.getLogger("kbchat.app")


def kb_dir() -> Path:
    """The knowledge base folder ($KBCHAT_HOME: a folder or a postgresql:// address, kb.location)."""
    from kb.location import resolve

    return resolve(os.environ.get("KBCHAT_HOME", "kbchat_data")).resolve()


@st.cache_resource(show_spinner=False)
def _store(folder: str) -> Store:
    return Store(folder)  # created empty on first use: the Knowledge page is where documents come in


def store() -> Store:
    return _store(str(kb_dir()))


def settings() -> Settings:
    """The settings as saved now (read on every run, so a change anywhere shows at once)."""
    return Settings.load(kb_dir())


def require_password() -> None:
    """On an app other computers can reach (kbchat ui --host), show only a password form until the
    admin token or the app password is given in this browser tab."""
    import time

    from kb.bot import BotRecords

    if not os.environ.get("KBCHAT_APP_LOCKED") or st.session_state.get("kbchat_unlocked"):
        return
    st.title("kbchat")
    st.write("This app can be reached from other computers, so it asks for a password first.")
    with st.form("kbchat_password"):
        given = st.text_input("Your admin token or app password", type="password")
        submitted = st.form_submit_button("Open the app", type="primary")
    st.caption("The admin token was shown when the chatbot's keys were made (kbchat keys --rotate admin makes a new "
               "one); set an app password with: kbchat keys --app-password")
    if submitted:
        with friendly():
            store()  # the knowledge base exists before its keys are read
            with BotRecords(kb_dir()) as records:
                if records.opens_app(given):
                    st.session_state["kbchat_unlocked"] = True
                    st.rerun()
            time.sleep(1)  # a wrong guess costs time: guessing many is slow
            st.error("That is not the admin token or the app password. Try again.")
    st.stop()


@st.cache_resource(show_spinner=False)
def _live(folder: str):
    from compare.live import LivePaths

    return LivePaths(_store(folder))


def retriever():
    """The search index of this knowledge base: one object for the Knowledge page and the answer
    paths, so passages added on one page are not embedded again for the other."""
    return _live(str(kb_dir())).retriever()


def paths():
    """Every answer path that can run, sharing one copy of each model; rebuilt when the settings or
    the active fine-tuned model change (compare.live, as for the website's API)."""
    with st.spinner("Getting the models ready..."):
        return _live(str(kb_dir())).paths()


_MD_SPECIAL = re.compile(r"([\\`*_$<>\[\]|~#])")


def md(text) -> str:
    """Text shown literally where Streamlit renders Markdown: a price like "$25 ... $40" must not
    turn into a formula, nor a document's `**` or <b> into formatting.

    >>> md("$25 *each*")
    '\\\\$25 \\\\*each\\\\*'
    """
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def local_time(iso) -> str:
    """'2026-03-01T09:30:00+00:00' (or ...Z) -> '2026-03-01 10:30' in this computer's time zone."""
    try:
        return datetime.fromisoformat(str(iso).replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return str(iso or "")[:16].replace("T", " ")


def path_words(name: str, title: bool = False) -> str:
    """"answers from your documents (RAG)"; with title=True, "Answers from your documents (RAG)"."""
    words = DESCRIPTIONS.get(name, name)
    return words[:1].upper() + words[1:] if title else words


@contextmanager
def friendly():
    """Show problems as a plain message, never a traceback: what went wrong and what to do."""
    try:
        yield
    except KbchatError as e:
        st.error(str(e))
    except Exception as e:  # noqa: BLE001 - the owner gets one line; the log gets the details
        log.exception("app error")
        st.error(f"Something went wrong: {type(e).__name__}: {str(e)[:300]}. Try again; if it keeps happening, "
                 "run the same step with the kbchat command line to see more.")


def job_panel(kb: Path, name: str, was_running: bool, while_running: Callable, when_ended: Callable) -> None:
    """A background job's live part of a page (ui.jobs): `while_running(job)` refreshes every 2 s
    while it runs, so the rest of the page stays usable; when it ends the whole page reruns once,
    and `when_ended(job)` shows how it ended."""
    from ui import jobs

    @st.fragment(run_every=2 if was_running else None)
    def part() -> None:
        job = jobs.status(kb, name)
        running = job is not None and job.running
        if was_running and not running:
            st.rerun()  # the whole page: its buttons, and what the job made
        if running:
            while_running(job)
        elif job is not None:
            when_ended(job)

    part()


def job_failed(job, message: str, what: str) -> None:
    """A job that ended with an error: the plain message, and its last lines to look at."""
    st.error(message)
    with st.expander(f"What {what} printed (last lines)"):
        st.code(job.log_tail or "(nothing was printed)", language=None)


def waiting_for_person() -> int:
    """How many visitors wait for a person to answer them (the Inbox); 0 when there is no chat yet."""
    from kb.bot import BotRecords

    try:
        with BotRecords(kb_dir()) as records:
            return sum(h.state == "waiting" for h in records.handoffs())
    except KbchatError:
        return 0


def need_documents() -> bool:
    """True when the knowledge base has documents; else says where to add them."""
    sources, _ = store().count()
    if sources:
        return True
    st.info("Your knowledge base is empty. Add your FAQ, price list or other documents on the **Knowledge** page first.")
    return False
