"""An interrupted or killed ingest leaves a consistent store; web pages and sites are ingested
from a local HTTP server started by the test."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kb.store import Store

# -- a killed or interrupted ingest --------------------------------------------------------------


def _many_files(tmp_path, data, n=150):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(n):
        shutil.copy(data / "policies.pdf", folder / f"policy_{i:03d}.pdf")
        shutil.copy(data / "prices.md", folder / f"prices_{i:03d}.md")
    return folder


def _start_and_wait_for_sources(cmd, kb_dir, at_least=5, timeout=60):
    # Ctrl-C as a person at a terminal gives it, even when this suite runs in the background of a
    # script (`make test &`), whose children inherit SIGINT ignored.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + timeout
    while time.time() < deadline:
        if (kb_dir / "kbchat.db").exists():
            try:
                with sqlite3.connect(kb_dir / "kbchat.db", timeout=1) as db:
                    if db.execute("SELECT COUNT(*) FROM sources").fetchone()[0] >= at_least:
                        return proc
            except sqlite3.OperationalError:
                pass  # schema not created yet
        if proc.poll() is not None:
            pytest.fail(f"ingest ended before it could be interrupted: {proc.stderr.read()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("ingest made no progress")


def _assert_consistent(kb_dir):
    with sqlite3.connect(kb_dir / "kbchat.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        orphans = db.execute("SELECT COUNT(*) FROM chunks WHERE source NOT IN (SELECT uri FROM sources)").fetchone()[0]
        assert orphans == 0
    with Store(kb_dir) as store:
        counts = {s.uri.rsplit("/", 1)[-1]: s.n_chunks for s in store.sources()}
    # Every stored source is complete: exactly as many passages as a full ingest of that file.
    expected = {"pdf": 2, "md": 4}
    for name, n in counts.items():
        assert n == expected[name.rsplit(".", 1)[1]], (name, n)
    return len(counts)


def test_killed_ingest_leaves_the_previous_consistent_state(tmp_path, data, kbchat_exe):
    folder = _many_files(tmp_path, data)
    kb_dir = tmp_path / "kb"
    proc = _start_and_wait_for_sources(kbchat_exe + ["--kb", str(kb_dir), "ingest", str(folder)], kb_dir)
    proc.kill()  # SIGKILL: no chance to clean up
    proc.wait()
    n_before = _assert_consistent(kb_dir)
    assert 0 < n_before < 300
    # Running the same ingest again finishes the job and keeps what was already there.
    done = subprocess.run(kbchat_exe + ["--kb", str(kb_dir), "ingest", "--json", str(folder)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    statuses = [r["status"] for r in json.loads(done.stdout)]
    assert statuses.count("unchanged") >= n_before and len(statuses) == 300
    assert _assert_consistent(kb_dir) == 300


def test_ctrl_c_during_ingest_stops_cleanly(tmp_path, data, kbchat_exe):
    folder = _many_files(tmp_path, data)
    kb_dir = tmp_path / "kb"
    proc = _start_and_wait_for_sources(kbchat_exe + ["--kb", str(kb_dir), "ingest", str(folder)], kb_dir)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Stopped. Work finished before the interruption is saved" in err
    assert "Traceback" not in err
    _assert_consistent(kb_dir)


# -- web pages -------------------------------------------------------------------------------------
PAGES = {
    "/": ("text/html", "<html><head><title>Home</title></head><body><nav><a href='/menu.html'>Menu</a> "
          "<a href='/private/secret.html'>Staff</a> <a href='https://elsewhere.example/x'>Partner</a> "
          "<a href='/slow.html'>Slow</a> <a href='/broken.html'>Broken</a></nav>"
          "<main><h1>Welcome to Sunrise Bakery</h1><p>We bake sourdough, rye and spelt bread every morning "
          "from 4 am in our shop on Harbour Street, and we have done so since 1987. Come early for warm loaves; "
          "the first batch is out at 7 am and usually sold out by ten.</p></main></body></html>"),
    "/menu.html": ("text/html", "<html><head><title>Menu</title></head><body><main><h1>Menu</h1><p>Sourdough loaf "
                   "costs $6.50, a baguette $3.00 and a slice of carrot cake $4.20. All bread is organic and baked "
                   "on site, and we offer a gluten-free loaf on Fridays for $7.90.</p><a href='/'>Home</a></main></body></html>"),
    "/private/secret.html": ("text/html", "<html><body><p>Staff only: the alarm code is 4321.</p></body></html>"),
    "/robots.txt": ("text/plain", "User-agent: *\nDisallow: /private/\n"),
    "/broken.html": None,  # 404
    "/slow.html": "slow",
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        page = PAGES.get(self.path)
        if page == "slow":
            time.sleep(3)
            page = ("text/html", "<html><body><p>Too late.</p></body></html>")
        if page is None:
            self.send_error(404)
            return
        body = page[1].encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", page[0] + "; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the slow page's client gave up, as the test wants

    def log_message(self, *args):
        pass


@pytest.fixture
def site(kb_dir):
    """The test site on loopback, which the knowledge base is allowed to read (an intranet address)."""
    from kb.settings import Settings

    Settings(intranet_addresses=("127.0.0.1",)).save(kb_dir)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_ingest_one_url(kbchat, kb_dir, site):
    result = kbchat("ingest", f"{site}/menu.html")
    assert result.exit_code == 0, result.output
    with Store(kb_dir) as store:
        [source] = store.sources()
        assert source.uri == f"{site}/menu.html" and source.kind == "html" and source.title == "Menu"
        assert "$6.50" in store.chunks()[0].text
    assert "1 unchanged" in kbchat("ingest", f"{site}/menu.html").output


def test_crawl_follows_same_site_links_and_honours_robots(kbchat, kb_dir, site):
    assert kbchat("settings", "--set", "fetch_timeout_s=1").exit_code == 0
    result = kbchat("ingest", "--json", "--crawl", "10", f"{site}/")
    statuses = {r["target"].replace(site, ""): (r["status"], r["reason"]) for r in json.loads(result.stdout)}
    assert statuses["/"][0] == "added" and statuses["/menu.html"][0] == "added"
    assert statuses["/broken.html"] == ("failed", "the server answered 404 Not Found")
    assert statuses["/slow.html"][0] == "failed" and "did not answer within 1 s" in statuses["/slow.html"][1]
    assert "/private/secret.html" not in statuses  # robots.txt
    assert not any("elsewhere" in t for t in statuses)  # other sites are not followed
    assert result.exit_code == 1
    with Store(kb_dir) as store:
        text = " ".join(c.text for c in store.chunks())
    assert "4321" not in text and "sourdough" in text.lower()


def test_crawl_limit_counts_pages(kbchat, site):
    result = kbchat("ingest", "--json", "--crawl", "1", f"{site}/")
    assert [r["target"] for r in json.loads(result.stdout)] == [f"{site}/"]


def test_unreachable_and_disallowed_urls(kbchat, site):
    result = kbchat("ingest", f"{site}/private/secret.html")
    assert result.exit_code == 1 and "robots.txt does not allow reading this page" in result.output
    result = kbchat("ingest", "http://")
    assert result.exit_code == 1 and "'http://' is not a complete web address; write it like https://" in result.output
    result = kbchat("ingest", "http://127.0.0.1:9/nothing")
    assert result.exit_code == 1 and "could not connect to 127.0.0.1:9" in result.output
    assert "Traceback" not in result.output


def test_kill_9_of_the_server_while_it_writes_conversations_and_leads_loses_nothing_written(tmp_path, model_cache, kbchat_exe):
    import os
    import threading

    import httpx
    from conftest import free_port, kbchat_server, sample_kb, wait_for_http

    from kb.bot import BotRecords
    from kb.process import Process
    from kb.settings import Settings

    kb = sample_kb(tmp_path, 8)
    Settings(rate_limit_per_ip=100000, rate_limit_per_session=100000).save(kb)
    with BotRecords(kb) as records:
        records.ensure_keys()
        key = records.public_key()
    port = free_port()
    env = {**os.environ, "KBCHAT_CACHE": str(model_cache)}
    server = Process([*kbchat_exe, "--kb", str(kb), "serve", "--port", str(port)], env=env)
    proc = server.proc
    base = f"http://127.0.0.1:{port}"
    stop = threading.Event()

    def visitor(n: int) -> None:
        headers = {"X-Bot-Key": key}
        with httpx.Client(base_url=base, timeout=30) as client:
            i = 0
            while not stop.is_set():
                i += 1
                session = f"visitor-{n:02d}-{i:05d}"
                try:
                    client.post("/api/chat", json={"question": "Do you sell gift cards?", "session_id": session}, headers=headers)
                    client.post("/api/lead", json={"session_id": session, "name": f"Visitor {n} {i}",
                                                   "email": f"v{n}.{i}@example.com", "message": "Please call me back.",
                                                   "consent": True}, headers=headers)
                except httpx.TransportError:
                    return  # the server is gone

    try:
        wait_for_http(base + "/health", server)
        threads = [threading.Thread(target=visitor, args=(n,), daemon=True) for n in range(4)]
        for t in threads:
            t.start()
        deadline = time.time() + 120
        while True:  # kill it in the middle of the traffic, once a good amount is written
            with BotRecords(kb) as records:
                if len(records.leads()) >= 30:
                    break
            assert time.time() < deadline and proc.poll() is None, server.output(2000)
            time.sleep(0.1)
        proc.kill()  # SIGKILL: no chance to clean up
        proc.wait()
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
        server.close()
    for t in threads:
        t.join(30)
    with sqlite3.connect(kb / "kbchat.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with BotRecords(kb) as records:
        leads, exchanges = records.leads(limit=100000), records.exchanges(limit=100000)
        assert len(leads) >= 30 and all(lead.name and "@" in lead.email and lead.message for lead in leads)
        assert len(exchanges) >= len(leads) and all(x.answer and x.question for x in exchanges)
    # It starts again on the same knowledge base and goes on recording.
    with kbchat_server(kb, model_cache, "serve", "/health") as again:
        r = httpx.post(again + "/api/chat", json={"question": "Do you sell gift cards?", "session_id": "after-the-kill"},
                       headers={"X-Bot-Key": key}, timeout=60)
        assert r.status_code == 200
    with BotRecords(kb) as records:
        assert records.visitor_data(session="after-the-kill")["exchanges"]

