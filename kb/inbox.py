"""The team's side of a live handoff: a reply to a visitor, which can also become the FAQ answer to
the visitor's question (kb.corrections), so the assistant gives it from then on. The app's Inbox
and the admin API both call `team_reply`.

    >>> team_reply(records, store, settings, "session-1", "We open at 9.", "When do you open?")  # doctest: +SKIP
    Reply(message=PersonMessage(...), faq_question='When do you open?', saved=IngestResult(...))
"""

from __future__ import annotations

from dataclasses import dataclass

from kb.bot import BotRecords, PersonMessage
from kb.corrections import add_answer
from kb.ingest import IngestResult
from kb.settings import Settings
from kb.store import Store


@dataclass
class Reply:
    message: PersonMessage
    faq_question: str | None = None  # the question it was kept as the FAQ answer to, tidied
    saved: IngestResult | None = None


def team_reply(records: BotRecords, store: Store, settings: Settings, session: str, text: str,
               save_as_faq: str | None = None) -> Reply:
    """Send the team's reply into the visitor's chat (the chat is then with a person); with
    `save_as_faq`, also keep the reply as the FAQ answer to that question."""
    message = records.add_message(session, "team", text)
    if not save_as_faq:
        return Reply(message)
    question = " ".join(save_as_faq.split())
    return Reply(message, question, add_answer(store, settings, question, text))
