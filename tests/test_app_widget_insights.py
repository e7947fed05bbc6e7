"""The app's Widget and Insights pages, driven by Streamlit's AppTest on a real knowledge base: the
settings form writes settings.toml (or refuses with the plain message), the script tag carries the
real public key, the preview frames a real `kbchat serve`, and the Insights page shows what the
chat records hold and saves an owner's answer to a content gap into the FAQ."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
from click.testing import CliRunner
from conftest import ROOT, free_port, sample_kb
from streamlit.testing.v1 import AppTest

from kb import corrections
from kb.bot import BotRecords
from kb.process import Process
from kb.records import Answer
from kb.settings import SETTINGS_FILE, Settings
from ui import jobs, servers
from ui.cli import cli

APP = str(ROOT / "ui" / "app.py")
WIDGET, INSIGHTS = "views/widget.py", "views/insights.py"
DECLINED = "Do you repair bicycles?"
UNSURE = "Can I bring my dog to class?"


@pytest.fixture
def kb(tmp_path):
    return sample_kb(tmp_path, 4)


def open_page(monkeypatch, kb_dir, page: str) -> AppTest:
    monkeypatch.setenv("KBCHAT_HOME", str(kb_dir))
    at = AppTest.from_file(APP, default_timeout=180)
    at.switch_page(page).run()  # straight to the page: the default page may load models
    assert not at.exception, at.exception
    return at


def by_label(widgets, label: str):
    found = [w for w in widgets if w.label == label]
    assert len(found) == 1, f"{label!r} not in {[w.label for w in widgets]}"
    return found[0]


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


# -- every page with an empty knowledge base --------------------------------------------------------
@pytest.mark.parametrize("page, says", [
    (WIDGET, "Your knowledge base is empty"),
    (INSIGHTS, "No conversations yet: put the widget on your site (Widget page)"),
])
def test_page_renders_with_an_empty_knowledge_base(monkeypatch, tmp_path, page, says):
    at = open_page(monkeypatch, tmp_path / "kb", page)
    assert says in texts(at.info)
    assert not at.error
    if page == WIDGET:  # the chat server cannot start without documents: no button to fail with
        assert "Start the chat server" not in [b.label for b in at.button]


# -- Widget ---------------------------------------------------------------------------------------
def test_widget_page_shows_the_form_and_the_script_tag_with_the_real_keys(monkeypatch, kb):
    at = open_page(monkeypatch, kb, WIDGET)
    for label in ("Bot name", "Logo web address", "Lead webhook address"):
        by_label(at.text_input, label)
    assert [c.label for c in at.color_picker] == ["Main colour", "Text colour"]
    assert by_label(at.color_picker, "Main colour").value == Settings().widget.bot_color
    for label in ("Welcome message", "Suggested questions (one per line, at most 6)", "Fallback message",
                  "Allowed websites (one per line)"):
        by_label(at.text_area, label)
    assert len(at.number_input) == 3  # two rate limits and the preview's port
    paths = by_label(at.selectbox, "How the chatbot answers visitors")
    assert paths.value == "rag"
    unavailable = [o for o in paths.options if "not available yet" in o]
    assert len(unavailable) == 2 and all("Fine-tune page" in o for o in unavailable)  # tuned paths: no model yet
    assert by_label(at.text_input, "Bot name").help == dict((n, h) for n, _, h in Settings.describe())["bot_name"]

    with BotRecords(kb) as records:
        key = records.public_key()
        shown = [c.value for c in at.code]
        tag = next(c for c in shown if "<script" in c)
        assert tag == f'<script src="http://127.0.0.1:{servers.DEFAULT_PORT}/widget.js" data-bot="{key}" async></script>'
        assert 'data-bot="pk_' in tag
        token = next(c for c in shown if c.startswith("adm_"))  # made on the first visit, shown once
        assert records.is_admin_token(token)
    assert "keep it secret" in texts(at.warning)

    by_label(at.button, "I have saved it: hide it").click().run()
    assert not any(c.value.startswith("adm_") for c in at.code)
    by_label(at.text_input, "Your chat server's web address").input("https://chat.example.com/").run()
    assert f'<script src="https://chat.example.com/widget.js" data-bot="{key}" async></script>' in [c.value for c in at.code]


def test_saving_the_form_writes_settings_toml(monkeypatch, kb):
    at = open_page(monkeypatch, kb, WIDGET)
    by_label(at.text_input, "Bot name").input("Ada's Pottery")
    by_label(at.color_picker, "Main colour").pick("#aa3300")
    by_label(at.text_area, "Suggested questions (one per line, at most 6)").input("When are you open?\n\n How much is a class? \n")
    by_label(at.text_area, "Allowed websites (one per line)").input("https://www.adaspottery.com\nhttp://localhost:*")
    by_label(at.number_input, "Questions per minute in one chat").set_value(5)
    at.form_submit_button[0].click().run()

    assert not at.error and not at.exception
    assert "Saved" in texts(at.success)
    saved = Settings.load(kb)
    assert saved.widget.bot_name == "Ada's Pottery"
    assert saved.widget.bot_color == "#aa3300"
    assert saved.widget.suggested_questions == ("When are you open?", "How much is a class?")
    assert saved.server.allowed_origins == ("https://www.adaspottery.com", "http://localhost:*")
    assert saved.server.rate_limit_per_session == 5
    assert saved.answers.fallback_message == Settings().answers.fallback_message  # untouched fields keep their value
    assert "`https://www.adaspottery.com`" in texts(at.info)  # the tip lists what was just saved


def test_the_business_contact_goes_into_the_fallback_message_unless_the_owner_wrote_their_own(monkeypatch, kb):
    at = open_page(monkeypatch, kb, WIDGET)
    assert "Add your phone or e-mail above" in texts(at.warning)  # the default message gives no way to reach you
    by_label(at.text_input, "Your business's name").input("Copper Kiln Pottery")
    by_label(at.text_input, "Phone or e-mail for customers").input("0161 555 0199")
    at.form_submit_button[0].click().run()
    assert not at.error and "Saved" in texts(at.success)
    saved = Settings.load(kb)
    assert saved.widget.business_name == "Copper Kiln Pottery" and saved.widget.contact == "0161 555 0199"
    assert saved.answers.fallback_message == ("Sorry, I don't have that information. Please contact us at 0161 555 "
                                              "0199 and we'll be glad to help.")
    assert by_label(at.text_area, "Fallback message").value == saved.answers.fallback_message
    assert "Add your phone or e-mail above" not in texts(at.warning)

    by_label(at.text_area, "Fallback message").input("Ring Ada on 0161 555 0199.")
    at.form_submit_button[0].click().run()
    by_label(at.text_input, "Phone or e-mail for customers").input("hello@copperkiln.example")
    at.form_submit_button[0].click().run()
    assert Settings.load(kb).answers.fallback_message == "Ring Ada on 0161 555 0199."  # the owner's words stay


def test_the_tone_is_saved_and_the_small_profile_says_it_only_shapes_written_answers(monkeypatch, kb):
    at = open_page(monkeypatch, kb, WIDGET)
    assert "the tone does not change them" in texts(at.caption)  # the tests run the small (quoting) profile
    by_label(at.selectbox, "Tone of written answers").select("custom")
    by_label(at.text_area, "Your own tone (used when the tone is 'In your own words')").input(
        "Speak like a relaxed surf instructor.")
    at.form_submit_button[0].click().run()
    assert not at.error and "Saved" in texts(at.success)
    saved = Settings.load(kb)
    assert (saved.answers.tone, saved.answers.tone_instructions) == ("custom", "Speak like a relaxed surf instructor.")
    assert "relaxed surf instructor" in saved.answers.tone_prompt


def test_choosing_a_path_that_cannot_answer_yet_is_saved_with_a_warning(monkeypatch, kb):
    at = open_page(monkeypatch, kb, WIDGET)
    assert not at.warning or "Visitors get no answers" not in texts(at.warning)
    by_label(at.selectbox, "How the chatbot answers visitors").select("tuned")
    at.form_submit_button[0].click().run()
    assert Settings.load(kb).widget.visitor_path == "tuned"
    assert "Visitors get no answers until the chosen way of answering is available. There is no fine-tuned " \
           "model yet" in texts(at.warning)


@pytest.mark.parametrize("widget, label, value, message", [
    ("text_area", "Allowed websites (one per line)", "www.example.com/shop",
     "Allowed origin 'www.example.com/shop' must look like https://www.example.com"),
    # (no colour case: the colour pickers only ever give #rrggbb; Streamlit drops anything else)
    ("text_input", "Logo web address", "logo.png", "Setting 'bot_logo_url' must be a web address starting with https://"),
    ("text_area", "Suggested questions (one per line, at most 6)", "\n".join(f"Question {i}?" for i in range(7)),
     "Give at most 6 suggested questions"),
    ("selectbox", "Tone of written answers", "custom", "Setting 'tone' is custom but 'tone_instructions' is empty"),
])
def test_a_bad_value_shows_the_plain_message_and_saves_nothing(monkeypatch, kb, widget, label, value, message):
    at = open_page(monkeypatch, kb, WIDGET)
    by_label(at.text_input, "Bot name").input("Ada's Pottery")
    by_label(getattr(at, widget), label).set_value(value)
    at.form_submit_button[0].click().run()

    assert not at.exception
    assert len(at.error) == 1 and at.error[0].value.startswith("Not saved: ")
    assert message in at.error[0].value
    assert not at.success
    assert not (kb / SETTINGS_FILE).exists()
    assert Settings.load(kb).widget.bot_name == Settings().widget.bot_name


def test_new_public_key_and_new_admin_token(monkeypatch, kb):
    at = open_page(monkeypatch, kb, WIDGET)
    with BotRecords(kb) as records:
        old_key = records.public_key()
    old_token = next(c.value for c in at.code if c.value.startswith("adm_"))

    by_label(at.button, "Yes, make a new public key").click().run()
    with BotRecords(kb) as records:
        new_key = records.public_key()
    assert new_key != old_key and new_key.startswith("pk_")
    tags = [c.value for c in at.code if "<script" in c.value]
    assert tags == [f'<script src="http://127.0.0.1:{servers.DEFAULT_PORT}/widget.js" data-bot="{new_key}" async></script>']
    assert "The old script tag no longer works" in texts(at.warning)

    by_label(at.button, "Yes, make a new admin token").click().run()
    tokens = [c.value for c in at.code if c.value.startswith("adm_")]
    assert len(tokens) == 1 and tokens[0] != old_token
    with BotRecords(kb) as records:
        assert records.is_admin_token(tokens[0]) and not records.is_admin_token(old_token)
        assert records.public_key() == new_key


def test_start_refuses_a_port_in_use_and_fills_in_a_free_one(monkeypatch, kb):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        at = open_page(monkeypatch, kb, WIDGET)
        assert "The chat server is not running" in texts(at.info)
        by_label(at.number_input, "Port").set_value(port)
        by_label(at.button, "Start the chat server").click().run()
        free = by_label(at.number_input, "Port").value
        assert free != port and servers.port_free(free)  # a port that really is free, not just the next one
        assert f"Port {port} is in use by another program. Port {free} is free and is now filled in below" \
            in texts(at.error)
    assert jobs.status(kb, "serve") is None  # nothing was started
    assert f"http://127.0.0.1:{free}/widget.js" in texts(at.code)  # the tag follows the port filled in


def test_the_page_finds_a_chat_server_started_outside_the_app_and_a_second_one_is_refused(monkeypatch, kb, model_cache):
    """The owner started `kbchat serve` in a terminal: the Widget page previews that one (not "not
    running", not "port in use"), `kbchat keys` prints its address, and a second `kbchat serve` for the
    same knowledge base says where the first answers instead of starting."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with Process([*jobs.kbchat_command(), "--kb", str(kb), "serve", "--port", str(port)]) as server:
        server.require_healthy(f"{base}/health", timeout=240, what="kbchat serve")
        at = open_page(monkeypatch, kb, WIDGET)
        assert f"The chat server is running at {base} (started outside this app)" in texts(at.success)
        assert [f.proto.src for f in at.get("iframe")] == [f"{base}/preview?v=0"]
        assert f'<script src="{base}/widget.js"' in texts(at.code)

        keys = CliRunner().invoke(cli, ["--kb", str(kb), "keys"])
        assert keys.exit_code == 0 and f'<script src="{base}/widget.js"' in keys.output
        second = CliRunner().invoke(cli, ["--kb", str(kb), "serve", "--port", str(free_port())])
        assert second.exit_code == 1
        assert f"A chat server for this knowledge base is already answering at {base} (process {server.pid})" \
            in second.output

        by_label(at.button, "Stop the chat server").click().run()
        assert server.wait(timeout=30) == 0  # Ctrl-C: uvicorn ends cleanly, and says goodbye
        assert servers.running(kb) == []
        assert "The chat server is not running" in texts(at.info)
        assert not at.get("iframe") and not at.error


def test_preview_frames_the_running_chat_server_and_stop_stops_it(monkeypatch, kb, model_cache):
    port = free_port()
    jobs.start(kb, "serve", ["serve", "--port", str(port)])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            job = jobs.status(kb, "serve")
            assert job.running, f"kbchat serve stopped: {job.log_tail}"
            assert time.monotonic() < deadline, "kbchat serve did not answer /health within 4 minutes"
            time.sleep(0.5)

        at = open_page(monkeypatch, kb, WIDGET)
        assert f"The chat server is running at {base}" in texts(at.success)
        frames = at.get("iframe")
        assert [f.proto.src for f in frames] == [f"{base}/preview?v=0"]
        with BotRecords(kb) as records:
            assert f'data-bot="{records.public_key()}"' in httpx.get(f"{base}/preview").text
            key = records.public_key()
        assert f'<script src="{base}/widget.js"' in texts(at.code)

        # a saved setting reaches the running widget, and the preview reloads to show it
        by_label(at.text_input, "Bot name").input("Ada's Pottery")
        at.form_submit_button[0].click().run()
        assert [f.proto.src for f in at.get("iframe")] == [f"{base}/preview?v=1"]
        config = httpx.get(f"{base}/api/config", headers={"X-Bot-Key": key}).json()
        assert config["name"] == "Ada's Pottery"

        by_label(at.button, "Stop the chat server").click().run()
        assert not jobs.status(kb, "serve").running
        assert not at.get("iframe")
        assert "The chat server is not running" in texts(at.info)
        assert not at.error  # a stop on request is no failure
    finally:
        jobs.stop(kb, "serve")
        for _ in range(100):
            if not jobs.status(kb, "serve").running:
                break
            time.sleep(0.1)


# -- Insights -------------------------------------------------------------------------------------
def seed(kb) -> None:
    """Two visitors: one answered twice from the opening-hours FAQ entry (rated helpful), one declined,
    one unsure; one lead whose message would be a formula in a spreadsheet."""
    from kb.store import Store
    from rag.prompts import citation

    with Store(kb) as store:
        hours = next(c for c in store.faqs() if c.faq.question == "What are your opening hours?")
    cites = [citation(1, hours, 0.9)]
    with BotRecords(kb) as records:
        first = records.log("visitor-one", Answer("rag", "When are you open?", "9 to 5 [1].", "generated", cites,
                                                  confidence=0.9))
        records.log("visitor-one", Answer("rag", "when are you open?", "9 to 5 [1].", "faq", cites, confidence=0.95))
        records.log("visitor-two", Answer("rag", DECLINED, Settings().answers.fallback_message, "refused", confidence=0.1))
        records.log("visitor-two", Answer("rag", UNSURE, "Pets are welcome [1].", "quoted", confidence=0.4))
        records.feedback(first, "visitor-one", helpful=True)
        lead = records.add_lead("visitor-two", "Ada Lovelace", "ada@example.com", "=HYPERLINK(\"x\") call me", True)
        records.set_webhook_status(lead.id, "sent")


@pytest.fixture
def media(monkeypatch):
    """What a download button would give: AppTest's in-memory media storage, kept after the run."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    from streamlit.testing.v1 import app_test

    made = []

    class Kept(MemoryMediaFileStorage):
        def __init__(self, endpoint):
            super().__init__(endpoint)
            made.append(self)

    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", Kept)

    def content(url: str) -> bytes:
        return made[-1].get_file(url.rsplit("/", 1)[-1]).content

    return content


def test_insights_show_totals_gaps_conversations_and_leads(monkeypatch, kb, media):
    seed(kb)
    at = open_page(monkeypatch, kb, INSIGHTS)
    assert {m.label: m.value for m in at.metric} == {
        "Questions": "4", "Chats": "2", "Declined": "1", "Helpful 👍": "1", "Not helpful 👎": "0"}

    tables = {tuple(d.value.columns): d.value for d in at.dataframe}
    top = tables[("Question", "Times asked")]
    recent = next(t for cols, t in tables.items() if "Declined" in cols)
    leads = tables[("Time", "Name", "Email", "Message", "Webhook")]
    assert top.iloc[0].tolist() == ["When are you open?", 2]  # the case does not split a question
    gaps = [e.label for e in at.expander if "asked" in e.label]
    assert any(DECLINED.rstrip("?") in g and "declined it" in g for g in gaps)
    assert any(UNSURE.rstrip("?") in g and "unsure" in g for g in gaps)
    assert len(gaps) == 2
    # What the answers use: the FAQ file answered 2 of 4; of its 4 entries only the hours one was used.
    used = tables[("FAQ question", "Answers", "Where")]
    assert used.values.tolist() == [["What are your opening hours?", 2, "faq.csv, row 3"]]
    never = next(e for e in at.expander if e.label.startswith("Never used"))
    assert never.label == "Never used: 0 documents, 3 FAQ entries" and "Are you open on holidays?" in texts(never.markdown)
    # Lead signals: visitor-one asked when the studio opens (no lead); visitor-two asked nothing buying-like.
    signals = next(t for cols, t in tables.items() if "Signals" in cols)
    assert signals[["Signals", "Left a lead", "Chat"]].values.tolist() == [["asked when you are open", "", "visitor-"]]
    assert recent["Question"].tolist() == [UNSURE, DECLINED, "when are you open?", "When are you open?"]
    assert recent["Declined"].tolist() == ["", "yes", "", ""]
    assert recent["Feedback"].tolist() == ["", "", "", "👍"]
    assert leads[["Name", "Email", "Webhook"]].values.tolist() == [["Ada Lovelace", "ada@example.com", "sent"]]

    button = by_label(at.download_button, "Download as CSV")
    csv_text = media(button.proto.url).decode("utf-8")
    assert csv_text.startswith("\ufeffTime,Name,Email,Message,Agreed to be contacted,Webhook,Chat")
    assert "Ada Lovelace,ada@example.com,\"'=HYPERLINK(\"\"x\"\") call me\",yes,sent,visitor-two" in csv_text

    by_label(at.checkbox, "Only declined questions").check().run()
    assert next(d.value for d in at.dataframe if "Declined" in d.value.columns)["Question"].tolist() == [DECLINED]
    by_label(at.text_input, "Find").input("open").run()
    assert "No conversations match." in texts(at.info)


def test_writing_an_answer_for_a_gap_saves_it_in_the_faq(monkeypatch, kb):
    seed(kb)
    at = open_page(monkeypatch, kb, INSIGHTS)
    gap = next(e for e in at.expander if DECLINED.rstrip("?") in e.label)
    gap.text_area[0].input("No, we only do pottery. Try Spoke & Wheel on Main Street.")
    gap.button[0].click().run()

    assert not at.exception and not at.error
    assert "Saved: the chatbot now answers this from your FAQ" in texts(at.success)
    assert (DECLINED, "No, we only do pottery. Try Spoke & Wheel on Main Street.") in corrections.answers(kb)
    at.run()
    gap = next(e for e in at.expander if DECLINED.rstrip("?") in e.label)
    assert gap.label.startswith("✅") and gap.text_area[0].value.startswith("No, we only do pottery.")


def test_an_empty_answer_is_refused_in_plain_words(monkeypatch, kb):
    seed(kb)
    at = open_page(monkeypatch, kb, INSIGHTS)
    gap = next(e for e in at.expander if UNSURE.rstrip("?") in e.label)
    gap.button[0].click().run()
    assert "The answer is empty" in texts(at.error)
    assert corrections.answers(kb) == []


def test_a_visitors_data_is_exported_and_erased_from_insights(monkeypatch, kb, media):
    seed(kb)
    at = open_page(monkeypatch, kb, INSIGHTS)
    assert by_label(at.selectbox, "E-mail address").value == "ada@example.com"
    assert "Stored about this visitor: 2 answers and 1 lead." in texts(at.caption)
    exported = json.loads(media(by_label(at.download_button, "Export (JSON)").proto.url))
    assert [x["question"] for x in exported["exchanges"]] == [DECLINED, UNSURE]
    assert by_label(at.button, "Erase").disabled
    by_label(at.checkbox, "Yes, delete these 2 answers and 1 lead for good").check().run()
    by_label(at.button, "Erase").click().run()
    assert not at.exception
    with BotRecords(kb) as records:
        assert {x.session for x in records.exchanges()} == {"visitor-one"} and not records.leads()


def test_retention_says_what_it_will_delete_before_it_is_saved(monkeypatch, kb):
    seed(kb)
    import sqlite3

    with sqlite3.connect(kb / "kbchat.db") as db:  # one visitor's chat looks 100 days old
        db.execute("UPDATE exchanges SET at = '2020-01-01T00:00:00+00:00' WHERE session = 'visitor-one'")
    at = open_page(monkeypatch, kb, INSIGHTS)
    by_label(at.number_input, "Delete conversations and leads older than this many days (0: keep them)").set_value(90).run()
    assert "Saving deletes 2 answers and 0 leads now" in texts(at.warning)
    with BotRecords(kb) as records:
        assert len(records.exchanges()) == 4  # nothing deleted before Save
    by_label(at.button, "Save").click().run()
    assert not at.exception and Settings.load(kb).server.retention_days == 90
    with BotRecords(kb) as records:
        assert {x.session for x in records.exchanges()} == {"visitor-two"}


# -- Inbox ------------------------------------------------------------------------------------------
INBOX = "views/inbox.py"


def test_the_inbox_answers_a_visitor_saves_the_reply_as_faq_and_hands_back(monkeypatch, kb):
    at = open_page(monkeypatch, kb, INBOX)
    assert "Nobody is waiting for a person" in texts(at.info)
    with BotRecords(kb) as records:
        records.log("visitor-three", Answer("rag", "Can I rent the studio for a party?", Settings().answers.fallback_message,
                                            "refused", confidence=0.2))
        records.ask_for_person("visitor-three", "Can I rent the studio for a party?")
        records.add_message("visitor-three", "visitor", "For about 12 people?")
    at = open_page(monkeypatch, kb, INBOX)
    assert "1 visitor waiting" in texts(at.caption)
    chat = [m.markdown[0].value for m in at.chat_message]
    assert chat == ["Can I rent the studio for a party?", md_text(Settings().answers.fallback_message), "For about 12 people?"]

    by_label(at.text_area, "Your reply").input("Yes: Saturday evenings, up to 15 people, $300.")
    by_label(at.checkbox, "Also save this reply as the FAQ answer to the visitor's question, so the assistant gives "
                          "it from now on").check()
    by_label(at.text_input, "The question, as customers would ask it").input("Can I rent the studio for a party?")
    at.form_submit_button[0].click().run()
    assert not at.exception and not at.error, at.error
    assert "Also saved as the FAQ answer" in texts(at.success)
    with BotRecords(kb) as records:
        assert [(m.sender, m.text) for m in records.messages("visitor-three")][-1] == (
            "team", "Yes: Saturday evenings, up to 15 people, $300.")
        assert records.handoff("visitor-three").state == "live"
    assert ("Can I rent the studio for a party?", "Yes: Saturday evenings, up to 15 people, $300.") in corrections.answers(kb)

    by_label(at.button, "Hand back to the assistant").click().run()
    with BotRecords(kb) as records:
        assert records.handoff("visitor-three").state == "bot"
    assert "Nobody is waiting for a person" in texts(at.info)


def md_text(text: str) -> str:
    from ui.appkit import md

    return md(text)
