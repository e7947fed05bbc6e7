"""Ask and compare: one question, every answer path side by side, each answer with its sources,
timing and how it was made; the owner rates an answer or fixes it (the fix becomes an FAQ answer).

The last question's answers live in st.session_state["ask"], so the buttons under them (thumbs,
fix) rerun the page without asking again. In conversation mode each question continues a chat
(st.session_state["ask_chat"]: the earlier questions with the first path's answers), and every path
reads that same chat, so the comparison stays fair.
"""

from __future__ import annotations

import re

import streamlit as st

from kb.records import METHOD_WORDS, Answer, Step, Turn
from rag.prompts import too_long
from ui import appkit
from ui.places import duration, place, writing_speed

_CITE = re.compile(r"\s*\[\d+\]")
N_EXAMPLES = 3


def why_unavailable(name: str, reason: str) -> str:
    """'The fine-tuned model: not trained yet - train one on the **Fine-tune** page.'"""
    label = appkit.path_words(name, title=True)
    if "no fine-tuned model" in reason.lower():
        return f"{appkit.md(label)}: not trained yet — train one on the **Fine-tune** page."
    return f"{appkit.md(label)}: {appkit.md(reason)}"


def text_pieces(stream, into: dict, doing=None):
    """The text pieces of a path's stream, escaped for st.write_stream; the final Answer goes
    into `into["answer"]`, and what the path is doing before its words into `doing` (st.empty)."""
    for item in stream:
        if isinstance(item, Answer):
            into["answer"] = item
        elif isinstance(item, Step):
            if doing is not None:
                doing.caption(item.words)
        elif item:
            if doing is not None:
                doing.empty()
                doing = None
            yield appkit.md(item)


# -- state -------------------------------------------------------------------------------------
def _state() -> dict | None:
    return st.session_state.get("ask")


def _pick_example(question: str) -> None:
    st.session_state["ask_box"] = question
    st.session_state["ask_now"] = question


def _rate(name: str, helpful: bool) -> None:
    from kb.bot import OWNER_SESSION, BotRecords

    state = _state()
    answer = state["answers"][name]
    with appkit.friendly(), BotRecords(appkit.kb_dir()) as records:
        if name not in state["logged"]:
            state["logged"][name] = records.log(OWNER_SESSION, answer)
        records.feedback(state["logged"][name], OWNER_SESSION, helpful)
        state["rated"][name] = helpful


def _save_fix(name: str, corrected: str) -> None:
    from kb.corrections import add_answer, competing

    state = _state()
    with appkit.friendly():
        with st.spinner("Saving your answer and adding it to the knowledge base..."):
            add_answer(appkit.store(), appkit.settings(), state["question"], corrected)
        state["fixed"][name] = [place(c.source, c.location) for c in competing(appkit.store(), state["question"])]


# -- one answer --------------------------------------------------------------------------------
def show_details(name: str, answer: Answer) -> None:
    """Everything under an answer's text: badges, notes, sources, rating, fix."""
    state = _state()
    badges = []
    if answer.refused:
        badges.append(":orange-badge[Declined: your documents don't cover this]")
    if answer.total_ms > 0:
        badges.append(f":gray-badge[{duration(answer.total_ms)}]")
    if speed := writing_speed(answer.n_tokens, answer.tokens_per_s):
        badges.append(f":gray-badge[{speed}]")
    if badges:
        st.markdown(" ".join(badges))
    how = METHOD_WORDS.get(answer.method, answer.method)
    if answer.method in ("faq", "generated", "quoted", "refused"):  # a path that searched the documents
        how += f" · best match with your documents {answer.confidence:.0%}"
    if answer.model:
        how += f" · model: {answer.model}"
    st.caption(f"How: {appkit.md(how)}")
    if answer.searched and answer.searched != answer.question:
        st.caption(f"A follow-up: searched your documents for \"{appkit.md(answer.searched)}\"")
    if answer.why:
        st.caption(f"Why this answer? {appkit.md(answer.why)}")
    for sentence in answer.held_back:
        st.caption(f"Left out: \"{appkit.md(sentence)}\"")
    for note in answer.notes:
        st.warning(appkit.md(note), icon=":material/warning:")
    for c in answer.citations:
        with st.expander(appkit.md(f"[{c.n}] {place(c.source, c.location)}")):
            st.text(c.snippet)

    qid = state["id"]
    rated = state["rated"].get(name)
    up, down = st.columns(2)
    up.button("Helpful", icon=":material/thumb_up:", key=f"up-{name}-{qid}", on_click=_rate, args=(name, True),
              disabled=rated is True)
    down.button("Not helpful", icon=":material/thumb_down:", key=f"down-{name}-{qid}", on_click=_rate,
                args=(name, False), disabled=rated is False)
    if rated is not None:
        st.caption("Thanks: recorded as " + ("helpful." if rated else "not helpful. You can fix it below."))

    with st.expander("Fix this answer", expanded=name in state["fixed"]):
        if name in state["fixed"]:
            st.success("Saved as your own FAQ answer. Answers from your documents (RAG) use it from now on; "
                       "the next fine-tune learns it too.")
            if state["fixed"][name]:
                st.info("Your FAQ also answers this exact question in "
                        + appkit.md(", ".join(state["fixed"][name]))
                        + ". The chatbot gives your new answer; change or remove that row too when you can "
                        "(then add the file again on the Knowledge page), so fine-tuning does not learn both.")
        with st.form(f"fix-{name}-{qid}"):
            draft = "" if answer.refused else _CITE.sub("", answer.text).strip()
            corrected = st.text_area("The answer customers should get", value=draft, key=f"fix-text-{name}-{qid}",
                                     placeholder="Write the answer as you would give it to a customer.")
            if st.form_submit_button("Save this answer"):
                _save_fix(name, corrected)
                if name in state["fixed"]:
                    st.rerun()  # show the confirmation above the form


def ask(question: str, chosen: list, history: list[Turn]) -> None:
    """Stream every chosen path's answer into its own column and keep the answers; in conversation
    mode every path reads the same chat so far (`history`)."""
    state = {"id": st.session_state.get("ask_count", 0) + 1, "question": question, "answers": {},
             "logged": {}, "rated": {}, "fixed": {}}
    st.session_state["ask_count"] = state["id"]
    st.session_state["ask"] = state
    st.markdown(f"**Question:** {appkit.md(question)}")
    for column, path in zip(st.columns(len(chosen)), chosen):
        with column:
            st.subheader(appkit.path_words(path.name, title=True))
            got: dict = {}
            doing = st.empty()
            with appkit.friendly(), st.spinner("Answering..."):
                st.write_stream(text_pieces(path.stream(question, history, steps=True), got, doing))
            doing.empty()
            if "answer" in got:
                state["answers"][path.name] = got["answer"]
                if not got["answer"].text:
                    st.caption("(The model wrote nothing.)")
                show_details(path.name, got["answer"])


def show_last() -> None:
    state = _state()
    names = list(state["answers"])
    if not names:
        return
    st.markdown(f"**Question:** {appkit.md(state['question'])}")
    for column, name in zip(st.columns(len(names)), names):
        with column:
            answer = state["answers"][name]
            st.subheader(appkit.path_words(name, title=True))
            st.markdown(appkit.md(answer.text) if answer.text else "_(The model wrote nothing.)_")
            show_details(name, answer)


# -- the page ----------------------------------------------------------------------------------
st.title("Ask and compare")
st.write("Ask what a customer would ask. Each way of answering replies side by side, with the documents "
         "it used, so you can see which one to trust.")
if not appkit.need_documents():
    st.stop()

paths = None
with appkit.friendly():
    paths = appkit.paths()
if paths is None:
    st.stop()

names = paths.names
selected = st.multiselect("Show answers from", names, default=names, format_func=appkit.path_words,
                          key="ask-paths-" + ",".join(names))
for name, reason in paths.unavailable.items():
    st.caption(why_unavailable(name, reason))

examples = [c.faq.question for c in appkit.store().faqs()[:N_EXAMPLES]]
if examples:
    st.caption("Try a question from your FAQ:")
    for column, (i, example) in zip(st.columns(len(examples)), enumerate(examples)):
        column.button(appkit.md(example), key=f"example-{i}", on_click=_pick_example, args=(example,))

conversation = st.toggle("Conversation: each question follows on from the ones before (\"how much is it?\")",
                         key="ask_chat_on", help="As a visitor chats on your website: the answers read the chat so "
                         "far. Every way of answering reads the same chat (your questions and the first column's "
                         "answers), so they compare fairly.")
chat: list[Turn] = st.session_state.setdefault("ask_chat", []) if conversation else []
if conversation and chat:
    with st.container(border=True):
        st.caption("The chat so far")
        for turn in chat[-6:]:
            st.markdown(f"**You:** {appkit.md(turn.question)}  \n{appkit.md(turn.answer)}")
        st.button("Start a new conversation", key="ask_chat_new", on_click=lambda: st.session_state.update(ask_chat=[]))

limit = appkit.settings().answers.max_question_chars
with st.form("ask-form"):
    typed = st.text_input("Your question", key="ask_box", placeholder="e.g. When are you open on Saturday?",
                          max_chars=limit, help=f"Up to {limit:,} characters, as in the chat on your website.")
    submitted = st.form_submit_button("Ask", type="primary")

question = st.session_state.pop("ask_now", None) or (typed.strip() if submitted else "")
if submitted and not question:
    st.warning("Type a question first, as a customer would ask it.")
chosen = [p for p in paths.available if p.name in selected]
if question and (problem := too_long(question, appkit.settings())):
    st.warning(problem)  # the sentence a visitor gets for the same question
elif question and not chosen:
    st.warning("Choose at least one way of answering above.")
elif question:
    ask(question, chosen, list(chat))
    first = next(iter(_state()["answers"].values()), None)
    if conversation and first is not None:
        chat.append(Turn(question, first.text, first.searched))
elif _state():
    show_last()
