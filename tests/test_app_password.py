"""The app reachable from other computers (kbchat ui --host): no page shows before the admin token or
the app password is given; on loopback it stays open as before."""

from __future__ import annotations

import pytest
from conftest import ROOT, sample_kb
from streamlit.testing.v1 import AppTest

from kb.bot import BotRecords
from kb.errors import BadInput
from ui.cli import is_loopback

APP = str(ROOT / "ui" / "app.py")


@pytest.fixture
def locked(tmp_path, monkeypatch):
    kb = sample_kb(tmp_path, 3)
    with BotRecords(kb) as records:
        token = records.ensure_keys()
        records.set_app_password("kiln-at-1200-degrees")
    monkeypatch.setenv("KBCHAT_HOME", str(kb))
    monkeypatch.setenv("KBCHAT_APP_LOCKED", "1")
    return kb, token


def _submit(at: AppTest, password: str) -> AppTest:
    at.text_input[0].input(password)
    at.button[0].click()  # the form's submit button
    return at.run()


def test_no_page_shows_before_the_password(locked):
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Your admin token or app password"]
    assert not at.sidebar.caption  # not even the knowledge base's name
    at = _submit(at, "guess")
    assert [e.value for e in at.error] == ["That is not the admin token or the app password. Try again."]
    assert not at.sidebar.caption


@pytest.mark.parametrize("which", ["admin token", "app password"])
def test_the_admin_token_or_the_app_password_opens_the_app(locked, which):
    kb, token = locked
    at = AppTest.from_file(APP, default_timeout=120).run()
    at = _submit(at, token if which == "admin token" else "kiln-at-1200-degrees")
    assert not at.exception and not at.error
    assert f"`{kb}`" in at.sidebar.caption[0].value  # the pages show
    assert not [t for t in at.text_input if t.label == "Your admin token or app password"]


def test_on_loopback_the_app_stays_open(tmp_path, monkeypatch):
    kb = sample_kb(tmp_path, 3)
    monkeypatch.setenv("KBCHAT_HOME", str(kb))
    monkeypatch.delenv("KBCHAT_APP_LOCKED", raising=False)
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception and f"`{kb}`" in at.sidebar.caption[0].value


def test_which_addresses_count_as_this_computer_only():
    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.20", "kbchat.example.com"))


def test_an_app_password_is_long_enough_and_stored_hashed(tmp_path):
    kb = sample_kb(tmp_path, 1)
    with BotRecords(kb) as records:
        with pytest.raises(BadInput, match="at least 8 characters"):
            records.set_app_password("short")
        records.set_app_password("kiln-at-1200-degrees")
        assert records.opens_app("kiln-at-1200-degrees") and not records.opens_app("kiln-at-1200-degree")
        stored = records._one("SELECT value FROM bot_keys WHERE name = 'app_password'")[0]
    assert "kiln" not in stored


def test_the_owner_sets_the_app_password_from_the_command_line(tmp_path, kbchat, kb_dir, copy_data):
    assert kbchat("ingest", str(copy_data("faq.csv"))).exit_code == 0
    result = kbchat("keys", "--app-password", input="kiln-at-1200-degrees\nkiln-at-1200-degrees\n")
    assert result.exit_code == 0 and "The app password is set" in result.output, result.output
    with BotRecords(kb_dir) as records:
        assert records.opens_app("kiln-at-1200-degrees")
    result = kbchat("keys", "--app-password", input="short\nshort\n")
    assert result.exit_code == 1 and "at least 8 characters" in result.output and "Traceback" not in result.output
