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

import dataclasses
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from kb.errors import BadInput, NotFound
from kb.records import Answer, Turn
from kb.db import Database
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


class BotRecords:
    """Keys, exchanges and leads of one knowledge base. Safe to share between the API's threads."""

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

    # -- keys ----------------------------------------------------------------------------------
    def ensure_keys(self) -> str | None:
        """Make the keys on first start. Returns the new admin token (to show once), else None."""
        with self.db.transaction():  # one worker makes them when several start together
            if self.public_key() is None:
                self._set_key("public", PUBLIC_PREFIX + secrets.token_urlsafe(18))
            if self._one("SELECT 1 FROM bot_keys WHERE name = 'admin'") is None:
                return self.rotate_admin_token()
        return None

    def public_key(self) -> str | None:
        row = self._one("SELECT value FROM bot_keys WHERE name = 'public'")
        return row[0] if row else None

    def rotate_public_key(self) -> str:
        """A new public key; the old one stops working at once (update the site's script tag)."""
        key = PUBLIC_PREFIX + secrets.token_urlsafe(18)
        self._set_key("public", key)
        return key

    def rotate_admin_token(self) -> str:
        """A new admin token, returned once; only its hash is kept."""
        token = ADMIN_PREFIX + secrets.token_urlsafe(24)
        self._set_key("admin", _hash(token))
        return token

    def is_public_key(self, key: str | None) -> bool:
        stored = self.public_key()
        return bool(key and stored and hmac.compare_digest(key.encode(), stored.encode()))

    def is_admin_token(self, token: str | None) -> bool:
        row = self._one("SELECT value FROM bot_keys WHERE name = 'admin'")
        return bool(token and row and hmac.compare_digest(_hash(token), row[0]))

    def set_app_password(self, password: str) -> None:
        """The password the app asks for when it is reachable beyond this computer (besides the
        admin token). Kept as a salted scrypt hash."""
        if len(password) < 8:
            raise BadInput("Choose an app password of at least 8 characters.")
        salt = secrets.token_bytes(16)
        self._set_key("app_password", f"{salt.hex()}:{_scrypt(password, salt)}")

    def opens_app(self, password: str | None) -> bool:
        """Whether `password` opens the app: the admin token, or the app password."""
        if not password:
            return False
        if self.is_admin_token(password):
            return True
        row = self._one("SELECT value FROM bot_keys WHERE name = 'app_password'")
        if row is None:
            return False
        salt, digest = row[0].split(":", 1)
        return hmac.compare_digest(_scrypt(password, bytes.fromhex(salt)), digest)

    def _set_key(self, name: str, value: str) -> None:
        self._write("INSERT INTO bot_keys(name, value, created_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE "
                    "SET value = excluded.value, created_at = excluded.created_at", (name, value, _now()))

    # -- exchanges -----------------------------------------------------------------------------
    def log(self, session: str, answer: Answer) -> int:
        """Record one answer given to a visitor; returns its id (for feedback)."""
        citations = [{"n": c.n, "source": c.source, "location": c.location, "chunk_id": c.chunk_id}
                     for c in answer.citations]
        return self.db.insert(
            "INSERT INTO exchanges(at, session, question, path, answer, method, confidence, refused, latency_ms, citations,"
            " why, searched) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (_now(), session, answer.question, answer.path, answer.text, answer.method, float(answer.confidence),
             int(answer.refused), float(answer.total_ms), json.dumps(citations), answer.why,
             answer.searched if answer.searched != answer.question else ""),
        )

    def history(self, session: str, idle_minutes: float, turns: int = MAX_TURNS) -> list[Turn]:
        """The chat's last `turns` exchanges, oldest first, that the bot reads to understand a
        follow-up: none when the chat has been idle for more than `idle_minutes` (it starts fresh),
        and none from before such a pause."""
        rows = self.exchanges(turns, session)  # newest first
        out: list[Turn] = []
        later = datetime.now(timezone.utc)
        for e in rows:
            at = datetime.fromisoformat(e.at)
            if (later - at).total_seconds() > idle_minutes * 60:
                break
            out.insert(0, Turn(e.question, e.answer, e.searched or e.question))
            later = at
        return out

    def feedback(self, exchange_id: int, session: str, helpful: bool) -> None:
        """Thumbs up or down on an answer; only the session that got the answer may rate it."""
        done = self.db.execute("UPDATE exchanges SET feedback = ? WHERE id = ? AND session = ?",
                               (1 if helpful else -1, exchange_id, session)).rowcount
        if not done:
            raise NotFound("There is no such answer in this chat to rate.")

    def exchanges(self, limit: int = 200, session: str | None = None, visitors_only: bool = False) -> list[Exchange]:
        where, args = ("WHERE session = ?", (session,)) if session else ("", ())
        if visitors_only and not session:
            where, args = "WHERE session != ?", (OWNER_SESSION,)
        rows = self._all(f"SELECT * FROM exchanges {where} ORDER BY id DESC LIMIT ?", (*args, limit))
        return [_exchange(r) for r in rows]

    def insights(self, days: int = 30, top: int = 10) -> dict:
        """What visitors ask: the most frequent questions, the ones the bot could not answer or
        answered with low confidence (content gaps: write an FAQ answer for them), and feedback."""
        since = (datetime.now(timezone.utc) - timedelta(days=days)).isoformat(timespec="seconds")
        key = "lower(trim(question))"
        visitors = "at >= ? AND session != ?"  # the owner's own tries in the app are not visitors
        top_rows = self._all(f"SELECT MIN(question), COUNT(*) FROM exchanges WHERE {visitors} GROUP BY {key} "
                             "ORDER BY COUNT(*) DESC, MAX(id) DESC LIMIT ?", (since, OWNER_SESSION, top))
        gaps = self._all(f"SELECT MIN(question), COUNT(*), MAX(refused), MIN(confidence) FROM exchanges "
                         f"WHERE {visitors} AND (refused = 1 OR confidence < ?) GROUP BY {key} "
                         "ORDER BY COUNT(*) DESC, MAX(id) DESC LIMIT ?", (since, OWNER_SESSION, LOW_CONFIDENCE, top))
        totals = self._one("SELECT COUNT(*), COUNT(DISTINCT session), SUM(refused), SUM(CASE WHEN feedback = 1 THEN 1 ELSE 0 END), SUM(CASE WHEN feedback = -1 THEN 1 ELSE 0 END) "
                           f"FROM exchanges WHERE {visitors}", (since, OWNER_SESSION))
        return {
            "days": days,
            "questions": totals[0], "sessions": totals[1], "refused": totals[2] or 0,
            "helpful": totals[3] or 0, "not_helpful": totals[4] or 0,
            "top_questions": [{"question": q, "count": n} for q, n in top_rows],
            "content_gaps": [{"question": q, "count": n, "refused": bool(r), "confidence": round(c, 3)} for q, n, r, c in gaps],
        }

    def usage(self, days: int, sources: list, faqs: list) -> dict:
        """How often each document and each FAQ entry was cited in visitors' answers in the last
        `days` days, and which were never used. `sources` are the store's Sources, `faqs` its FAQ
        Chunks (an entry is found by its chunk id, or by file and row for older exchanges)."""
        since = (datetime.now(timezone.utc) - timedelta(days=days)).isoformat(timespec="seconds")
        rows = self._all("SELECT citations FROM exchanges WHERE at >= ? AND session != ?", (since, OWNER_SESSION))
        by_source: dict[str, int] = {}
        by_entry: dict[str, int] = {}
        entry_of = {(c.source, c.location): c.id for c in faqs}
        for (cited,) in rows:
            seen_sources, seen_entries = set(), set()
            for c in json.loads(cited):
                seen_sources.add(c["source"])
                entry = c.get("chunk_id") or entry_of.get((c["source"], c["location"]))
                if entry:
                    seen_entries.add(entry)
            for uri in seen_sources:
                by_source[uri] = by_source.get(uri, 0) + 1
            for entry in seen_entries:
                by_entry[entry] = by_entry.get(entry, 0) + 1
        documents = sorted(({"source": x.uri, "title": x.title, "kind": x.kind, "answers": by_source.get(x.uri, 0)}
                            for x in sources), key=lambda d: (-d["answers"], d["source"]))
        entries = sorted(({"source": c.source, "location": c.location, "question": c.faq.question,
                           "answers": by_entry.get(c.id, 0)} for c in faqs),
                         key=lambda d: (-d["answers"], d["source"], d["location"]))
        return {"days": days, "answers": len(rows), "documents": documents, "faq_entries": entries,
                "unused_documents": [d["source"] for d in documents if not d["answers"]],
                "unused_faq_entries": [d["question"] for d in entries if not d["answers"]]}

    def lead_signals(self, days: int = 30, limit: int = 100) -> list[dict]:
        """Chats whose questions show buying intent (kb.signals): prices, booking, opening hours,
        contact. Strongest first (most kinds of intent, then most recent), each with whether the
        visitor also left a lead or asked for a person."""
        from kb.signals import intents

        since = (datetime.now(timezone.utc) - timedelta(days=days)).isoformat(timespec="seconds")
        rows = self._all("SELECT session, at, question FROM exchanges WHERE at >= ? AND session != ? ORDER BY id",
                         (since, OWNER_SESSION))
        chats: dict[str, dict] = {}
        for session, at, question in rows:
            found = intents(question)
            chat = chats.setdefault(session, {"session": session, "first_at": at, "last_at": at, "questions": 0,
                                              "intents": {}, "examples": []})
            chat["last_at"], chat["questions"] = at, chat["questions"] + 1
            for name in found:
                chat["intents"][name] = chat["intents"].get(name, 0) + 1
            if found and len(chat["examples"]) < 3:
                chat["examples"].append(question)
        leads = {r[0] for r in self._all("SELECT DISTINCT session FROM leads")}
        handed = {r[0] for r in self._all("SELECT session FROM handoffs")}
        out = [dict(c, lead=c["session"] in leads, asked_for_person=c["session"] in handed)
               for c in chats.values() if c["intents"]]
        out.sort(key=lambda c: (len(c["intents"]), sum(c["intents"].values()), c["last_at"]), reverse=True)
        return out[:limit]

    # -- leads ---------------------------------------------------------------------------------
    def add_lead(self, session: str, name: str, email: str, message: str, consent: bool) -> Lead:
        name, email, message = " ".join(name.split()), email.strip(), message.strip()
        if not name:
            raise BadInput("Please give your name.")
        if not _EMAIL.match(email):
            raise BadInput("Please give an email address we can reply to, like name@example.com.")
        if not message:
            raise BadInput("Please write a short message so we know how to help.")
        if not consent:
            raise BadInput("Please tick the box to agree that we may contact you about your request.")
        at = _now()
        lead_id = self.db.insert("INSERT INTO leads(at, session, name, email, message, consent) VALUES (?,?,?,?,?,1)",
                              (at, session, name, email, message))
        return Lead(lead_id, at, session, name, email, message, True, "")

    def set_webhook_status(self, lead_id: int, status: str) -> None:
        self._write("UPDATE leads SET webhook = ? WHERE id = ?", (status, lead_id))

    def leads(self, limit: int = 500) -> list[Lead]:
        rows = self._all("SELECT * FROM leads ORDER BY id DESC LIMIT ?", (limit,))
        return [_lead(r) for r in rows]

    # -- live handoff to a person ---------------------------------------------------------------
    def ask_for_person(self, session: str, question: str = "") -> tuple[Handoff, bool]:
        """Mark the chat as waiting for a person; the bot is quiet in it from now on. Returns the
        handoff and whether it is new (a chat already with a person is not asked for again)."""
        with self._lock:
            current = self.handoff(session)
            if current is not None and current.with_person:
                return current, False
            now = _now()
            question = " ".join(str(question or "").split())[:MESSAGE_MAX]
            self._write("INSERT INTO handoffs(session, state, asked_at, updated_at, question, webhook) "
                        "VALUES (?, 'waiting', ?, ?, ?, '') ON CONFLICT(session) DO UPDATE SET state = excluded.state, "
                        "asked_at = excluded.asked_at, updated_at = excluded.updated_at, question = excluded.question, "
                        "webhook = excluded.webhook", (session, now, now, question))
            return self.handoff(session), True

    def handoff(self, session: str) -> Handoff | None:
        row = self._one("SELECT * FROM handoffs WHERE session = ?", (session,))
        return _handoff(row) if row else None

    def with_person(self, session: str) -> bool:
        """Whether a person, not the bot, answers this chat now."""
        h = self.handoff(session)
        return h is not None and h.with_person

    def handoffs(self, open_only: bool = True) -> list[Handoff]:
        """The inbox: chats waiting for a person first (oldest first: they have waited longest), then live ones."""
        where = f"WHERE state IN {WITH_PERSON!r}" if open_only else ""
        rows = self._all(f"SELECT * FROM handoffs {where} ORDER BY state = 'live', "
                         "CASE state WHEN 'waiting' THEN asked_at END, updated_at DESC")
        return [_handoff(r) for r in rows]

    def add_message(self, session: str, sender: str, text: str) -> PersonMessage:
        """A visitor's message to the team (only while the chat is with a person), or the team's
        reply (which takes the chat over: the bot stays quiet until it is handed back)."""
        text = str(text or "").strip()
        if not text:
            raise BadInput("The message is empty. Write something and send it again.")
        if len(text) > MESSAGE_MAX:
            raise BadInput(f"The message is {len(text):,} characters long; keep it under {MESSAGE_MAX:,}.")
        with self._lock:
            now = _now()
            if sender == "team":
                if self.handoff(session) is None:
                    self._write("INSERT INTO handoffs(session, state, asked_at, updated_at) VALUES (?, 'live', ?, ?) "
                                "ON CONFLICT(session) DO UPDATE SET state = 'live', updated_at = excluded.updated_at",
                                (session, now, now))
                else:
                    self._write("UPDATE handoffs SET state = 'live', updated_at = ? WHERE session = ?", (now, session))
            elif sender == "visitor":
                if not self.with_person(session):
                    raise BadInput("This chat is with the assistant, not with a person. Ask for a person first.")
                self._write("UPDATE handoffs SET updated_at = ? WHERE session = ?", (now, session))
            else:
                raise ValueError(sender)
            message_id = self.db.insert("INSERT INTO person_messages(at, session, sender, text) VALUES (?,?,?,?)",
                                     (now, session, sender, text))
        return PersonMessage(message_id, now, session, sender, text)

    def messages(self, session: str, after: int = 0) -> list[PersonMessage]:
        rows = self._all("SELECT * FROM person_messages WHERE session = ? AND id > ? ORDER BY id", (session, after))
        return [_message(r) for r in rows]

    def hand_back(self, session: str) -> Handoff:
        """The bot answers this chat again."""
        with self._lock:
            if self.handoff(session) is None:
                raise NotFound("This chat was never handed to a person.")
            self._write("UPDATE handoffs SET state = 'bot', updated_at = ? WHERE session = ?", (_now(), session))
            return self.handoff(session)

    def set_handoff_webhook(self, session: str, status: str) -> None:
        self._write("UPDATE handoffs SET webhook = ? WHERE session = ?", (status, session))

    def conversation(self, session: str) -> list[dict]:
        """One chat as the owner reads it, oldest first: the visitor's questions with the bot's
        answers, and the messages to and from the team."""
        items = []
        for e in reversed(self.exchanges(500, session)):
            items.append({"at": e.at, "sender": "visitor", "text": e.question, "searched": e.searched,
                          "order": (e.at, 0, e.id)})
            items.append({"at": e.at, "sender": "bot", "text": e.answer, "refused": e.refused, "method": e.method,
                          "exchange_id": e.id, "order": (e.at, 1, e.id)})
        for m in self.messages(session):
            items.append({"at": m.at, "sender": m.sender, "text": m.text, "message_id": m.id, "order": (m.at, 2, m.id)})
        items.sort(key=lambda item: item.pop("order"))
        return items

    # -- visitors' data rights (access, erasure, retention) ------------------------------------
    def visitor_data(self, session: str | None = None, email: str | None = None) -> dict:
        """Everything stored about one visitor, found by their chat's session id or by the e-mail
        address of a lead they left (then every chat that left a lead with it): their questions and
        the answers they got, and their leads. NotFound when nothing is stored."""
        sessions = self._visitor_sessions(session, email)
        marks, match = _one_of(sessions)
        exchanges = self._all(f"SELECT * FROM exchanges WHERE session IN ({marks}) ORDER BY id", match)
        leads = self._all(f"SELECT * FROM leads WHERE session IN ({marks}) OR lower(email) = ? ORDER BY id",
                          (*match, (email or "").strip().lower()))
        handoffs = self._all(f"SELECT * FROM handoffs WHERE session IN ({marks}) ORDER BY asked_at", match)
        messages = self._all(f"SELECT * FROM person_messages WHERE session IN ({marks}) ORDER BY id", match)
        if not exchanges and not leads and not handoffs and not messages:
            raise NotFound(_nothing_about(session, email))
        return {
            "visitor": {"session_id": session, "email": email},
            "exported_at": _now(),
            "sessions": sessions,
            "exchanges": [dataclasses.asdict(_exchange(r)) for r in exchanges],
            "leads": [dataclasses.asdict(_lead(r)) for r in leads],
            "handoffs": [dataclasses.asdict(_handoff(r)) for r in handoffs],
            "messages_with_the_team": [dataclasses.asdict(_message(r)) for r in messages],
        }

    def erase_visitor(self, session: str | None = None, email: str | None = None) -> dict:
        """Delete everything `visitor_data` finds, in one transaction; returns how much was deleted."""
        with self._lock:
            sessions = self._visitor_sessions(session, email)
            marks, match = _one_of(sessions)
            with self.db.transaction():
                gone_exchanges = self.db.execute(f"DELETE FROM exchanges WHERE session IN ({marks})", match).rowcount
                gone_leads = self.db.execute(f"DELETE FROM leads WHERE session IN ({marks}) OR lower(email) = ?",
                                             (*match, (email or "").strip().lower())).rowcount
                gone_messages = self.db.execute(f"DELETE FROM person_messages WHERE session IN ({marks})", match).rowcount
                gone_handoffs = self.db.execute(f"DELETE FROM handoffs WHERE session IN ({marks})", match).rowcount
        if not gone_exchanges and not gone_leads and not gone_messages and not gone_handoffs:
            raise NotFound(_nothing_about(session, email))
        return {"exchanges": gone_exchanges, "leads": gone_leads, "messages": gone_messages, "sessions": sessions}

    def older_than(self, days: int) -> dict:
        """How many exchanges and leads are older than `days` days (what retention would delete now)."""
        cutoff = _cutoff(days)
        return {"before": cutoff,
                "exchanges": self._one("SELECT COUNT(*) FROM exchanges WHERE at < ?", (cutoff,))[0],
                "leads": self._one("SELECT COUNT(*) FROM leads WHERE at < ?", (cutoff,))[0],
                "messages": self._one("SELECT COUNT(*) FROM person_messages WHERE at < ?", (cutoff,))[0]}

    def forget_older_than(self, days: int) -> dict:
        """Delete exchanges and leads older than `days` days (the retention setting), in one transaction."""
        cutoff = _cutoff(days)
        with self.db.transaction():
            exchanges = self.db.execute("DELETE FROM exchanges WHERE at < ?", (cutoff,)).rowcount
            leads = self.db.execute("DELETE FROM leads WHERE at < ?", (cutoff,)).rowcount
            messages = self.db.execute("DELETE FROM person_messages WHERE at < ?", (cutoff,)).rowcount
            self.db.execute("DELETE FROM handoffs WHERE updated_at < ?", (cutoff,))
        return {"before": cutoff, "exchanges": exchanges, "leads": leads, "messages": messages}

    def keep_for(self, days: int) -> dict | None:
        """The retention setting at work: delete what is older than `days` days (0: keep all), at
        most once an hour per process; returns what was deleted, or None when it did not run."""
        now = time.monotonic()
        if days <= 0 or now - self._retention_ran < RETENTION_EVERY_S:
            return None
        self._retention_ran = now
        return self.forget_older_than(days)

    def _visitor_sessions(self, session: str | None, email: str | None) -> list[str]:
        if bool(session) == bool(email):
            raise BadInput("Name one visitor: their chat's session id, or the e-mail address they left as a lead.")
        if session:
            return [session.strip()]
        rows = self._all("SELECT DISTINCT session FROM leads WHERE lower(email) = ? ORDER BY session", (email.strip().lower(),))
        return [r[0] for r in rows]
