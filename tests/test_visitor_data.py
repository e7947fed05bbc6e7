"""Visitors' data rights: everything stored about one visitor can be exported and erased (found by
chat session id or by a lead's e-mail), from the library and the CLI; the retention setting deletes
what is older than it, and says what first. Other visitors' data is never touched."""

from __future__ import annotations

import json

import pytest
from conftest import Cli, sample_kb

from kb.bot import BotRecords
from kb.errors import BadInput, NotFound
from kb.records import Answer
from kb.settings import Settings


@pytest.fixture
def kb(tmp_path):
    kb = sample_kb(tmp_path, 2)
    with BotRecords(kb) as records:
        records.log("chat-ada-1", Answer("rag", "When are you open?", "9 to 5 [1].", "generated", confidence=0.9))
        records.log("chat-ada-2", Answer("rag", "Do you do gift cards?", "Yes [1].", "faq", confidence=0.9))
        records.log("chat-bob-1", Answer("rag", "Where are you?", "Main Street [1].", "faq", confidence=0.9))
        records.add_lead("chat-ada-1", "Ada Lovelace", "Ada@Example.com", "Call me about a class", True)
        records.add_lead("chat-ada-2", "Ada Lovelace", "ada@example.com", "And a gift card", True)
        records.add_lead("chat-bob-1", "Bob", "bob@example.com", "Party booking", True)
        records.ask_for_person("chat-ada-2", "Do you do gift cards?")
        records.add_message("chat-ada-2", "visitor", "Can I get one for 50 dollars?")
        records.add_message("chat-ada-2", "team", "Yes, any amount from 20 dollars.")
    return kb


def _questions(data: dict) -> list[str]:
    return [x["question"] for x in data["exchanges"]]


def test_a_visitors_data_is_found_by_session_or_by_the_email_of_their_leads(kb):
    with BotRecords(kb) as records:
        by_chat = records.visitor_data(session="chat-bob-1")
        assert _questions(by_chat) == ["Where are you?"] and [x["email"] for x in by_chat["leads"]] == ["bob@example.com"]
        by_email = records.visitor_data(email="ADA@example.com")  # any case
        assert by_email["sessions"] == ["chat-ada-1", "chat-ada-2"]
        assert _questions(by_email) == ["When are you open?", "Do you do gift cards?"]
        assert [x["message"] for x in by_email["leads"]] == ["Call me about a class", "And a gift card"]
        assert [(m["sender"], m["text"]) for m in by_email["messages_with_the_team"]] == [
            ("visitor", "Can I get one for 50 dollars?"), ("team", "Yes, any amount from 20 dollars.")]
        assert [h["state"] for h in by_email["handoffs"]] == ["live"]
        assert records.visitor_data(session="chat-bob-1")["messages_with_the_team"] == []
        assert json.loads(json.dumps(by_email)) == by_email  # plain JSON
        with pytest.raises(NotFound, match="Nothing is stored about the e-mail address 'eve@example.com'"):
            records.visitor_data(email="eve@example.com")
        with pytest.raises(BadInput, match="Name one visitor"):
            records.visitor_data()
        with pytest.raises(BadInput, match="Name one visitor"):
            records.visitor_data(session="chat-bob-1", email="bob@example.com")


def test_erasing_a_visitor_deletes_all_of_theirs_and_nothing_else(kb):
    with BotRecords(kb) as records:
        assert records.erase_visitor(email="ada@example.com") == {"exchanges": 2, "leads": 2, "messages": 2,
                                                                  "sessions": ["chat-ada-1", "chat-ada-2"]}
        assert records.handoff("chat-ada-2") is None and records.handoffs() == []
        with pytest.raises(NotFound):
            records.visitor_data(email="ada@example.com")
        with pytest.raises(NotFound):
            records.erase_visitor(email="ada@example.com")  # nothing left: said, not silently done
        assert [x.session for x in records.exchanges()] == ["chat-bob-1"]
        assert [lead.name for lead in records.leads()] == ["Bob"]


def _age(kb, table: str, days: int, where: str) -> None:
    """Make some records look `days` old (the test cannot wait a month)."""
    import sqlite3
    from datetime import datetime, timedelta, timezone

    at = (datetime.now(timezone.utc) - timedelta(days=days)).isoformat(timespec="seconds")
    with sqlite3.connect(kb / "kbchat.db") as db:
        db.execute(f"UPDATE {table} SET at = ? WHERE session = ?", (at, where))


def test_retention_deletes_what_is_older_and_says_how_much_first(kb):
    _age(kb, "exchanges", 40, "chat-ada-1")
    _age(kb, "leads", 40, "chat-ada-1")
    with BotRecords(kb) as records:
        assert records.older_than(30) | {"before": ""} == {"before": "", "exchanges": 1, "leads": 1, "messages": 0}
        assert records.older_than(60) | {"before": ""} == {"before": "", "exchanges": 0, "leads": 0, "messages": 0}
        assert records.keep_for(0) is None  # off: nothing runs
        done = records.keep_for(30)
        assert (done["exchanges"], done["leads"]) == (1, 1)
        assert records.keep_for(30) is None  # at most once an hour
        assert sorted(x.session for x in records.exchanges()) == ["chat-ada-2", "chat-bob-1"]
        with pytest.raises(BadInput, match="at least 1 day"):
            records.older_than(0)
    with pytest.raises(BadInput, match="retention_days"):
        Settings(retention_days=-1)


def test_the_cli_exports_and_erases_one_visitor(kb, tmp_path):
    kbchat = Cli(kb)
    out = tmp_path / "ada.json"
    result = kbchat("visitor", "export", "--email", "ada@example.com", "--out", str(out))
    assert result.exit_code == 0 and "Wrote 2 answers and 2 leads" in result.output, result.output
    assert _questions(json.loads(out.read_text())) == ["When are you open?", "Do you do gift cards?"]
    result = kbchat("visitor", "erase", "--session", "chat-bob-1", input="n\n")
    assert result.exit_code == 1 and "Delete 1 answer and 1 lead of this visitor for good?" in result.output
    with BotRecords(kb) as records:
        assert records.visitor_data(session="chat-bob-1")["exchanges"]  # not answered yes: kept
    result = kbchat("visitor", "erase", "--session", "chat-bob-1", "--yes")
    assert result.exit_code == 0 and "Deleted 1 answer and 1 lead." in result.output
    result = kbchat("visitor", "export", "--session", "chat-bob-1")
    assert result.exit_code == 1 and "Nothing is stored about the chat 'chat-bob-1'" in result.output
    assert "Traceback" not in result.output
