"""Leads: a visitor's name, e-mail and message, left for the business to answer."""

from __future__ import annotations

from kb.bot.base import Lead, RecordsBase, _EMAIL, _lead, _now
from kb.errors import BadInput


class Leads(RecordsBase):
    """Leads: a visitor's name, e-mail and message, left for the business to answer."""

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
