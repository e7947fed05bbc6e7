"""Fine-tuning from real conversations: transcript exports (CSV, JSON, JSONL in the shapes help desks
and chat tools export) become question/answer pairs with what was left out and why; answers visitors
rated helpful join them; the CLI and the Fine-tune page take both; after a run the gap between
training and validation loss is said in plain words."""

from __future__ import annotations

import json

import pytest
from conftest import Cli, sample_kb
from streamlit.testing.v1 import AppTest

from kb.bot import BotRecords
from kb.errors import BadInput
from kb.records import Answer, Citation
from tuning import adapters
from tuning.data import load_extra_pairs, rated_pairs
from tuning.transcripts import looks_like_transcript, read_transcript


def test_a_csv_export_pairs_each_question_with_the_teams_reply(data):
    t = read_transcript((data / "chats.csv").read_bytes(), "chats.csv")
    pairs = {p.question: p for p in t.pairs}
    # Bursts are joined; rows of one chat that are apart in the file are put back in time order.
    assert pairs["How much is it to rent the back room for a birthday? Around 20 people"].answer.startswith("The back room is $150")
    assert pairs["And is the soup vegan?"].answer == "The lentil soup is vegan; the others have cream."
    assert pairs["Four of us at 11"].answer.startswith("Booked: a table for four")  # the question back is not an answer
    assert pairs["Are dogs allowed inside?"].answer.startswith("Dogs are welcome on the terrace")  # the note is skipped
    assert pairs["Do you have oat milk?"].location == "chats.csv chat c-102"
    assert len(t.pairs) == 5 and t.conversations == 5
    assert t.left_out == {"greetings or thanks (not questions)": 2, "replies that asked back instead of answering": 1,
                          "customer messages the team never answered": 1}
    assert t.describe("chats.csv")[0] == "chats.csv: 5 question/answer pairs taken from 5 conversations."


def test_json_shapes_of_chat_tools_and_roles_given_as_names():
    openai_style = "\n".join(json.dumps({"messages": [{"role": "system", "content": "You are helpful."},
                                                      {"role": "user", "content": f"Do you open on day {n}?"},
                                                      {"role": "assistant", "content": f"Yes, from 8 am on day {n}."}]})
                             for n in (1, 2))
    assert [p.answer for p in read_transcript(openai_style.encode(), "chats.jsonl").pairs] == [
        "Yes, from 8 am on day 1.", "Yes, from 8 am on day 2."]
    intercom = {"conversations": [{"id": "77", "conversation_parts": [
        {"author": {"type": "user", "name": "Ann"}, "body": "<p>Can I pay by <b>card</b>?</p>"},
        {"author": {"type": "admin", "name": "Jo"}, "body": "<p>Yes, every card but Amex.</p>"}]}]}
    t = read_transcript(json.dumps(intercom).encode(), "export.json")
    assert [(p.question, p.answer, p.location) for p in t.pairs] == [
        ("Can I pay by card?", "Yes, every card but Amex.", "export.json chat 77")]
    flat = [{"chat_id": 5, "from": "Marta", "text": "Is the shop open on Sunday?"},
            {"chat_id": 5, "from": "Jo (staff)", "text": "Yes, 11 to 5."}]
    t = read_transcript(json.dumps(flat).encode(), "flat.json")
    assert [(p.question, p.answer) for p in t.pairs] == [("Is the shop open on Sunday?", "Yes, 11 to 5.")]
    assert "the first to write was taken as the customer" in t.notes[0]


@pytest.mark.parametrize("content, name, message", [
    (b"chat,who wrote,words\n1,a,b\n", "x.csv", None),  # no role/text columns: not a transcript at all
    (b"[{\"role\": \"user\", \"content\": \"hi\"}", "x.json", "not valid JSON"),
    (b"chat,role,message\n1,customer,When do you open?\n", "x.csv", "no customer message had a reply"),
    (b"{\"messages\": [{\"role\": \"user\"}]}", "x.json", "No conversations were found"),
])
def test_bad_transcripts_are_refused_in_plain_words(content, name, message):
    if message is None:
        assert not looks_like_transcript(content, name)
        return
    with pytest.raises(BadInput, match=message):
        read_transcript(content, name)


def test_the_extra_file_may_be_an_faq_or_a_transcript(tmp_path, data):
    faq = tmp_path / "more.csv"
    faq.write_text("Question,Answer,Type\nDo you cater?,Yes for 10 or more.,service\n")
    assert [p.question for p in load_extra_pairs(faq)] == ["Do you cater?"]
    said: list[str] = []
    pairs = load_extra_pairs(data / "chats.csv", said)
    assert len(pairs) == 5 and said[0].startswith("chats.csv: 5 question/answer pairs taken from 5 conversations")
    assert "left out 2 greetings or thanks" in said[1]


@pytest.fixture
def rated_kb(tmp_path):
    kb = sample_kb(tmp_path, 20)
    cite = [Citation(1, "c1", "faq.csv", "row 2", "...", 0.9)]
    with BotRecords(kb) as records:
        good = records.log("v-1", Answer("rag", "Can I come at 9 pm?", "We close at 9 pm on weekdays [1].", "generated", cite))
        curated = records.log("v-1", Answer("rag", "Gift cards?", "Yes.", "faq", cite))
        bad = records.log("v-2", Answer("rag", "Parking?", "No idea.", "generated", cite))
        owner = records.log("app", Answer("rag", "Test?", "A test [1].", "generated", cite))
        records.feedback(good, "v-1", True)
        records.feedback(curated, "v-1", True)
        records.feedback(bad, "v-2", False)
        records.feedback(owner, "app", True)
    return kb


def test_answers_rated_helpful_become_pairs_without_citation_marks(rated_kb, tmp_path):
    assert [(p.question, p.answer) for p in rated_pairs(rated_kb)] == [("Can I come at 9 pm?", "We close at 9 pm on weekdays.")]
    assert rated_pairs(tmp_path / "nothing-here") == []


def test_the_cli_checks_a_transcript_and_rated_answers(rated_kb, data):
    result = Cli(rated_kb)("tune", "--check", "--extra", str(data / "chats.csv"), "--rated")
    assert result.exit_code == 0, result.output
    assert "chats.csv: 5 question/answer pairs taken from 5 conversations." in result.output
    assert "Answers visitors rated helpful: 1 question/answer pairs." in result.output
    assert "Checked 26 question/answer pairs" in result.output  # 20 FAQ + 5 from chats + 1 rated


def test_the_fine_tune_page_takes_a_transcript_and_rated_answers(monkeypatch, rated_kb, data):
    from conftest import ROOT
    from ui import jobs

    monkeypatch.setenv("KBCHAT_HOME", str(rated_kb))
    at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=180)
    at.switch_page("views/tune.py").run()
    at.file_uploader[0].set_value(("chats.csv", (data / "chats.csv").read_bytes(), "text/csv"))
    [c for c in at.checkbox if "rated helpful" in c.label][0].check()
    at.run()
    assert not at.exception
    captions = "\n".join(c.value for c in at.caption)
    assert "5 question/answer pairs taken from 5 conversations" in captions and "rated helpful: 1" in captions
    assert any("Checked 26 question/answer pairs" in m.value for m in at.markdown)
    [b for b in at.button if b.label == "Start training"][0].click()
    at.run()
    try:
        args = jobs.status(rated_kb, "tune").args
        assert args[-3:] == ["--extra", str(rated_kb / "tuning" / "extra" / "chats.csv"), "--rated"]
    finally:
        jobs.stop(rated_kb, "tune")


@pytest.mark.parametrize("train, val, says", [
    (0.30, 0.35, "learned your answers rather than memorizing"),
    (0.10, 0.45, "partly memorized your exact wordings"),
    (0.05, 1.20, "memorized rather than learned"),
])
def test_the_gap_between_training_and_validation_loss_is_said_in_plain_words(train, val, says):
    info = adapters.AdapterInfo("v1", "", "m", {}, "", "", 60, 20, 2, 2, val, False, 1.0, 1.0,
                                train_loss=[(5, 2.0), (10, 1.0), (15, train), (20, train)], val_loss=[(1, 1.5), (2, val)])
    got_train, got_val, words = info.fit()
    assert (got_train, got_val) == (pytest.approx(train), val) and says in words
    assert f"training loss {train:.3f}" in words
