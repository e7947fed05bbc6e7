"""Live handoff: the chats a visitor handed to a person, and the messages while the bot is quiet."""

from __future__ import annotations

from kb.bot.base import Handoff, MESSAGE_MAX, PersonMessage, RecordsBase, WITH_PERSON, _handoff, _message, _now
from kb.errors import BadInput, NotFound


class Handoffs(RecordsBase):
    """Live handoff: the chats a visitor handed to a person, and the messages while the bot is quiet."""

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
