"""The visitor's language on the small profile: which language a message is in, the texts kbchat
says in its own words per language (and the owner's own, from the Widget page), the widget's labels
from the API and in a real browser. Answers written in the visitor's language need the quality
profile's writer: tests/test_answer_quality.py."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT, sample_kb
from fastapi.testclient import TestClient
from streamlit.testing.v1 import AppTest

from kb import languages
from kb.bot import BotRecords
from kb.errors import BadInput
from kb.settings import Settings
from ui.api import WIDGET_TEXTS, create_app


@pytest.mark.parametrize("text, chat, expected", [
    ("¿Cuánto cuesta el curso de torno?", "en", "es"),
    ("Combien coûte le cours ?", "en", "fr"),
    ("Wann habt ihr am Samstag geöffnet?", "en", "de"),
    ("Vocês vendem cartões-presente?", "en", "pt"),
    ("Ci sono corsi per bambini?", "en", "it"),
    ("When are you open on Saturday?", "en", "en"),
    ("ok", "es", "es"),  # too short to tell: the chat's language stays
    ("Raku?", "fr", "fr"),
])
def test_the_language_of_a_message_or_of_the_chat(text, chat, expected):
    assert languages.detect(text, chat) == expected


def test_a_chat_keeps_its_language_through_a_short_reply():
    assert languages.chat_language(["¿Tenéis clases para niños?", "ok", "¿y cuánto cuesta?"]) == "es"
    assert languages.chat_language(["Do you have kids' classes?", "ok"]) == "en"


def test_kbchats_own_words_in_each_language_and_the_owners_own(tmp_path):
    default, contact = Settings().answers.fallback_message, "0161 555 0199"
    with_contact = Settings().updated(contact=contact)
    assert languages.fallback("es", default, "") == FALLBACK_ES
    assert languages.fallback("es", with_contact.answers.fallback_message, contact) == (
        "Lo siento, no tengo esa información. Póngase en contacto con nosotros en 0161 555 0199 y le ayudaremos con gusto.")
    assert languages.fallback("de", "Call Ada.", "") is None  # the owner's own words: translated by the writer
    assert languages.fallback("en", "Call Ada.", "") == "Call Ada."
    assert languages.welcome("it", Settings().widget.welcome_message) == "Ciao! Chiedeteci pure quello che volete."
    assert languages.welcome("it", "Welcome to Ada's!") == "Welcome to Ada's!"

    languages.save(tmp_path, "fr", {"fallback_message": " Appelez Ada au 0161 555 0199. ", "welcome_message": ""})
    own = languages.load(tmp_path)
    assert own == {"fr": {"fallback_message": "Appelez Ada au 0161 555 0199."}}
    assert languages.fallback("fr", default, "", own["fr"]) == "Appelez Ada au 0161 555 0199."
    with pytest.raises(BadInput, match="Texts per language are for Spanish, French, German, Portuguese, Italian"):
        languages.save(tmp_path, "nl", {"fallback_message": "Bel ons."})
    with pytest.raises(BadInput, match="not bot_name"):
        languages.save(tmp_path, "es", {"bot_name": "Charla"})


FALLBACK_ES = "Lo siento, no tengo esa información. Póngase en contacto con nosotros y le ayudaremos con gusto."


def test_every_language_has_every_widget_label():
    texts = json.loads(WIDGET_TEXTS.read_text(encoding="utf-8"))
    assert set(texts) == set(languages.SUPPORTED)
    for language, words in texts.items():
        assert set(words) == set(texts["en"]), language
        assert all(w.strip() for w in words.values()), language
        for key in ("consent_business", "too_long", "typing"):  # the blanks the widget fills in
            assert ("{business}" if key == "consent_business" else "{n}" if key == "too_long" else "{name}") in words[key]


def test_the_servers_fixed_messages_name_widget_words_that_say_the_same_in_english():
    """The API's refusals and notes carry a code; the widget shows the words under that code in the
    visitor's language, so the English words must be the server's own."""
    from ui import api

    english = json.loads(WIDGET_TEXTS.read_text(encoding="utf-8"))["en"]
    for code, message in {"busy": api.BUSY, "too_fast": api.TOO_FAST, "server_error": api.SERVER_ERROR,
                          "lead_thanks": api.LEAD_THANKS, "waiting_long": api.WAITING,
                          "sent_to_team": api.SENT_TO_TEAM}.items():
        assert english[code] == message, code


@pytest.fixture(scope="module")
def client(tmp_path_factory, model_cache):
    kb = sample_kb(tmp_path_factory.mktemp("languages"), 8, "price_list.md")
    with BotRecords(kb) as records:
        records.ensure_keys()
        key = records.public_key()
    with TestClient(create_app(kb)) as c:
        yield c, {"X-Bot-Key": key}, kb


def test_the_widget_gets_its_labels_and_welcome_in_the_browsers_language(client):
    c, key, kb = client
    spanish = c.get("/api/config", params={"lang": "es-MX"}, headers=key).json()
    assert spanish["language"] == "es" and spanish["texts"]["send"] == "Enviar"
    assert spanish["welcome_message"] == "¡Hola! Pregúntenos lo que quiera."
    assert c.get("/api/config", params={"lang": "nl"}, headers=key).json()["texts"]["send"] == "Send"  # not offered
    languages.save(kb, "es", {"welcome_message": "¡Bienvenidos a Copper Kiln!"})
    try:
        assert c.get("/api/config", params={"lang": "es"}, headers=key).json()["welcome_message"] == (
            "¡Bienvenidos a Copper Kiln!")
    finally:
        (kb / languages.FILE).unlink()


def test_the_steps_are_said_in_the_visitors_language(client):
    c, key, _ = client
    r = c.post("/api/chat/stream", json={"question": "¿Cuánto cuesta el delantal de lona?", "session_id": "session-es"},
               headers=key)
    steps = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ") and '"step"' in line]
    assert steps and steps[0] == {"step": "searching", "text": "Buscando en nuestros documentos\u2026"}


def test_the_owner_writes_the_fallback_for_a_language_on_the_widget_page(monkeypatch, tmp_path):
    kb = sample_kb(tmp_path, 4)
    monkeypatch.setenv("KBCHAT_HOME", str(kb))
    at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=180)
    at.switch_page("views/widget.py").run()
    at.selectbox(key="widget_language").select("de").run()
    box = next(t for t in at.text_area if t.label == "Fallback message in German")
    assert box.placeholder == "Das weiß ich leider nicht. Bitte kontaktieren Sie uns direkt, wir helfen Ihnen gerne weiter."
    box.input("Rufen Sie Ada an: 0161 555 0199.")
    next(b for b in at.button if b.label == "Save these").click().run()
    assert not at.exception and any("German" in s.value for s in at.success)
    assert languages.load(kb) == {"de": {"fallback_message": "Rufen Sie Ada an: 0161 555 0199."}}
