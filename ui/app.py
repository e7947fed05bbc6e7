"""The kbchat app (Streamlit): `kbchat ui`. One page per step of the owner's work."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `streamlit run` does not add the repo

import streamlit as st  # noqa: E402

from kb.location import describe  # noqa: E402
from ui import appkit  # noqa: E402

st.set_page_config(page_title="kbchat", page_icon=":speech_balloon:", layout="wide")
appkit.require_password()  # only when the app is reachable from other computers (kbchat ui --host)
pages = [
    st.Page("views/ask.py", title="Ask and compare", icon=":material/forum:", default=True),
    st.Page("views/knowledge.py", title="Knowledge", icon=":material/library_books:"),
    st.Page("views/tune.py", title="Fine-tune", icon=":material/model_training:"),
    st.Page("views/evaluate.py", title="Evaluate", icon=":material/fact_check:"),
    st.Page("views/widget.py", title="Widget", icon=":material/chat:"),
    st.Page("views/insights.py", title="Insights", icon=":material/insights:"),
    st.Page("views/inbox.py", title="Inbox", icon=":material/support_agent:"),
]
with st.sidebar:
    sources, chunks = appkit.store().count()
    st.caption(f"Knowledge base: `{describe(appkit.kb_dir())}`  \n{sources} documents, {chunks} passages")
    waiting = appkit.waiting_for_person()
    if waiting:
        st.warning(f"{waiting} visitor{'s are' if waiting > 1 else ' is'} waiting for a person: see the **Inbox**.")
st.navigation(pages).run()
