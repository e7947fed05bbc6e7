"""Visitors' data rights: what is stored about a visitor, its erasure, and retention."""

from __future__ import annotations

import dataclasses
import time

from kb.bot.base import (RETENTION_EVERY_S, RecordsBase, _cutoff, _exchange, _handoff, _lead, _message, _nothing_about,
                         _now, _one_of)
from kb.errors import BadInput, NotFound


class VisitorRights(RecordsBase):
    """Visitors' data rights: what is stored about a visitor, its erasure, and retention."""

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
