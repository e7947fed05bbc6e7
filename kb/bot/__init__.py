"""The website chatbot's own records, in the knowledge base's database (kb.db): its keys, every exchange
with a visitor (for the owner's insights), feedback on answers, leads, and the chats a visitor
handed to a person (live handoff: the visitor's and the team's messages while the bot is quiet).

Two keys guard the HTTP API. The bot's public key sits in the owner's web page (`data-bot`), so it
is public by nature: it only lets a page use the chat. The admin token opens the settings,
conversations and leads; only its SHA-256 is stored, so it is shown once, when made.

These tables live beside the documents but do not move the knowledge base's revision: a chat never
makes the search index or an evaluation look out of date.
"""

from __future__ import annotations

from kb.bot.base import (MESSAGE_MAX, OWNER_SESSION, Exchange, Handoff, Lead, PersonMessage, RecordsBase,
                         embed_tag)
from kb.bot.exchanges import Exchanges
from kb.bot.handoffs import Handoffs
from kb.bot.keys import Keys
from kb.bot.leads import Leads
from kb.bot.visitors import VisitorRights

__all__ = ["BotRecords", "Exchange", "Handoff", "Lead", "PersonMessage", "MESSAGE_MAX", "OWNER_SESSION", "embed_tag"]


class BotRecords(Keys, Exchanges, Leads, Handoffs, VisitorRights, RecordsBase):
    """The records of one knowledge base's chatbot, one concern per part (keys, exchanges and
    insights, leads, handoffs, visitors' data rights). Safe to share between the API's threads."""
