"""What the bot's records share: their tables, record types, and the database they live in."""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from kb.db import Database
from kb.errors import BadInput, NotFound
from kb.location import describe

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bot_keys (name TEXT PRIMARY KEY, value TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS exchanges (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    session TEXT NOT NULL,
    question TEXT NOT NULL,
    path TEXT NOT NULL,
    answer TEXT NOT NULL,
    method TEXT NOT NULL,
    confidence REAL NOT NULL,
    refused INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    citations TEXT NOT NULL,
    feedback INTEGER,
    why TEXT NOT NULL DEFAULT '',
    searched TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS exchanges_by_time ON exchanges(at);
CREATE TABLE IF NOT EXISTS leads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    session TEXT NOT NULL,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    message TEXT NOT NULL,
    consent INTEGER NOT NULL,
    webhook TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS handoffs (
    session TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    asked_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    question TEXT NOT NULL DEFAULT '',
    webhook TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS person_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    session TEXT NOT NULL,
    sender TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS person_messages_by_session ON person_messages(session, id);
"""
PUBLIC_PREFIX = "pk_"
ADMIN_PREFIX = "adm_"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
OWNER_SESSION = "app"  # the owner trying answers in the app: kept, but never counted as a visitor
RETENTION_EVERY_S = 3600  # the retention setting deletes old records at most this often
LOW_CONFIDENCE = 0.5  # answers below this are listed as content gaps even when not refused
# A handed-off chat: "waiting" (the visitor asked for a person), "live" (the team has answered), or
# "bot" (handed back: the bot answers again). The bot stays quiet while waiting or live.
WITH_PERSON = ("waiting", "live")
MESSAGE_MAX = 4000  # characters in one message to or from the team
MAX_TURNS = 3  # earlier exchanges of a chat the bot reads (rag.followup.MAX_TURNS)


@dataclass(frozen=True)
class Exchange:
    id: int
    at: str
    session: str
    question: str
    path: str
    answer: str
    method: str
    confidence: float
    refused: bool
    latency_ms: float
    citations: list
    feedback: int | None  # 1 helpful, -1 not helpful, None not rated
    why: str = ""  # why the bot answered as it did (rag.decide), for the owner
    searched: str = ""  # what search was given, when the chat's topic was added to a follow-up (rag.followup)


@dataclass(frozen=True)
class Lead:
    id: int
    at: str
    session: str
    name: str
    email: str
    message: str
    consent: bool
    webhook: str  # "", "sent", or what went wrong posting it


@dataclass(frozen=True)
class Handoff:
    session: str
    state: str  # "waiting", "live" or "bot" (see WITH_PERSON)
    asked_at: str
    updated_at: str
    question: str  # what the visitor had asked when they asked for a person ("" if nothing)
    webhook: str  # "", "sent", or what went wrong notifying the owner's webhook

    @property
    def with_person(self) -> bool:
        return self.state in WITH_PERSON


@dataclass(frozen=True)
class PersonMessage:
    """A message in a handed-off chat: from the visitor to the team, or the team's reply."""

    id: int
    at: str
    session: str
    sender: str  # "visitor" or "team"
    text: str


def _exchange(r) -> Exchange:
    return Exchange(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], bool(r[8]), r[9], json.loads(r[10]), r[11], r[12], r[13])


def _lead(r) -> Lead:
    return Lead(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7])


def _handoff(r) -> Handoff:
    return Handoff(*r)


def _message(r) -> PersonMessage:
    return PersonMessage(*r)


def _one_of(values: list[str]) -> tuple[str, tuple]:
    """Placeholders and values for `IN (...)`; no values match nothing (PostgreSQL has no empty IN ())."""
    match = tuple(values) or ("",)  # sessions are never empty strings
    return ",".join("?" * len(match)), match


def _cutoff(days: int) -> str:
    if days < 1:
        raise BadInput(f"Keep visitors' data for at least 1 day, not {days}.")
    return (datetime.now(timezone.utc) - timedelta(days=days)).isoformat(timespec="seconds")


def _nothing_about(session: str | None, email: str | None) -> str:
    who = f"the chat {session!r}" if session else f"the e-mail address {email!r}"
    return f"Nothing is stored about {who}. Check it against the Insights page (conversations and leads)."


def embed_tag(base: str, key: str) -> str:
    """The one line the owner pastes into their web pages."""
    return f'<script src="{base.rstrip("/")}/widget.js" data-bot="{key}" async></script>'


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()  # enough for a long random token


def _scrypt(password: str, salt: bytes) -> str:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1).hex()  # a person's password: slow to guess


class RecordsBase:
    """The database the bot's records live in, and the small SQL helpers each concern uses."""

    def __init__(self, kb_dir: str | os.PathLike):
        if not Database.exists(kb_dir):
            raise NotFound(f"There is no knowledge base at {describe(kb_dir)}. Add documents with: kbchat ingest PATH")
        self.db = Database.open(Path(kb_dir))
        self._lock = self.db.lock
        self.db.script(_SCHEMA)
        # Exchanges logged before answers said why, or what they searched with.
        self.db.add_column("exchanges", "why", "TEXT NOT NULL DEFAULT ''")
        self.db.add_column("exchanges", "searched", "TEXT NOT NULL DEFAULT ''")
        self._retention_ran = -RETENTION_EVERY_S  # keep_for() runs at its first call

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _one(self, sql: str, args: tuple = ()):
        return self.db.execute(sql, args).fetchone()

    def _all(self, sql: str, args: tuple = ()) -> list:
        return self.db.execute(sql, args).fetchall()

    def _write(self, sql: str, args: tuple = ()) -> None:
        self.db.execute(sql, args)
