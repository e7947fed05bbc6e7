"""`kbchat sync`, the chat server's own syncs (sync_every_hours) and the Knowledge page's Sync now:
every page and file read again, only what changed stored and embedded, a page the site removed
removed, a page that fails to load kept. The web site is on loopback and changes during the test."""

from __future__ import annotations

import fcntl
import json
import re
import shutil
import threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner
from conftest import ROOT, SAMPLE, send_page, wait_for
from streamlit.testing.v1 import AppTest

from kb import sync as syncing
from kb.ingest import ingest
from kb.settings import Settings
from kb.store import Store
from ui.cli import cli

HOURS = "<html><head><title>Opening hours</title></head><body><h1>Opening hours</h1><p>We open at {} am, Monday to Saturday.</p></body></html>"
PAGE = "<html><head><title>{0}</title></head><body><h1>{0}</h1><p>{1}</p></body></html>"


class _Pages(BaseHTTPRequestHandler):
    pages: dict[str, tuple[int, str]] = {}  # path -> (status, html)

    def do_GET(self):
        send_page(self, *self.pages.get(self.path, (404, "<p>Not here</p>")))

    def log_message(self, *args):
        pass


@pytest.fixture
def changing_site():
    """A loopback site whose pages the test changes: (base address, pages dict)."""
    _Pages.pages = {"/hours": (200, HOURS.format(9)),
                    "/workshops": (200, PAGE.format("Workshops", "Raku firing workshops run on the first Sunday.")),
                    "/gallery": (200, PAGE.format("Gallery", "Our members show their pots in the front window."))}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Pages.pages
    server.shutdown()
    server.server_close()


def _documents(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("faq.csv", "price_list.md", "about.html"):
        shutil.copy(SAMPLE / name, folder / name)
    return folder


def test_kbchat_sync_reads_changed_files_again_and_embeds_only_their_new_passages(tmp_path):
    docs, kb = _documents(tmp_path), tmp_path / "kb"
    run = CliRunner().invoke
    assert run(cli, ["--kb", str(kb), "ingest", str(docs)]).exit_code == 0
    price = str((docs / "price_list.md").resolve())
    with Store(kb) as store:
        before = {c.id for c in store.chunks(source=price)}

    same = run(cli, ["--kb", str(kb), "sync"])
    assert same.exit_code == 0 and "3 documents unchanged." in same.output and "Updating" not in same.output

    with open(docs / "price_list.md", "a") as f:
        f.write("\n\nGift cards are sold in any amount from $20.\n")
    (docs / "about.html").unlink()
    changed = run(cli, ["--kb", str(kb), "sync"])
    assert changed.exit_code == 0, changed.output
    assert "~ updated   " in changed.output and "- removed   " in changed.output
    assert ("1 document changed and read again (price_list.md); 1 document removed, gone from the site or the disk "
            "(about.html); 1 document unchanged.") in changed.output
    embedded = int(re.search(r"passage index .*embedded (\d+) new", changed.output).group(1))
    with Store(kb) as store:
        new = {c.id for c in store.chunks(source=price)} - before
    assert new and embedded == len(new) < len(before)  # exactly the changed passages, not the whole file again
    with Store(kb) as store:
        assert sorted(s.uri.rsplit("/", 1)[-1] for s in store.sources()) == ["faq.csv", "price_list.md"]
        assert any("Gift cards" in c.text for c in store.chunks())

    again = run(cli, ["--kb", str(kb), "sync", "--last"])
    assert again.exit_code == 0 and "Last sync" in again.output and "(price_list.md)" in again.output

    with open(kb / syncing.LOCK, "a+") as held:  # another sync is running
        fcntl.flock(held, fcntl.LOCK_EX)
        busy = run(cli, ["--kb", str(kb), "sync"])
    assert busy.exit_code == 1 and "A sync of this knowledge base is already running" in busy.output


def test_a_followed_site_is_followed_again_finding_new_pages_but_not_the_ones_the_owner_removed(tmp_path, changing_site):
    base, pages = changing_site
    home = (f'<html><head><title>Copper Kiln</title></head><body><h1>Copper Kiln</h1><p>Welcome to the studio.</p>'
            f'<a href="/hours">Hours</a> <a href="/workshops">Workshops</a> {{}}</body></html>')
    pages["/"] = (200, home.format(""))
    kb, run = tmp_path / "kb", CliRunner().invoke
    Settings().updated(intranet_addresses="127.0.0.1").save(kb)
    first = run(cli, ["ingest", f"{base}/", "--crawl", "10", "--kb", str(kb)])
    assert first.exit_code == 0, first.output
    with Store(kb) as store:
        assert {s.uri for s in store.sources()} == {f"{base}/", f"{base}/hours", f"{base}/workshops"}
    removed = run(cli, ["remove", f"{base}/workshops", "--kb", str(kb)])  # the owner does not want this one
    assert removed.exit_code == 0, removed.output

    pages["/"] = (200, home.format('<a href="/classes">Classes</a>'))  # the site adds a page and links it
    pages["/classes"] = (200, PAGE.format("Classes", "Wheel throwing for beginners runs on Tuesday evenings."))
    synced = run(cli, ["sync", "--kb", str(kb)])
    assert synced.exit_code == 0, synced.output
    assert f"1 new page found on the site and added ({base}/classes)" in synced.output
    assert "1 document changed and read again" in synced.output  # the home page, with its new link
    with Store(kb) as store:
        assert {s.uri for s in store.sources()} == {f"{base}/", f"{base}/hours", f"{base}/classes"}
        assert any("Tuesday evenings" in c.text for c in store.chunks(source=f"{base}/classes"))
    assert json.loads((kb / "sync.json").read_text())["added"] == [f"{base}/classes"]

    again = run(cli, ["ingest", f"{base}/workshops", "--kb", str(kb)])  # asked for again: synced again too
    assert again.exit_code == 0 and "added" in again.output
    assert "4 documents unchanged." in run(cli, ["sync", "--kb", str(kb)]).output
    with Store(kb) as store:
        assert store.source(f"{base}/workshops") is not None


def test_the_chat_server_syncs_by_itself_keeping_a_page_that_fails_and_removing_a_removed_one(tmp_path, changing_site):
    """sync_every_hours: kbchat serve's own sync, in the background, with the chat answering."""
    from fastapi.testclient import TestClient

    from kb.bot import BotRecords
    from ui.api import create_app

    base, pages = changing_site
    kb = tmp_path / "kb"
    Settings().updated(intranet_addresses="127.0.0.1", sync_every_hours=24).save(kb)
    with Store(kb) as store:
        results = list(ingest(store, [f"{base}/hours", f"{base}/workshops", f"{base}/gallery"], Settings.load(kb)))
    assert [r.status for r in results] == ["added"] * 3, results
    old = syncing.SyncReport("2020-01-01T00:00:00+00:00", "2020-01-01T00:00:01+00:00")  # a day ago and more: due
    (kb / syncing.REPORT).write_text(json.dumps(asdict(old)))

    pages["/hours"] = (200, HOURS.format(10))  # changed
    pages["/workshops"] = (503, "<p>Down for maintenance</p>")  # fails for a moment: keep what we had
    del pages["/gallery"]  # removed from the site: 404
    with BotRecords(kb) as records:
        records.ensure_keys()
        key = records.public_key()
    with TestClient(create_app(kb)) as client:
        report = wait_for(lambda: (r := syncing.last(kb)) and r.finished_at != old.finished_at and r, 120,
                          "the chat server's own sync")
        assert report.changed == [f"{base}/hours"] and report.removed == [f"{base}/gallery"]
        assert [f["source"] for f in report.failed] == [f"{base}/workshops"]
        assert "the server answered 503" in report.failed[0]["reason"]
        assert "1 document could not be read and kept its old passages" in report.summary()
        with Store(kb) as store:
            assert {s.uri for s in store.sources()} == {f"{base}/hours", f"{base}/workshops"}
            assert any("Raku firing" in c.text for c in store.chunks())  # the failed page's passages stay
        bot = client.app.state.bot
        wait_for(lambda: bot.live.retriever().status()["up_to_date"], 60, "the search index after the sync")
        r = client.post("/api/chat", json={"question": "When do you open?", "session_id": "session-sync"},
                        headers={"X-Bot-Key": key})
        assert r.status_code == 200 and "10 am" in r.json()["text"], r.json()


def test_sync_now_on_the_knowledge_page(tmp_path, monkeypatch):
    docs, kb = _documents(tmp_path), tmp_path / "kb"
    assert CliRunner().invoke(cli, ["--kb", str(kb), "ingest", str(docs)]).exit_code == 0
    monkeypatch.setenv("KBCHAT_HOME", str(kb))
    at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=180)
    at.switch_page("views/knowledge.py").run()
    assert "Not synced yet." in [c.value for c in at.caption]

    (docs / "about.html").unlink()
    at.button(key="sync-now").click().run()
    assert not at.exception and not at.error
    assert any("1 document removed, gone from the site or the disk (about.html)" in s.value for s in at.success)
    assert any(c.value.startswith("Last sync: ") for c in at.caption)

    at.number_input(key="sync-hours").set_value(6.0)
    at.button(key="sync-hours-save").click().run()
    assert Settings.load(kb).server.sync_every_hours == 6.0
    at.number_input(key="sync-hours").set_value(0.1)
    at.button(key="sync-hours-save").click().run()
    assert any("'sync_every_hours' must be 0 (off) or between 0.25" in e.value for e in at.error)
    assert Settings.load(kb).server.sync_every_hours == 6.0
