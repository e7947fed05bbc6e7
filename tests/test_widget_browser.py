"""The widget in a real browser: `kbchat serve` in its own process, a separate host page on another
port that embeds the one script tag (with hostile CSS), and headless Chromium driven by selenium.

A visitor opens the chat, asks a question, sees the answer stream in with its sources, and a
document's HTML payload shows as text. `make test` installs Debian's chromium and chromium-driver
when they are missing (see the Makefile)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import kbchat_server, require_chromium, sample_kb, wait_for

from kb.bot import BotRecords

require_chromium()
PAYLOAD = "<img src=x onerror=alert(1)><script>alert(2)</script>"
SECRET_QUESTION = "What is written on the studio door sign?"
HOSTILE_CSS = "* { font-size: 40px !important; color: red !important; } div { display: block !important; }"

@pytest.fixture(scope="module")
def widget_kb(tmp_path_factory):
    """A small sample knowledge base with one FAQ answer carrying an HTML payload."""
    return sample_kb(tmp_path_factory.mktemp("widget"), 8, "price_list.md",
                     extra_faq=((SECRET_QUESTION, f"The sign says {PAYLOAD} welcome."),))


@pytest.fixture(scope="module")
def server(widget_kb, model_cache):
    """`kbchat serve` on widget_kb."""
    kb = widget_kb
    with BotRecords(kb) as records:
        records.ensure_keys()
        key = records.public_key()
    with kbchat_server(kb, model_cache, "serve", "/health") as base:
        yield base, key


@pytest.fixture(scope="module")
def host_page(server):
    """The owner's own web page, on another origin, embedding the widget with the one script tag."""
    base, key = server
    page = (f"<!doctype html><html><head><title>Copper Kiln</title><style>{HOSTILE_CSS}</style></head>"
            f"<body><h1>Copper Kiln Pottery</h1><p>Welcome to our studio.</p>"
            f'<script src="{base}/widget.js" data-bot="{key}" async></script></body></html>').encode()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}/"
    httpd.shutdown()


def _find(driver, hook: str, all_: bool = False):
    """Elements inside the widget's shadow root by their data-kbchat hook."""
    script = ("const host = document.getElementById('kbchat-widget');"
              "if (!host || !host.shadowRoot) return null;"
              f"const found = host.shadowRoot.querySelectorAll('[data-kbchat=\"{hook}\"]');"
              "return arguments[0] ? Array.from(found) : found[0] || null;")
    return driver.execute_script(script, all_)


def _open(driver, page: str):
    """The host page loaded and the chat open (it stays open across loads); its question box."""
    driver.get(page)
    wait_for(lambda: _find(driver, "bubble"), 30, "the chat bubble")
    if not _find(driver, "panel").is_displayed():
        _find(driver, "bubble").click()
    return wait_for(lambda: _find(driver, "input"), 10, "the question box")


def _ask(driver, question: str):
    before = len(_find(driver, "message-bot", True) or [])
    box = _find(driver, "input")
    box.send_keys(question)
    _find(driver, "send").click()
    wait_for(lambda: len(_find(driver, "message-bot", True) or []) > before, 30, "the answer bubble")
    answer = (_find(driver, "message-bot", True) or [])[-1]
    wait_for(lambda: answer.get_attribute("data-state") == "done", 180, "the streamed answer")
    return answer


def test_a_visitor_asks_and_sees_the_streamed_answer_with_sources(browser, host_page, tmp_path):
    from selenium.common.exceptions import NoAlertPresentException

    browser.get(host_page)
    bubble = wait_for(lambda: _find(browser, "bubble"), 30, "the chat bubble")
    bubble.click()
    wait_for(lambda: _find(browser, "panel") and _find(browser, "panel").is_displayed(), 10, "the chat panel")
    welcome = _find(browser, "message-bot", True)
    assert welcome and "Ask me anything" in welcome[0].text

    browser.execute_script(  # note every step the chat shows while the visitor waits
        "window.kbSteps = []; new MutationObserver(function (changes) { changes.forEach(function (c) {"
        "  var el = c.target; if (el.getAttribute && el.getAttribute('data-kbchat') === 'step' && el.textContent)"
        "    window.kbSteps.push(el.textContent); }); })"
        ".observe(document.getElementById('kbchat-widget').shadowRoot, {subtree: true, childList: true});")
    answer = _ask(browser, "How much is the canvas studio apron?")
    assert "$28" in answer.text
    assert browser.execute_script("return window.kbSteps")[:1] == ["Looking in our documents\u2026"]
    assert not _find(browser, "step")  # gone once the words came
    sources = _find(browser, "source", True)
    assert sources and any("Copper Kiln Pottery Studio - Price List" in s.text for s in sources)  # its title
    assert not any("price_list.md" in s.text for s in sources)  # not the owner's file name
    assert _find(browser, "thumb-up") is not None

    injected = _ask(browser, SECRET_QUESTION)
    text = injected.text
    assert "<img src=x onerror=alert(1)>" in text and "<script>alert(2)</script>" in text  # shown as text
    count = browser.execute_script(
        "return document.getElementById('kbchat-widget').shadowRoot.querySelectorAll('img[src=\"x\"], script').length")
    assert count == 0 and len(browser.find_elements("css selector", "body img[src='x']")) == 0
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text
    shot = tmp_path / "widget.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def test_the_conversation_survives_a_reload(browser, host_page):
    before = [m.text for m in _find(browser, "message-user", True) or []]
    assert before, "the previous test asked questions"
    browser.refresh()
    wait_for(lambda: _find(browser, "message-user", True), 30, "the restored conversation")
    assert [m.text for m in _find(browser, "message-user", True)] == before


def test_the_widget_says_what_to_do_with_an_empty_or_too_long_question_and_names_the_business(
        browser, host_page, widget_kb):
    from kb.settings import Settings

    Settings.load(widget_kb).updated(business_name="Copper Kiln Pottery").save(widget_kb)
    try:
        box = _open(browser, host_page)
        asked = len(_find(browser, "message-user", True) or [])
        _find(browser, "send").click()
        wait_for(lambda: _find(browser, "hint").text == "Type your question first.", 10, "the empty-question hint")
        assert len(_find(browser, "message-user", True) or []) == asked  # nothing was sent

        box.send_keys("How much is a class? " * 48)  # 1,008 characters typed: the box keeps the first 1,000
        assert len(box.get_attribute("value")) == 1000
        assert _find(browser, "hint").text == "Questions can be up to 1,000 characters."
        box.clear()

        _find(browser, "human").click()
        consent = browser.execute_script("return arguments[0].parentElement.textContent", _find(browser, "lead-consent"))
        assert consent == "I agree that Copper Kiln Pottery may contact me about this request."  # not the bot's name
        _find(browser, "lead-back").click()
    finally:
        Settings.load(widget_kb).updated(business_name="").save(widget_kb)


def test_a_phone_sized_screen_gets_a_full_screen_chat(browser, host_page, tmp_path):
    browser.set_window_size(390, 844)
    try:
        browser.get(host_page)
        wait_for(lambda: _find(browser, "bubble"), 30, "the chat bubble")
        if not (_find(browser, "panel") and _find(browser, "panel").is_displayed()):
            _find(browser, "bubble").click()
        panel = wait_for(lambda: _find(browser, "panel"), 10, "the chat panel")
        width = browser.execute_script("return document.documentElement.clientWidth")
        assert panel.size["width"] >= width - 2
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        browser.save_screenshot(str(tmp_path / "phone.png"))
    finally:
        browser.set_window_size(1280, 900)


def test_the_full_page_chat_answers_without_a_bubble(browser, server):
    base, _ = server
    browser.get(f"{base}/chat")
    panel = wait_for(lambda: _find(browser, "panel"), 30, "the full-page chat")
    assert panel.is_displayed() and _find(browser, "bubble") is None and _find(browser, "close") is None
    width = browser.execute_script("return document.documentElement.clientWidth")
    assert panel.size["width"] >= min(width, 760) - 2  # the page is the chat
    browser.execute_script(  # note every step the chat shows while the visitor waits
        "window.kbSteps = []; new MutationObserver(function (changes) { changes.forEach(function (c) {"
        "  var el = c.target; if (el.getAttribute && el.getAttribute('data-kbchat') === 'step' && el.textContent)"
        "    window.kbSteps.push(el.textContent); }); })"
        ".observe(document.getElementById('kbchat-widget').shadowRoot, {subtree: true, childList: true});")
    answer = _ask(browser, "How much is the canvas studio apron?")
    assert "$28" in answer.text
    assert browser.execute_script("return window.kbSteps")[:1] == ["Looking in our documents\u2026"]
    assert not _find(browser, "step")  # gone once the words came and _find(browser, "source", True)


def test_a_follow_up_is_answered_in_the_chats_context(browser, server):
    """Nothing changes for the site owner: the chat API reads the session's earlier messages."""
    base, _ = server
    browser.get(f"{base}/chat")
    wait_for(lambda: _find(browser, "panel"), 30, "the full-page chat")
    first = _ask(browser, "Do you offer hand-building classes?")
    assert "$240" in first.text
    follow = _ask(browser, "how much is it?")
    assert "$240" in follow.text  # the hand-building course, not the last price asked about


def test_a_visitor_asks_for_a_person_and_sees_the_owners_reply(browser, host_page, server, widget_kb):
    import httpx

    base, key = server
    with BotRecords(widget_kb) as records:
        admin = {"Authorization": f"Bearer {records.rotate_admin_token()}"}
    browser.get(host_page)
    wait_for(lambda: _find(browser, "bubble"), 30, "the chat bubble")
    if not _find(browser, "panel").is_displayed():
        _find(browser, "bubble").click()
    _find(browser, "human").click()
    wait_for(lambda: _find(browser, "ask-person").is_displayed(), 10, "the 'Chat with a person' button")
    _find(browser, "ask-person").click()
    bar = wait_for(lambda: _find(browser, "handoff-bar") if _find(browser, "handoff-bar").is_displayed() else None,
                   30, "the 'waiting for our team' bar")
    assert "Waiting for someone from our team" in bar.text
    session = browser.execute_script(f"return JSON.parse(sessionStorage.getItem('kbchat:{key}')).session_id")

    # The visitor writes while waiting: it goes to the team, and no bot answer appears.
    bots_before = len(_find(browser, "message-bot", True))
    _find(browser, "input").send_keys("Can I bring my own glaze?")
    _find(browser, "send").click()
    chat = wait_for(lambda: [i for i in httpx.get(f"{base}/api/admin/handoffs/chat", params={"session_id": session},
                                                  headers=admin).json()["conversation"]
                             if i["text"] == "Can I bring my own glaze?"], 30, "the visitor's message in the inbox")
    assert chat[0]["sender"] == "visitor" and len(_find(browser, "message-bot", True)) == bots_before

    # The owner answers through the admin API; the open widget shows it.
    reply = "Yes, as long as it is food-safe and cone 6. Ask Dana at the front desk."
    assert httpx.post(f"{base}/api/admin/handoffs/reply", json={"session_id": session, "text": reply},
                      headers=admin).status_code == 200
    shown = wait_for(lambda: [m for m in _find(browser, "message-team", True) or [] if reply in m.text], 30,
                     "the owner's reply in the widget")
    assert "Our team" in shown[0].text
    wait_for(lambda: "chatting with our team" in _find(browser, "handoff-status").text, 30, "the live state")

    # Handed back: the widget says so and the assistant answers again.
    httpx.post(f"{base}/api/admin/handoffs/release", json={"session_id": session}, headers=admin)
    wait_for(lambda: not _find(browser, "handoff-bar").is_displayed(), 30, "the bar to go")
    assert any("assistant again" in n.text for n in _find(browser, "notice", True))
    assert "$28" in _ask(browser, "How much is the canvas studio apron?").text


def test_a_spanish_browser_gets_the_widgets_words_in_spanish(browser, host_page, server, widget_kb):
    """The widget's own labels, and the server's fixed messages (named by their code), in Spanish."""
    import httpx

    base, key = server
    added = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {
        "source": "Object.defineProperty(navigator, 'language', {get: function () { return 'es-ES'; }});"})
    try:
        box = _open(browser, host_page)
        assert box.get_attribute("placeholder") == "Escriba su pregunta\u2026"
        assert _find(browser, "send").get_attribute("aria-label") == "Enviar"
        assert "Hablar con una persona" in _find(browser, "human").text
        assert "¡Hola! Pregúntenos lo que quiera." in _find(browser, "message-bot", True)[0].text
        _find(browser, "send").click()
        wait_for(lambda: _find(browser, "hint").text == "Escriba primero su pregunta.", 10, "the hint in Spanish")

        _find(browser, "human").click()  # the contact form checks the e-mail in Spanish
        wait_for(lambda: _find(browser, "lead-form").is_displayed(), 10, "the contact form")
        _find(browser, "lead-name").send_keys("Ana")
        _find(browser, "lead-email").send_keys("ana-en-ejemplo")
        _find(browser, "lead-submit").click()
        wait_for(lambda: "Compruebe su dirección de correo electrónico" in _find(browser, "lead-status").text, 10,
                 "the e-mail check in Spanish")
        _find(browser, "ask-person").click()  # the server's "we've asked our team" note, in Spanish
        wait_for(lambda: any("Le responderá aquí en cuanto pueda" in n.text for n in _find(browser, "notice", True) or []),
                 30, "the server's note in Spanish")
        session = browser.execute_script(f"return JSON.parse(sessionStorage.getItem('kbchat:{key}')).session_id")
        with BotRecords(widget_kb) as records:
            admin = {"Authorization": f"Bearer {records.rotate_admin_token()}"}
        httpx.post(f"{base}/api/admin/handoffs/release", json={"session_id": session}, headers=admin)
        wait_for(lambda: not _find(browser, "handoff-bar").is_displayed(), 30, "the chat back with the assistant")
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": added["identifier"]})
