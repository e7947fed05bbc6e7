"""The app in a real browser: `kbchat ui` in its own process on a small sample knowledge base, driven
by headless Chromium. The owner asks a question on the landing page and sees every path's answer in
its column; the Widget page's preview shows the real widget."""

from __future__ import annotations


import pytest
from conftest import free_port, kbchat_server, require_chromium, sample_kb, wait_for

from kb.settings import Settings

require_chromium()
QUESTION = "Where is Copper Kiln Pottery Studio located?"


@pytest.fixture(scope="module")
def app(tmp_path_factory, model_cache):
    kb = sample_kb(tmp_path_factory.mktemp("app"), 8, "price_list.md")
    Settings(max_new_tokens=32).save(kb)
    try:
        with kbchat_server(kb, model_cache, "ui", "/_stcore/health", "--no-browser") as url:
            yield url, kb
    finally:
        from ui import jobs

        jobs.stop(kb, "serve")


def _value(driver, selector: str) -> str | None:
    found = driver.find_elements("css selector", selector)
    return found[0].get_attribute("value") if found else None


def _click(driver, text: str) -> bool:
    """Click the button with this text; False (try again) when the page re-ran under our feet."""
    from selenium.common.exceptions import StaleElementReferenceException

    try:
        buttons = [b for b in driver.find_elements("css selector", "button") if b.text.strip() == text]
        if buttons:
            buttons[0].click()
            return True
    except StaleElementReferenceException:
        pass
    return False


def _idle(driver) -> bool:
    """Streamlit has finished running the page (no 'Running...' indicator)."""
    return not driver.execute_script(
        "const s = document.querySelector('[data-testid=\"stStatusWidget\"]'); return s && s.innerText.includes('Running');")


def test_the_owner_asks_on_the_landing_page_and_sees_every_path(browser, app, tmp_path):
    url, _ = app
    browser.get(url)
    box = wait_for(lambda: browser.find_elements("css selector", "input[aria-label='Your question']"), 60, "the question box")[0]
    box.send_keys(QUESTION)
    wait_for(lambda: _click(browser, "Ask"), 30, "the Ask button")
    wait_for(lambda: "214 Alder Street" in browser.find_element("tag name", "body").text, 240, "the rag answer")

    def answered_columns():
        columns = [c.text for c in browser.find_elements("css selector", "[data-testid='stColumn']")
                   if c.text.startswith(("Answers from your documents (RAG)", "The plain model without your documents"))]
        # The plain model's column shows only its header until its first words arrive (the RAG
        # answer can be done by then: the curated FAQ answer takes milliseconds).
        written = all(len(c.split()) > 12 for c in columns)
        done = len(columns) >= 2 and written and not any("Answering" in c for c in columns) and _idle(browser)
        return done and columns

    columns = wait_for(answered_columns, 240, "both columns to finish, the plain model's with an answer under its header")
    body = browser.find_element("tag name", "body").text
    assert "Traceback" not in body and "faq.csv" in body
    shot = tmp_path / "compare.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 20_000


def test_the_widget_page_previews_the_real_widget(browser, app):
    url, kb = app
    browser.get(f"{url}/widget")
    port_box = wait_for(lambda: browser.find_elements("css selector", "input[aria-label='Port']"), 60, "the port box")[0]
    port = free_port()
    port_box.send_keys("\b" * 6 + str(port) + "\n")
    wait_for(lambda: _value(browser, "input[aria-label='Port']") == str(port) and _idle(browser), 30, "the new port")
    wait_for(lambda: _click(browser, "Start the chat server"), 30, "the start button")
    frame = wait_for(lambda: [f for f in browser.find_elements("css selector", "iframe") if "/preview" in (f.get_attribute("src") or "")],
                     180, "the preview frame")[0]
    browser.switch_to.frame(frame)
    try:
        bubble = wait_for(lambda: browser.execute_script(
            "const h = document.getElementById('kbchat-widget');"
            "return h && h.shadowRoot && h.shadowRoot.querySelector('[data-kbchat=\"bubble\"]');"), 60, "the widget's bubble")
        bubble.click()
        wait_for(lambda: browser.execute_script(
            "const p = document.getElementById('kbchat-widget').shadowRoot.querySelector('[data-kbchat=\"panel\"]');"
            "return p && p.offsetHeight > 200;"), 20, "the widget's chat panel")
    finally:
        browser.switch_to.default_content()
        from ui import jobs

        jobs.stop(kb, "serve")
