"""Inbox: the chats where a visitor asked for a person (live handoff). The owner reads the whole
chat, answers, and the visitor sees the reply in the chat window while their page is open; the bot
stays quiet in that chat until the owner hands it back. A reply can be kept as an FAQ answer."""

from __future__ import annotations

import streamlit as st

from kb.bot import BotRecords, Handoff
from kb.inbox import team_reply
from ui.appkit import friendly, kb_dir, local_time, md, settings, store
from ui.places import plural

STATE_WORDS = {"waiting": "waiting for you", "live": "you are answering", "bot": "back with the assistant"}
SENDERS = {"visitor": ("user", "Visitor"), "bot": ("assistant", "Assistant"), "team": ("human", "You")}
REFRESH_S = 3  # how often the open chat looks for the visitor's new messages


def _label(h: Handoff) -> str:
    asked = f" · \u201c{h.question[:60]}\u201d" if h.question else ""
    return f"{STATE_WORDS[h.state].capitalize()} · since {local_time(h.asked_at)}{asked} · chat {h.session[:8]}"


def _send(session: str, text: str, faq_question: str | None) -> None:
    with BotRecords(kb_dir()) as records:
        reply = team_reply(records, store(), settings(), session, text, faq_question)
    st.session_state["inbox_sent"] = "Sent. The visitor sees it in their chat window while their page is open."
    if reply.saved:
        st.session_state["inbox_sent"] += (f" Also saved as the FAQ answer to \u201c{reply.faq_question}\u201d "
                                           f"({reply.saved.status}): the assistant gives it from now on.")


def _hand_back(session: str) -> None:
    with friendly(), BotRecords(kb_dir()) as records:
        records.hand_back(session)
        st.session_state["inbox_sent"] = "Handed back: the assistant answers this visitor again."


st.title("Inbox")
st.write("Visitors who asked for a person. Answer them here: they see your reply in the chat window on your "
         "website while their page is open, and the assistant stays quiet in their chat until you hand it back.")

with friendly(), BotRecords(kb_dir()) as records:
    open_chats = records.handoffs()
if not open_chats:
    st.info("Nobody is waiting for a person. When a visitor presses **Chat with a person** in the chat window, their "
            "chat appears here, and your lead webhook (Widget page) is told at once.")
    st.stop()

waiting = sum(h.state == "waiting" for h in open_chats)
st.caption(f"{plural(waiting, 'visitor')} waiting, {plural(len(open_chats) - waiting, 'chat')} you are answering.")
by_session = {h.session: h for h in open_chats}
session = st.selectbox("Chat", list(by_session), format_func=lambda s: _label(by_session[s]), key="inbox_chat")
chosen = by_session[session]


@st.fragment(run_every=REFRESH_S)
def conversation() -> None:
    """The chat so far, refreshed every few seconds so the visitor's new messages show up."""
    with friendly(), BotRecords(kb_dir()) as records:
        items = records.conversation(session)
    with st.container(height=420, border=True):
        for item in items:
            role, who = SENDERS[item["sender"]]
            with st.chat_message(role):
                st.caption(f"{who} · {local_time(item['at'])}")
                st.markdown(md(item["text"]))
                if item.get("searched"):  # a follow-up: what the assistant understood it as
                    st.caption(f"The assistant searched your documents for: {md(item['searched'])}")
    st.session_state["inbox_last_question"] = next(
        (i["text"] for i in reversed(items) if i["sender"] == "visitor"), chosen.question)


conversation()
if st.session_state.get("inbox_sent"):
    st.success(st.session_state.pop("inbox_sent"))

with st.form("inbox_reply", clear_on_submit=True):
    text = st.text_area("Your reply", placeholder="Write your answer to the visitor...", max_chars=4000)
    keep = st.checkbox("Also save this reply as the FAQ answer to the visitor's question, so the assistant gives it "
                       "from now on", key="inbox_keep")
    question = st.text_input("The question, as customers would ask it",
                             st.session_state.get("inbox_last_question") or chosen.question,
                             help="Used only when the box above is ticked.")
    sent = st.form_submit_button("Send", type="primary")
if sent:
    with friendly():
        _send(session, text, question if keep else None)
        st.rerun()
st.button("Hand back to the assistant", on_click=_hand_back, args=(session,),
          help="The assistant answers this visitor's next questions again.")
