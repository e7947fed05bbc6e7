"""Every exchange with a visitor, their feedback, and the owner's insights drawn from them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from kb.bot.base import Exchange, LOW_CONFIDENCE, MAX_TURNS, OWNER_SESSION, RecordsBase, _exchange, _now
from kb.errors import NotFound
from kb.records import Answer, Turn


class Exchanges(RecordsBase):
    """Every exchange with a visitor, their feedback, and the owner's insights drawn from them."""

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
