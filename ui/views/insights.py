"""Insights: what visitors ask the chatbot on the owner's site, where it falls short (with a form to
write the missing answer into the owner's FAQ), the conversations themselves, and the leads."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from datetime import datetime, timedelta, timezone

import streamlit as st

from kb import corrections
from kb.bot import BotRecords, Lead
from kb.errors import KbchatError
from kb.records import question_key
from kb.signals import INTENTS, words
from ui.appkit import friendly, kb_dir, local_time, md, settings, store
from ui.places import plural, split_uri

PERIODS = {7: "Last 7 days", 30: "Last 30 days", 90: "Last 90 days"}
FEEDBACK = {1: "👍", -1: "👎"}
RECENT = 500  # conversations listed, newest first
_FORMULA = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet runs a cell starting with these as a formula


def _webhook_words(status: str) -> str:
    return {"": "", "sent": "sent"}.get(status, f"not sent: {status}")


def leads_csv(leads: list[Lead]) -> bytes:
    """The leads as a CSV file a spreadsheet opens as is: UTF-8 with a byte-order mark (so Excel
    reads accents right), and a visitor's text never taken for a formula ("=cmd" -> "'=cmd")."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Time", "Name", "Email", "Message", "Agreed to be contacted", "Webhook", "Chat"])
    for lead in leads:
        row = [local_time(lead.at), lead.name, lead.email, lead.message, "yes" if lead.consent else "no",
               _webhook_words(lead.webhook), lead.session]
        writer.writerow(["'" + v if v.startswith(_FORMULA) else v for v in row])
    return out.getvalue().encode("utf-8-sig")


def visitor_data(leads: list[Lead], recent: list) -> None:
    """Export or erase everything stored about one visitor (their rights of access and erasure)."""
    st.subheader("A visitor's data")
    st.write("A visitor may ask what you keep about them, or that you delete it. Find them by the e-mail address "
             "they left, or by their chat.")
    by = st.radio("Find the visitor by", ["e-mail", "chat"], horizontal=True, key="visitor_by",
                  format_func={"e-mail": "The e-mail address of a lead", "chat": "A chat"}.get)
    if by == "e-mail":
        emails = sorted({lead.email.lower() for lead in leads})
        if not emails:
            st.caption("No leads yet, so no e-mail addresses: find the visitor by their chat.")
            return
        who = {"email": st.selectbox("E-mail address", emails, key="visitor_email")}
    else:
        chats: dict[str, str] = {}
        for x in reversed(recent):  # oldest first: a chat is named by its first question
            chats.setdefault(x.session, f"{x.session[:8]} · {local_time(x.at)} · {x.question[:60]}")
        if not chats:
            st.caption("No chats yet.")
            return
        who = {"session": st.selectbox("Chat (its start, when it began, its first question)", list(chats)[::-1],
                                       format_func=chats.get, key="visitor_chat")}
    with friendly(), BotRecords(kb_dir()) as records:
        data = records.visitor_data(**who)
        what = f"{plural(len(data['exchanges']), 'answer')} and {plural(len(data['leads']), 'lead')}"
        st.caption(f"Stored about this visitor: {what}.")
        left, right = st.columns(2)
        name = (who.get("email") or who.get("session", ""))[:40]
        left.download_button("Export (JSON)", json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8"),
                             file_name=f"kbchat-visitor-{re.sub(r'[^A-Za-z0-9._-]', '_', name)}.json",
                             mime="application/json", key="visitor_export", icon=":material/download:")
        sure = right.checkbox(f"Yes, delete these {what} for good", key="visitor_sure")
        if right.button("Erase", disabled=not sure, key="visitor_erase"):
            records.erase_visitor(**who)
            st.session_state.pop("visitor_sure", None)
            st.toast(f"Deleted {what}.")
            st.rerun()


def retention() -> None:
    st.subheader("How long visitors' data is kept")
    current = settings().server.retention_days
    days = st.number_input("Delete conversations and leads older than this many days (0: keep them)", min_value=0,
                           max_value=3650, value=current, step=30, key="retention_days")
    if days == current:
        st.caption("Nothing is deleted automatically." if not current else
                   f"Conversations and leads are deleted {current} days after they were made.")
        return
    if days:
        with BotRecords(kb_dir()) as records:
            going = records.older_than(int(days))
        st.warning(f"Saving deletes {plural(going['exchanges'], 'answer')} and {plural(going['leads'], 'lead')} now "
                   f"(those older than {local_time(going['before'])}), and from then on whatever passes {int(days)} days.")
    else:
        st.info("Saving keeps every conversation and lead until you erase it.")
    if st.button("Save", key="retention_save"):
        with friendly():
            settings().updated(retention_days=int(days)).save(kb_dir())
            if days:
                with BotRecords(kb_dir()) as records:
                    records.forget_older_than(int(days))
            st.rerun()


def source_usage(usage: dict) -> None:
    """Which documents and FAQ entries the answers used, and which were never used."""
    st.subheader("What the answers use")
    if not usage["answers"]:
        st.info("No answers in this period yet.")
        return
    st.write(f"How many of the {usage['answers']} answers in this period cited each document.")
    import pandas as pd

    docs = pd.DataFrame({"Document": [split_uri(d["source"])[0] for d in usage["documents"]],
                         "Answers": [d["answers"] for d in usage["documents"]]})
    st.bar_chart(docs, x="Document", y="Answers", horizontal=True, sort="-Answers",
                 height=max(160, 34 * len(docs)))
    used = [e for e in usage["faq_entries"] if e["answers"]]
    if used:
        with st.expander(f"FAQ entries used ({len(used)} of {len(usage['faq_entries'])})"):
            st.dataframe([{"FAQ question": e["question"], "Answers": e["answers"],
                           "Where": f"{split_uri(e['source'])[0]}, {e['location']}"} for e in used], hide_index=True)
    unused_docs, unused_faq = usage["unused_documents"], usage["unused_faq_entries"]
    if unused_docs or unused_faq:
        st.caption("Never used in this period: visitors did not ask about these, or the chatbot found other "
                   "passages better. Nothing to do unless you expected questions about them.")
        entries = f"{len(unused_faq)} FAQ {'entry' if len(unused_faq) == 1 else 'entries'}"
        with st.expander(f"Never used: {plural(len(unused_docs), 'document')}, {entries}"):
            for uri in unused_docs:
                st.markdown(f"- {md(split_uri(uri)[0])}")
            for question in unused_faq:
                st.markdown(f"- FAQ: {md(question)}")


def lead_signals(signals: list[dict]) -> None:
    """Chats that show buying intent, beside the leads."""
    st.subheader("Lead signals")
    if not signals:
        st.info("No chat in this period asked about prices, booking, opening hours or how to reach you.")
        return
    st.write("Chats whose questions show a visitor close to buying: they asked about prices, booking, opening hours "
             "or how to reach you. Those without a lead are customers who may have left without telling you who "
             "they are: the questions show what they wanted.")
    import pandas as pd

    counts = {words(name).capitalize(): sum(name in c["intents"] for c in signals) for name in INTENTS}
    st.bar_chart(pd.DataFrame({"Intent": list(counts), "Chats": list(counts.values())}), x="Intent", y="Chats",
                 horizontal=True, height=190)
    st.dataframe([{"Last question": local_time(c["last_at"]),
                   "Signals": ", ".join(words(n) for n in sorted(c["intents"], key=list(INTENTS).index)),
                   "What they asked": " / ".join(c["examples"]),
                   "Left a lead": "yes" if c["lead"] else "", "Asked for a person": "yes" if c["asked_for_person"] else "",
                   "Chat": c["session"][:8]} for c in signals], hide_index=True,
                 column_config={"What they asked": st.column_config.TextColumn(width="large")})
    without = sum(not c["lead"] for c in signals)
    st.caption(f"{plural(len(signals), 'chat')} with buying signals; {without} of them left no lead.")


def _answer_form(gap: dict, written: str | None) -> None:
    question = gap["question"]
    why = "declined it" if gap["refused"] else "was unsure of its answer"
    label = f"{'✅ ' if written else ''}{md(' '.join(question.split()))} (asked {gap['count']}×; the chatbot {why})"
    with st.expander(label):
        form_id = hashlib.sha1(question_key(question).encode()).hexdigest()[:12]
        with st.form(f"insights_gap_{form_id}"):
            answer = st.text_area("Write an answer", written or "",
                                  placeholder="The answer as you would give it to a customer.",
                                  help="It is saved in your FAQ (owner_faq.csv in the knowledge base folder): the "
                                       "chatbot gives it to this question from now on, and the next fine-tune learns it.")
            if st.form_submit_button("Save answer"):
                with friendly():
                    corrections.add_answer(store(), settings(), question, answer)
                    st.success("Saved: the chatbot now answers this from your FAQ")


st.title("Insights")
st.write("What visitors ask the chatbot on your website, which questions it could not answer well, "
         "and who left their details.")

days = st.radio("Period", list(PERIODS), index=1, format_func=PERIODS.get, horizontal=True)
try:
    with BotRecords(kb_dir()) as records:
        records.keep_for(settings().server.retention_days)  # the retention setting also runs when the owner looks
        numbers = records.insights(days=days, top=10)
        recent = records.exchanges(limit=RECENT, visitors_only=True)
        leads = records.leads()
        usage = records.usage(days, store().sources(), store().faqs())
        signals = records.lead_signals(days)
except KbchatError as e:
    st.error(str(e))
    st.stop()

if not recent:
    st.info("No conversations yet: put the widget on your site (Widget page).")
    st.page_link("views/widget.py", label="Go to the Widget page", icon=":material/chat:")
else:
    cols = st.columns(5)
    cols[0].metric("Questions", numbers["questions"], help="Questions visitors asked in this period.")
    cols[1].metric("Chats", numbers["sessions"], help="Separate conversations: one visitor's visit.")
    cols[2].metric("Declined", numbers["refused"],
                   help="Questions your documents did not answer: the visitor got your fallback message.")
    cols[3].metric("Helpful 👍", numbers["helpful"], help="Answers visitors marked as helpful.")
    cols[4].metric("Not helpful 👎", numbers["not_helpful"], help="Answers visitors marked as not helpful.")
    if not numbers["questions"]:
        st.info(f"No questions in the last {days} days. Choose a longer period to see older ones.")

    st.subheader("Top questions")
    if numbers["top_questions"]:
        st.dataframe([{"Question": q["question"], "Times asked": q["count"]} for q in numbers["top_questions"]],
                     hide_index=True)

    st.subheader("Content gaps")
    if numbers["content_gaps"]:
        st.write("Questions the chatbot declined or answered without much confidence. Write the answer once: it goes "
                 "into your FAQ and the chatbot gives it from then on.")
        written = {question_key(q): a for q, a in corrections.answers(kb_dir())}
        for gap in numbers["content_gaps"]:
            _answer_form(gap, written.get(question_key(gap["question"])))
    elif numbers["questions"]:
        st.success("No gaps: the chatbot answered every question in this period with confidence.")

    source_usage(usage)

    st.subheader("Recent conversations")
    since = (datetime.now(timezone.utc) - timedelta(days=days)).isoformat(timespec="seconds")
    left, right = st.columns([3, 1])
    find = left.text_input("Find", placeholder="A word in the question or the answer").strip().lower()
    only_declined = right.checkbox("Only declined questions")
    shown = [x for x in recent if x.at >= since and (not only_declined or x.refused)
             and (not find or find in x.question.lower() or find in x.answer.lower())]
    if shown:
        small = st.column_config.TextColumn(width="small")
        st.dataframe([{"Time": local_time(x.at), "Question": x.question, "Answer": x.answer,
                       "Declined": "yes" if x.refused else "", "Feedback": FEEDBACK.get(x.feedback, ""),
                       "Path": x.path, "Chat": x.session[:8]} for x in shown], hide_index=True,
                     column_config={"Question": st.column_config.TextColumn(width="medium"),
                                    "Answer": st.column_config.TextColumn(width="medium"),
                                    "Declined": small, "Feedback": small, "Path": small, "Chat": small})
        more = f" (only the latest {RECENT} are kept in this list)" if len(recent) == RECENT else ""
        st.caption(f"{len(shown)} questions, newest first{more}. Questions with the same Chat come from one visit.")
    else:
        st.info("No conversations match." if find or only_declined else f"No conversations in the last {days} days.")

st.subheader("Leads")
if leads:
    st.write("Visitors who left their name and email in the chat and agreed that you may contact them.")
    st.dataframe([{"Time": local_time(lead.at), "Name": lead.name, "Email": lead.email, "Message": lead.message,
                   "Webhook": _webhook_words(lead.webhook)} for lead in leads], hide_index=True)
    st.download_button("Download as CSV", leads_csv(leads), file_name="kbchat-leads.csv", mime="text/csv",
                       icon=":material/download:")
else:
    st.info("No leads yet: when a visitor leaves their name and email in the chat, they show here.")
if recent:
    lead_signals(signals)

visitor_data(leads, recent)
retention()
