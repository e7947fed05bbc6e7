"""What the app's pages share: the knowledge base, settings, the answer paths (models loaded once per
app process), and plain-language error messages. Pages stay thin: the logic lives in the library
(kb, rag, tuning, compare, ui.jobs), as for the CLI and the API.

The knowledge base folder comes from $KBCHAT_HOME (`kbchat ui` sets it from --kb).
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from compare.paths import DESCRIPTIONS
from kb.errors import KbchatError
from kb.settings import Settings
from kb.store import Store

log = logging.getLogger("kbchat.app")


def kb_dir() -> Path:
    return Path(os.environ.get("KBCHAT_HOME", "kbchat_data")).resolve()


@st.cache_resource(show_spinner=False)
def _store(folder: str) -> Store:
    return Store(folder)  # created empty on first use: the Knowledge page is where documents come in


def store() -> Store:
    return _store(str(kb_dir()))


def settings() -> Settings:
    """The settings as saved now (read on every run, so a change anywhere shows at once)."""
    return Settings.load(kb_dir())


@st.cache_resource(show_spinner="Loading the models (only the first time)...", max_entries=4)
def _paths(folder: str, settings_json: str, adapter: str | None):
    from compare.paths import build

    return build(_store(folder), Settings.from_dict(json.loads(settings_json)))


def paths():
    """Every answer path that can run, sharing one copy of each model; rebuilt when the settings or
    the active fine-tuned model change."""
    from tuning.adapters import active_id

    s = settings()
    return _paths(str(kb_dir()), json.dumps(s.to_dict(), default=list), active_id(kb_dir()))


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


def need_documents() -> bool:
    """True when the knowledge base has documents; else says where to add them."""
    sources, _ = store().count()
    if sources:
        return True
    st.info("Your knowledge base is empty. Add your FAQ, price list or other documents on the **Knowledge** page first.")
    return False
