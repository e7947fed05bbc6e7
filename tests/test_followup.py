"""A chatbot that follows the conversation, with the real models of the small profile on the sample
business: a follow-up is searched with the chat's topic and answered about the right item, a topic
switch and an out-of-scope follow-up are searched by themselves, the chat's history is read by
session (two visitors never mix), bounded, forgotten after the idle time and when a visitor is
erased; chats in questions files and their scores. The writer reading the turns is tested with the
quality profile in test_answer_quality.py, and in the widget in test_widget_browser.py."""

from __future__ import annotations

import json

import pytest
from conftest import sample_kb
from fastapi.testclient import TestClient

from compare import evaluate
from rag import questions
from compare.paths import build
from kb.bot import BotRecords
from kb.errors import BadInput
from kb.records import Turn
from kb.settings import Settings
from kb.store import Store
from rag import followup
from rag.answer import RagPath
from rag.retrieve import close_to_best
from ui.api import create_app

KIDS = "Do you have pottery classes for kids?"


@pytest.fixture(scope="module")
def kb(tmp_path_factory, model_cache):
    kb = sample_kb(tmp_path_factory.mktemp("followup"), 53, "price_list.md")
    Settings(rate_limit_per_ip=1000, rate_limit_per_session=1000).save(kb)
    return kb


@pytest.fixture(scope="module")
def rag(kb):
    with Store(kb) as store:
        yield RagPath(store, Settings.load(kb))


def test_a_follow_up_is_searched_with_the_chats_topic_and_answered_about_the_right_item(rag):
    first = rag.answer(KIDS)
    alone = rag.answer("how much does it cost?")
    followed = rag.answer("how much does it cost?", [Turn(KIDS, first.text, first.searched)])
    assert "$120" in first.text  # the kids' club, $120 for 4 weeks
    assert alone.searched == "how much does it cost?" and "$120" not in alone.text
    assert followed.searched == f"{KIDS} how much does it cost?" and "$120" in followed.text
    # the chain carries the topic on: a third turn that leans on the second
    again = rag.answer("and what day is it on?", [Turn(KIDS, first.text, first.searched),
                                                  Turn("how much does it cost?", followed.text, followed.searched)])
    assert "Saturday" in again.text and again.searched.startswith(KIDS)


def test_a_topic_switch_and_an_out_of_scope_follow_up_are_searched_by_themselves(rag):
    chat = [Turn(KIDS, "Yes. Kids' Clay Club is for ages 6 to 12 and meets Saturdays.", KIDS)]
    parking = rag.answer("Where can I park?", chat)
    assert parking.searched == "Where can I park?" and "6 free spaces" in parking.text
    outside = rag.answer("Who won the World Series last year?", chat)
    assert outside.searched == "Who won the World Series last year?" and outside.refused
    assert "Kids" not in outside.text


@pytest.mark.parametrize("message, topic_passage, belongs", [
    ("and on Sundays?", "Open Tuesday to Sunday.", True),  # leans on the chat
    ("how far ahead do I need to book?", "Book at least 14 days ahead.", True),  # its words are in the topic
    ("Who won the World Series?", "Kids' Clay Club meets on Saturdays.", False),
])
def test_which_messages_may_take_the_chats_topic(message, topic_passage, belongs):
    assert followup.belongs(message, [topic_passage]) is belongs


def test_a_message_that_refers_back_reads_both_searches_passages(rag):
    """"how much does it cost?" in a chat about kids' classes: its own search finds the membership's
    prices, the topic's the kids' club; the writer is given both (the better fit first) and no
    curated answer of the message's own words. A message with a subject of its own reads one."""
    chat = [Turn(KIDS, "Yes. Kids' Clay Club is for ages 6 to 12 and meets Saturdays.", KIDS)]
    searched, faq, hits = rag._retrieve("how much does it cost?", chat)
    alone, topic = rag.retriever.search("how much does it cost?", 5), rag.retriever.search(searched, 5)
    ids = [h.chunk.id for h in hits]
    assert len(ids) == len(set(ids)) <= rag.settings.answers.top_k
    assert alone[0].chunk.id in ids and topic[0].chunk.id in ids and ids[0] == (topic if searched != "how much does it cost?" else alone)[0].chunk.id
    assert faq is None or searched != "how much does it cost?"  # never a curated answer of "it" alone
    # one with a subject of its own gets one search only: its passages close to its best (passage_margin)
    searched, _, gifts = rag._retrieve("Do you sell gift cards in the shop?", chat)
    own = close_to_best(rag.retriever.search("Do you sell gift cards in the shop?", 5), rag.settings.answers.passage_margin)
    assert searched == "Do you sell gift cards in the shop?" and [h.chunk.id for h in gifts] == [h.chunk.id for h in own]


def test_docstring_examples_hold():
    import doctest

    assert doctest.testmod(followup).failed == 0


def test_the_history_the_writer_reads_is_bounded():
    long = [Turn(f"question {i}", "x" * 500) for i in range(10)]
    kept = followup.recent(long)
    assert kept == long[-2:]  # the newest that fit in MAX_HISTORY_CHARS, of MAX_TURNS at most
    assert len(followup.recent([Turn("q", "a")] * 10)) == followup.MAX_TURNS
    assert len(followup.as_messages(long)) == 4 and followup.as_messages([]) == []
    assert followup.with_topic("q", []) is None


# -- the chat API -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def api(kb):
    with TestClient(create_app(kb)) as client:
        with BotRecords(kb) as records:
            key = records.public_key()
        yield client, {"X-Bot-Key": key}


def _chat(api, question, session):
    client, headers = api
    response = client.post("/api/chat", json={"question": question, "session_id": session}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_api_follows_each_visitors_chat_and_never_mixes_two(api, kb):
    _chat(api, KIDS, "visitor-a-0001")
    _chat(api, "Where is Copper Kiln Pottery Studio located?", "visitor-b-0001")
    a = _chat(api, "how much does it cost?", "visitor-a-0001")
    b = _chat(api, "how much does it cost?", "visitor-b-0001")
    assert "$120" in a["text"] and "$120" not in b["text"]
    assert "searched" not in a and "why" not in a  # for the owner, not for the visitor
    with BotRecords(kb) as records:
        logged = {e.session: e for e in records.exchanges(10) if e.question == "how much does it cost?"}
        assert logged["visitor-a-0001"].searched == f"{KIDS} how much does it cost?"
        assert logged["visitor-b-0001"].searched.startswith("Where is Copper Kiln")
        chat = records.conversation("visitor-a-0001")
        assert [i.get("searched") for i in chat if i["sender"] == "visitor"] == ["", f"{KIDS} how much does it cost?"]
        assert len(records.history("visitor-a-0001", 30)) == 2


def test_a_chat_idle_past_the_setting_starts_fresh(api, kb):
    _chat(api, KIDS, "visitor-idle-01")
    with BotRecords(kb) as records:
        # The visitor comes back an hour later (the setting is 30 minutes): their chat is older.
        records.db.execute("UPDATE exchanges SET at = ? WHERE session = ?", ("2020-01-01T10:00:00+00:00", "visitor-idle-01"))
        assert records.history("visitor-idle-01", 30) == []
        assert len(records.history("visitor-idle-01", 60 * 24 * 365 * 100)) == 1
    later = _chat(api, "how much does it cost?", "visitor-idle-01")
    assert "$120" not in later["text"]


def test_an_erased_visitors_history_is_gone(api, kb):
    client, _ = api
    _chat(api, KIDS, "visitor-gone-01")
    with BotRecords(kb) as records:
        assert len(records.history("visitor-gone-01", 30)) == 1
        records.erase_visitor(session="visitor-gone-01")
        assert records.history("visitor-gone-01", 30) == []
    assert "$120" not in _chat(api, "how much does it cost?", "visitor-gone-01")["text"]


def test_the_idle_setting_is_checked():
    with pytest.raises(BadInput, match="Setting 'chat_idle_minutes' must be more than 0 minutes"):
        Settings(chat_idle_minutes=0)


# -- chats in the evaluation -----------------------------------------------------------------------------
def test_a_questions_file_may_hold_chats_scored_per_turn(kb, tmp_path):
    file = tmp_path / "chats.jsonl"
    file.write_text(
        json.dumps({"turns": [{"question": KIDS, "expected": "Kids' Clay Club"},
                              {"question": "how much does it cost?", "expected": "$120"},
                              {"question": "Who won the World Series last year?", "in_scope": False, "switch": True}]}) + "\n"
        + json.dumps({"question": "Where is Copper Kiln Pottery Studio located?", "expected": "214 Alder Street"}) + "\n",
        encoding="utf-8")
    asked = questions.load(file)
    assert [q.context for q in asked] == ["first", "follow-up", "switch", "single"]
    settings = Settings.load(kb)
    with Store(kb) as store:
        result = evaluate.evaluate(asked, build(store, settings, ["rag"]), store, settings)
    rag = result.paths["rag"]
    chats = rag.by_context
    assert chats["first"].right == 1.0 and chats["follow-up"].right == 1.0 and chats["switch"].right == 1.0
    assert rag.switches_searched_with_old_topic == 0 and chats["single"].n == 1
    follow = result.questions[1].answers["rag"]
    assert "$120" in follow.text and follow.searched == f"{KIDS} how much does it cost?"


@pytest.mark.parametrize("line, message", [
    ('{"turns": []}', 'line 1: "turns" must be a list of questions'),
    ('{"turns": [{"question": ""}]}', "line 1, turn 1 has no question"),
    ('{"turns": [{"question": "hi"}, {"question": "and?", "switch": "yes"}]}', 'line 1, turn 2: "switch" must be true or false'),
])
def test_a_bad_chat_in_a_questions_file_is_named(tmp_path, line, message):
    file = tmp_path / "bad.jsonl"
    file.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(BadInput, match=message):
        questions.load(file)


def test_the_questions_made_from_a_knowledge_base_include_chats(kb):
    with Store(kb) as store:
        made = questions.from_knowledge_base(store)
    chats = [q for q in made if q.chat is not None]
    assert chats and {q.context for q in chats} == {"first", "follow-up", "switch"}
    follow = next(q for q in chats if q.context == "follow-up")
    assert follow.question.startswith("And the ") and follow.expected
