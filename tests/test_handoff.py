"""Live handoff to a person through the HTTP API with the real models: a visitor asks for a person,
the bot goes quiet in that chat (their messages wait for the team), the owner is told (webhook and
inbox), answers, can keep the answer as an FAQ, and hands the chat back. Also the full-page /chat."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from conftest import sample_kb, wait_for
from fastapi.testclient import TestClient

from kb.bot import BotRecords
from kb.settings import Settings
from ui.api import WAITING, create_app

SESSION = "visitor-handoff-1"
OTHER = "visitor-other-22"


@pytest.fixture(scope="module")
def hook():
    """A webhook receiver on loopback, as the owner's automation would be."""
    got: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}/hook", got
    httpd.shutdown()


@pytest.fixture(scope="module")
def kb(tmp_path_factory, model_cache, hook):
    kb = sample_kb(tmp_path_factory.mktemp("handoff"), 8, "price_list.md")
    Settings(rate_limit_per_ip=1000, rate_limit_per_session=1000, lead_webhook_url=hook[0],
             allowed_origins=("https://www.example.com",)).save(kb)
    return kb


@pytest.fixture(scope="module")
def api(kb):
    with TestClient(create_app(kb)) as client:
        with BotRecords(kb) as records:
            keys = {"public": {"X-Bot-Key": records.public_key()},
                    "admin": {"Authorization": f"Bearer {records.rotate_admin_token()}"}}
        yield client, keys


def _ask(client, keys, question, session=SESSION):
    r = client.post("/api/chat/stream", json={"question": question, "session_id": session}, headers=keys["public"])
    assert r.status_code == 200, r.text
    return [(b.split("\n")[0][len("event: "):], json.loads(b.split("\n")[1][len("data: "):]))
            for b in r.text.strip().split("\n\n")]


def test_a_visitor_gets_a_person_and_the_bot_stays_quiet_until_handed_back(api, hook, kb):
    client, keys = api
    url, got = hook
    first = _ask(client, keys, "Do you have parking for a wheelchair van?")
    assert first[-1][0] == "answer"
    asked = client.post("/api/handoff", json={"session_id": SESSION, "question": "Do you have parking for a wheelchair van?"},
                        headers=keys["public"])
    assert asked.status_code == 200 and asked.json() == {"state": "waiting", "message": WAITING, "code": "waiting_long"}
    # The owner is told: the webhook gets the handoff, the inbox lists the chat.
    note = wait_for(lambda: [g for g in got if g["type"] == "handoff"], 30, "the handoff webhook")[0]
    assert note["session_id"] == SESSION and "wheelchair" in note["question"]
    inbox = client.get("/api/admin/handoffs", headers=keys["admin"]).json()
    assert [(h["session"], h["state"]) for h in inbox] == [(SESSION, "waiting")]
    wait_for(lambda: client.get("/api/admin/handoffs", headers=keys["admin"]).json()[0]["webhook"] == "sent", 30,
             "the webhook status")
    # Asking again changes nothing and tells nobody twice.
    assert client.post("/api/handoff", json={"session_id": SESSION}, headers=keys["public"]).json()["state"] == "waiting"

    # While with a person, the bot does not answer: the message waits for the team.
    quiet = _ask(client, keys, "How much is a class?")
    assert [e for e, _ in quiet] == ["handoff"] and quiet[0][1]["state"] == "waiting"
    plain = client.post("/api/chat", json={"question": "Hello?", "session_id": SESSION}, headers=keys["public"]).json()
    assert plain["handoff"]["state"] == "waiting" and "text" not in plain
    # Another visitor's chat is not affected.
    assert _ask(client, keys, "How much is the canvas studio apron?", OTHER)[-1][0] == "answer"

    # The owner reads the chat and answers; the visitor's poll gets it.
    chat = client.get("/api/admin/handoffs/chat", params={"session_id": SESSION}, headers=keys["admin"]).json()
    said = [(i["sender"], i["text"]) for i in chat["conversation"]]
    assert said[0] == ("visitor", "Do you have parking for a wheelchair van?") and said[1][0] == "bot"
    assert said[2:] == [("visitor", "How much is a class?"), ("visitor", "Hello?")]
    reply = "Yes: two accessible bays right by the door."
    sent = client.post("/api/admin/handoffs/reply", json={"session_id": SESSION, "text": reply,
                                                          "save_as_faq": "Do you have accessible parking?"},
                       headers=keys["admin"])
    assert sent.status_code == 200 and sent.json()["saved_as_faq"]["status"] == "added", sent.text
    news = client.get("/api/handoff", params={"session_id": SESSION}, headers=keys["public"]).json()
    assert news["state"] == "live" and [m["text"] for m in news["messages"]] == [reply]
    assert client.get("/api/handoff", params={"session_id": SESSION, "after": news["messages"][0]["id"]},
                      headers=keys["public"]).json()["messages"] == []

    # Handed back: the bot answers again, and the saved reply is now a curated answer for everyone.
    released = client.post("/api/admin/handoffs/release", json={"session_id": SESSION}, headers=keys["admin"])
    assert released.json()["state"] == "bot" and client.get("/api/admin/handoffs", headers=keys["admin"]).json() == []
    again = _ask(client, keys, "do you have accessible parking", OTHER)[-1][1]
    assert again["method"] == "faq" and again["text"] == reply
    assert client.get("/api/handoff", params={"session_id": SESSION}, headers=keys["public"]).json()["state"] == "bot"


def test_the_visitor_can_go_back_to_the_assistant(api):
    client, keys = api
    session = "visitor-goes-back"
    client.post("/api/handoff", json={"session_id": session}, headers=keys["public"])
    assert client.post("/api/handoff/back", json={"session_id": session}, headers=keys["public"]).json() == {"state": "bot"}
    assert _ask(client, keys, "How much is the canvas studio apron?", session)[-1][0] == "answer"


def test_the_team_reply_does_not_wait_for_an_answer_being_written(api):
    """A plain reply only adds a message; only keeping it as an FAQ answer changes the store, which
    waits until no answer is being written."""
    import threading

    client, keys = api
    lock = client.app.state.bot.live.lock
    result = {}
    lock.acquire()  # an answer is being written
    try:
        sender = threading.Thread(target=lambda: result.update(sent=client.post(
            "/api/admin/handoffs/reply", json={"session_id": "session-team-busy", "text": "One moment, please."},
            headers=keys["admin"])))
        sender.start()
        sender.join(120)  # the state waited for: the reply is sent while the model is held
        assert "sent" in result and result["sent"].status_code == 200, result
    finally:
        lock.release()
        sender.join()


def test_handoff_input_is_checked(api):
    client, keys = api
    assert client.post("/api/handoff", json={"session_id": "x"}).status_code == 401  # no key
    bad = client.post("/api/handoff", json={"session_id": "no spaces allowed"}, headers=keys["public"])
    assert bad.status_code == 422 and "session_id" in bad.json()["detail"]
    empty = client.post("/api/admin/handoffs/reply", json={"session_id": SESSION, "text": "  "}, headers=keys["admin"])
    assert empty.status_code == 400 and "message is empty" in empty.json()["detail"]
    assert client.post("/api/admin/handoffs/reply", json={"session_id": SESSION, "text": "hi"},
                       headers=keys["public"]).status_code == 403
    missing = client.get("/api/admin/handoffs/chat", params={"session_id": "nobody-here"}, headers=keys["admin"])
    assert missing.status_code == 404 and "no chat" in missing.json()["detail"]
    foreign = client.post("/api/handoff", json={"session_id": "visitor-foreign"},
                          headers={**keys["public"], "Origin": "https://evil.example.net"})
    assert foreign.status_code == 403


def test_the_full_page_chat_is_the_widget_with_the_same_key_and_origin_rules(api, kb):
    client, keys = api
    page = client.get("/chat")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f'data-bot="{keys["public"]["X-Bot-Key"]}"' in page.text and 'data-mode="page"' in page.text
    assert f"<title>{Settings().widget.bot_name}</title>" in page.text
    assert page.headers["content-security-policy"] == "frame-ancestors 'self' https://www.example.com"
    client.put("/api/admin/settings", json={"bot_name": "Ask <Copper> & co"}, headers=keys["admin"])
    assert "<title>Ask &lt;Copper&gt; &amp; co</title>" in client.get("/chat").text
