"""The chat HTTP API with the real models on a small sample knowledge base: every endpoint, keys and
admin rights, origins, limits, malformed input, the busy queue, logging and leads."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from conftest import sample_kb
from fastapi.testclient import TestClient

from kb.bot import BotRecords
from kb.settings import Settings
from ui.api import BUSY, TOO_FAST, create_app, origin_allowed

FAQ_QUESTION = "Where is Copper Kiln Pottery Studio located?"
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def kb(tmp_path_factory, model_cache):
    folder = tmp_path_factory.mktemp("api")
    kb = sample_kb(folder, 8, "price_list.md")
    Settings(max_new_tokens=40, rate_limit_per_ip=1000, rate_limit_per_session=1000).save(kb)
    return kb


@pytest.fixture(scope="module")
def client(kb):
    with TestClient(create_app(kb)) as c:
        yield c


@pytest.fixture(scope="module")
def keys(kb, client):
    with BotRecords(kb) as records:
        return {"public": records.public_key(), "admin": records.rotate_admin_token()}


def _pub(keys, **extra):
    return {"X-Bot-Key": keys["public"], **extra}


def _admin(keys):
    return {"Authorization": f"Bearer {keys['admin']}"}


def _chat(client, keys, question, session="session-0001", **extra):
    return client.post("/api/chat", json={"question": question, "session_id": session, **extra}, headers=_pub(keys))


def _events(text: str) -> list[tuple[str, dict]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_health_and_widget_need_no_key(client):
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok" and health.json()["documents"] == 2
    assert "rag" in health.json()["paths"]
    widget = client.get("/widget.js")
    assert widget.status_code == 200 and widget.headers["content-type"].startswith("application/javascript")
    assert "data-bot" in widget.text
    zipped = client.get("/widget.js", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers.get("content-encoding") == "gzip" and zipped.text == widget.text


def test_public_endpoints_need_the_public_key(client, keys):
    assert client.get("/api/config").status_code == 401
    wrong = client.get("/api/config", headers={"X-Bot-Key": "pk_wrong"})
    assert wrong.status_code == 401 and "key is missing or wrong" in wrong.json()["detail"]
    config = client.get("/api/config", headers=_pub(keys)).json()
    assert config["name"] == Settings().widget.bot_name and config["color"].startswith("#") and config["suggested_questions"] == []
    assert _chat(client, {"public": "pk_nope"}, FAQ_QUESTION).status_code == 401


def test_chat_answers_logs_and_takes_feedback(client, keys):
    r = _chat(client, keys, FAQ_QUESTION, session="session-chat")
    assert r.status_code == 200
    a = r.json()
    assert a["path"] == "rag" and a["method"] == "faq" and "214 Alder Street" in a["text"]
    assert isinstance(a["exchange_id"], int) and a["citations"][0]["label"] == "Our FAQ"  # not "faq.csv, row 2"
    # Visitors never see the owner's notes or where the files are on the owner's computer.
    assert "notes" not in a and a["citations"][0]["url"] is None
    assert str(client.app.state.bot.kb_dir.parent) not in r.text
    assert client.post("/api/feedback", json={"exchange_id": a["exchange_id"], "session_id": "session-chat", "rating": "up"},
                       headers=_pub(keys)).json() == {"ok": True}
    # Another chat cannot rate it; a made-up rating is refused in words.
    other = client.post("/api/feedback", json={"exchange_id": a["exchange_id"], "session_id": "session-other", "rating": "down"},
                        headers=_pub(keys))
    assert other.status_code == 404 and "no such answer" in other.json()["detail"]
    odd = client.post("/api/feedback", json={"exchange_id": a["exchange_id"], "session_id": "session-chat", "rating": "meh"},
                      headers=_pub(keys))
    assert odd.status_code == 422 and "rating" in odd.json()["detail"]
    logged = client.get("/api/admin/conversations", params={"session": "session-chat"}, headers=_admin(keys)).json()
    assert len(logged) == 1 and logged[0]["question"] == FAQ_QUESTION and logged[0]["feedback"] == 1
    assert logged[0]["path"] == "rag" and not logged[0]["refused"] and logged[0]["latency_ms"] >= 0


def test_streaming_sends_pieces_then_the_answer(client, keys):
    r = client.post("/api/chat/stream", json={"question": "How much is a canvas studio apron?", "session_id": "session-stream"},
                    headers=_pub(keys))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _events(r.text)
    kinds = [k for k, _ in events]
    steps = [d for k, d in events if k == "step"]  # what it does while the visitor waits, in words
    assert steps and steps[0] == {"step": "searching", "text": "Looking in our documents\u2026"}
    pieces = len(kinds) - len(steps) - 1
    assert kinds == ["step"] * len(steps) + ["piece"] * pieces + ["answer"] and pieces >= 1
    answer = events[-1][1]
    assert "".join(d["text"] for k, d in events if k == "piece") == answer["text"]
    assert answer["citations"] and answer["exchange_id"] > 0
    labels = [c["label"] for c in answer["citations"]]  # titles and sections, as a visitor reads them
    assert "Copper Kiln Pottery Studio - Price List: Tools and accessories" in labels, labels
    assert not any(".md" in label or ".csv" in label or "row " in label for label in labels), labels
    snippets = " ".join(c["snippet"] for c in answer["citations"])  # the Markdown's marks left out
    assert "$28" in snippets and "|---" not in snippets and "**" not in snippets and "\n#" not in snippets


def test_unavailable_or_unknown_paths_are_explained(client, keys):
    tuned = _chat(client, keys, FAQ_QUESTION, path="tuned")
    assert tuned.status_code == 503 and "kbchat tune" in tuned.json()["detail"]
    assert _chat(client, keys, FAQ_QUESTION, path="gpt-9").status_code == 400


def test_leads_are_validated_stored_and_sent_to_the_webhook_even_after_a_503(client, keys):
    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(503 if len(received) == 1 else 204)  # down for a moment at first
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/lead"
        assert client.put("/api/admin/settings", json={"lead_webhook_url": url}, headers=_admin(keys)).status_code == 200
        lead = {"session_id": "session-lead", "name": "Ana Ruiz", "email": "ana@example.com", "message": "Call me", "consent": True}
        bad_email = client.post("/api/lead", json={**lead, "email": "ana-at-example"}, headers=_pub(keys))
        assert bad_email.status_code == 400 and "email address" in bad_email.json()["detail"]
        no_consent = client.post("/api/lead", json={**lead, "consent": False}, headers=_pub(keys))
        assert no_consent.status_code == 400 and "tick the box" in no_consent.json()["detail"]
        ok = client.post("/api/lead", json=lead, headers=_pub(keys))
        assert ok.status_code == 200 and ok.json()["ok"]
    finally:
        server.shutdown()
        client.put("/api/admin/settings", json={"lead_webhook_url": ""}, headers=_admin(keys))
    assert len(received) == 2 and received[0] == received[1]  # tried again after the 503
    assert received[0]["email"] == "ana@example.com" and received[0]["type"] == "lead"
    stored = client.get("/api/admin/leads", headers=_admin(keys)).json()
    assert [(x["name"], x["webhook"]) for x in stored] == [("Ana Ruiz", "sent")]


def test_admin_needs_the_admin_token_and_never_the_public_key(client, keys):
    assert client.get("/api/admin/settings").status_code == 401
    public = client.get("/api/admin/leads", headers={"Authorization": f"Bearer {keys['public']}"})
    assert public.status_code == 403 and "public key cannot open admin" in public.json()["detail"]
    assert client.get("/api/admin/conversations", headers=_pub(keys)).status_code == 403
    assert client.get("/api/admin/settings", headers={"Authorization": "Bearer adm_guess"}).status_code == 401
    settings = client.get("/api/admin/settings", headers=_admin(keys)).json()
    assert settings["visitor_path"] == "rag" and settings["allowed_origins"] == ["http://localhost:*", "http://127.0.0.1:*"]
    sources = client.get("/api/admin/sources", headers=_admin(keys)).json()
    assert sorted(s["uri"].rsplit("/", 1)[-1] for s in sources) == ["faq.csv", "price_list.md"]


def test_admin_settings_change_the_widget_and_bad_values_are_explained(client, keys, kb):
    changed = client.put("/api/admin/settings", json={"bot_name": "Ask Copper Kiln", "suggested_questions": ["When are you open?"]},
                         headers=_admin(keys))
    assert changed.status_code == 200 and changed.json()["bot_name"] == "Ask Copper Kiln"
    assert client.get("/api/config", headers=_pub(keys)).json()["suggested_questions"] == ["When are you open?"]
    assert Settings.load(kb).widget.bot_name == "Ask Copper Kiln"  # saved in the knowledge base
    bad = client.put("/api/admin/settings", json={"bot_color": "green"}, headers=_admin(keys))
    assert bad.status_code == 400 and "colour like #2f6f4f" in bad.json()["detail"]
    unknown = client.put("/api/admin/settings", json={"colour": "#000000"}, headers=_admin(keys))
    assert unknown.status_code == 400 and "Unknown setting 'colour'" in unknown.json()["detail"]
    assert client.put("/api/admin/settings", content=b"[1, 2", headers=_admin(keys)).status_code == 400
    assert Settings.load(kb).widget.bot_color == Settings().widget.bot_color  # nothing half-written


def test_only_allowed_origins_may_call_the_public_endpoints(client, keys):
    evil = _pub(keys, Origin="https://evil.example")
    denied = client.post("/api/chat", json={"question": FAQ_QUESTION, "session_id": "session-origin"}, headers=evil)
    assert denied.status_code == 403 and "not allowed to use this chat" in denied.json()["detail"]
    ok = client.get("/api/config", headers=_pub(keys, Origin="http://localhost:5173"))
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "http://localhost:5173"
    preflight = client.options("/api/chat", headers={"Origin": "http://127.0.0.1:9000", "Access-Control-Request-Method": "POST",
                                                      "Access-Control-Request-Headers": "content-type,x-bot-key"})
    assert preflight.status_code == 204 and "X-Bot-Key" in preflight.headers["access-control-allow-headers"]
    assert client.options("/api/chat", headers={"Origin": "https://evil.example"}).status_code == 403
    # Admin pages are never for a web page, however allowed its origin.
    assert client.get("/api/admin/settings", headers={**_admin(keys), "Origin": "http://localhost:5173"}).status_code == 403


def test_origin_rules():
    allowed = ("https://www.example.com", "http://localhost:*")
    assert origin_allowed("https://www.example.com", allowed) and origin_allowed("http://localhost:8080", allowed)
    assert origin_allowed("http://localhost", allowed)
    assert not origin_allowed("https://example.com", allowed) and not origin_allowed("http://localhost.evil.com", allowed)
    assert not origin_allowed("https://www.example.com:8443", allowed) and origin_allowed("https://any.site", ("*",))


def test_malformed_and_oversized_requests_get_plain_4xx(client, keys):
    headers = _pub(keys, **{"Content-Type": "application/json"})
    broken = client.post("/api/chat", content=b'{"question": ', headers=headers)
    assert broken.status_code == 422 and broken.json()["detail"] == "The request body is not valid JSON."
    missing = client.post("/api/chat", json={"session_id": "session-0002"}, headers=_pub(keys))
    assert missing.status_code == 422 and "question: Field required" in missing.json()["detail"]
    empty = _chat(client, keys, "   ")
    assert empty.status_code == 422 and "question is empty" in empty.json()["detail"]
    huge = client.post("/api/chat", content=b'{"question": "' + b"a" * 100_000 + b'"}', headers=headers)
    assert huge.status_code == 413 and "too large" in huge.json()["detail"]
    long = _chat(client, keys, "How much is a class? " * 250)  # 5,250 characters: the app's limit, in its words
    assert long.status_code == 422 and long.json()["detail"] == (
        "Questions can be up to 1,000 characters, and this one has 5,249. Please shorten it and send it again.")
    assert client.get("/api/config", headers=_pub(keys)).json()["max_question_chars"] == 1000  # the widget's limit
    bad_session = client.post("/api/chat", json={"question": "Hi", "session_id": "x"}, headers=_pub(keys))
    assert bad_session.status_code == 422
    nowhere = client.get("/api/nothing")
    assert nowhere.status_code == 404 and nowhere.json() == {"detail": "There is nothing here."}
    for r in (broken, missing, huge, long, nowhere):
        assert "Traceback" not in r.text


def test_rate_limits_answer_429_with_a_friendly_message(client, keys):
    assert client.put("/api/admin/settings", json={"rate_limit_per_session": 2}, headers=_admin(keys)).status_code == 200
    try:
        codes = [_chat(client, keys, FAQ_QUESTION, session="session-fast").status_code for _ in range(3)]
        limited = _chat(client, keys, FAQ_QUESTION, session="session-fast")
        assert codes == [200, 200, 429] and limited.json() == {"detail": TOO_FAST, "code": "too_fast"}
        assert int(limited.headers["retry-after"]) >= 1
        assert _chat(client, keys, FAQ_QUESTION, session="session-slow").status_code == 200  # other chats go on
    finally:
        client.put("/api/admin/settings", json={"rate_limit_per_session": 1000}, headers=_admin(keys))


def test_fifty_concurrent_fast_path_chats_succeed(client, keys):
    questions = ["What are your opening hours?", FAQ_QUESTION, "How can I contact the studio?", "Are you open on holidays?"]
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda i: _chat(client, keys, questions[i % 4], session=f"session-many-{i:03d}"), range(50)))
    assert [r.status_code for r in results] == [200] * 50
    assert all(r.json()["method"] == "faq" for r in results)
    assert len({r.json()["exchange_id"] for r in results}) == 50


def test_a_busy_model_answers_503_after_the_wait_instead_of_piling_up(client, keys):
    assert client.put("/api/admin/settings", json={"answer_timeout_s": 0.2}, headers=_admin(keys)).status_code == 200
    lock = client.app.state.bot.live.lock
    lock.acquire()  # another answer is being written
    try:
        busy = _chat(client, keys, FAQ_QUESTION, session="session-busy")
        stream = client.post("/api/chat/stream", json={"question": FAQ_QUESTION, "session_id": "session-busy"}, headers=_pub(keys))
    finally:
        lock.release()
        client.put("/api/admin/settings", json={"answer_timeout_s": 60.0}, headers=_admin(keys))
    assert busy.status_code == 503 and busy.json() == {"detail": BUSY, "code": "busy"} and stream.status_code == 503
    assert _chat(client, keys, FAQ_QUESTION, session="session-busy").status_code == 200  # the model was released


def test_insights_list_top_questions_and_content_gaps(client, keys):
    for i in range(2):
        _chat(client, keys, "Do you repair bicycles?", session=f"session-gap-{i}")
    insights = client.get("/api/admin/insights", headers=_admin(keys)).json()
    assert insights["questions"] >= 3 and insights["top_questions"][0]["count"] >= 2
    gaps = {g["question"]: g for g in insights["content_gaps"]}
    assert gaps["Do you repair bicycles?"]["count"] == 2 and gaps["Do you repair bicycles?"]["refused"]


def test_a_running_server_follows_settings_changed_outside_it(client, keys, kb):
    Settings.load(kb).updated(welcome_message="Hello from the command line").save(kb)
    try:
        assert client.get("/api/config", headers=_pub(keys)).json()["welcome_message"] == "Hello from the command line"
        (kb / "settings.toml").write_text("bot_color = 'green'\n", encoding="utf-8")  # broken: the last good ones stay
        assert client.get("/api/config", headers=_pub(keys)).json()["welcome_message"] == "Hello from the command line"
    finally:
        Settings(max_new_tokens=40, rate_limit_per_ip=1000, rate_limit_per_session=1000).save(kb)


def test_the_preview_page_embeds_the_widget_and_may_call_its_own_server(client, keys):
    page = client.get("/preview")
    assert page.status_code == 200 and f'data-bot="{keys["public"]}"' in page.text and 'src="widget.js"' in page.text
    own = client.get("/api/config", headers=_pub(keys, Origin="http://testserver"))  # TestClient's own origin
    assert own.status_code == 200 and own.headers["access-control-allow-origin"] == "http://testserver"


def test_keys_command_prints_and_rotates_the_public_key(kb, client):
    from click.testing import CliRunner

    from ui.cli import cli

    first = json.loads(CliRunner().invoke(cli, ["--kb", str(kb), "keys", "--json"]).output)
    shown = CliRunner().invoke(cli, ["--kb", str(kb), "keys"]).output
    assert first["public_key"].startswith("pk_") and f'data-bot="{first["public_key"]}"' in shown
    rotated = CliRunner().invoke(cli, ["--kb", str(kb), "keys", "--rotate", "public", "--json"])
    new = json.loads(rotated.output)["public_key"]
    assert new != first["public_key"]
    assert client.get("/api/config", headers={"X-Bot-Key": first["public_key"]}).status_code == 401
    assert client.get("/api/config", headers={"X-Bot-Key": new}).status_code == 200
    admin = json.loads(CliRunner().invoke(cli, ["--kb", str(kb), "keys", "--rotate", "admin", "--json"]).output)
    assert admin["admin_token"].startswith("adm_")
    assert client.get("/api/admin/settings", headers={"Authorization": f"Bearer {admin['admin_token']}"}).status_code == 200



def test_the_admin_exports_and_erases_one_visitors_data(kb, client):
    with BotRecords(kb) as records:  # the module's keys may have been rotated by an earlier test
        keys = {"public": records.public_key(), "admin": records.rotate_admin_token()}
    session = "visitor-rights-01"
    assert _chat(client, keys, FAQ_QUESTION, session=session).status_code == 200
    lead = client.post("/api/lead", json={"session_id": session, "name": "Grace", "email": "grace@example.com",
                                          "message": "Book a class", "consent": True}, headers=_pub(keys))
    assert lead.status_code == 200
    assert client.get("/api/admin/visitor", params={"session_id": session}, headers=_pub(keys)).status_code == 403
    got = client.get("/api/admin/visitor", params={"email": "grace@example.com"}, headers=_admin(keys))
    assert got.status_code == 200
    data = got.json()
    assert data["sessions"] == [session] and [x["question"] for x in data["exchanges"]] == [FAQ_QUESTION]
    assert [x["name"] for x in data["leads"]] == ["Grace"]
    gone = client.delete("/api/admin/visitor", params={"session_id": session}, headers=_admin(keys))
    assert gone.status_code == 200 and gone.json()["erased"] | {"sessions": []} == {"exchanges": 1, "leads": 1, "messages": 0, "sessions": []}
    again = client.get("/api/admin/visitor", params={"session_id": session}, headers=_admin(keys))
    assert again.status_code == 404 and "Nothing is stored about the chat" in again.json()["detail"]
    neither = client.delete("/api/admin/visitor", headers=_admin(keys))
    assert neither.status_code == 400 and "Name one visitor" in neither.json()["detail"]
