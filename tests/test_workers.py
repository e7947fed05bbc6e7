"""Several `kbchat serve` workers behind one load balancer: two real worker processes on one bot in
a real PostgreSQL, with their rate limits in a real Redis (bench/services.py). What one worker is
told, the other knows: the chats, the owner's settings, the limits. A Redis that goes away turns
no question into an error."""

from __future__ import annotations

import httpx
import pytest
from conftest import kbchat_server, sample_kb, wait_for
from services import redis as start_redis

from kb.bot import BotRecords
from kb.settings import Settings
from kb.store import Store
from ui.ratelimit import RateLimits, check

QUESTION = "What are your opening hours?"


@pytest.fixture
def pg_sample(pg_kb, tmp_path):
    """The first 12 sample FAQ pairs and the price list, ingested into a bot in PostgreSQL."""
    local = sample_kb(tmp_path / "local", 12, "price_list.md")
    with Store(local, create=False) as source, Store(pg_kb) as store:
        for s in source.sources():
            store.replace_source(s, source.chunks(s.uri))
    with BotRecords(pg_kb) as records:
        records.ensure_keys()
        keys = {"public": records.public_key(), "admin": records.rotate_admin_token()}
    return pg_kb, keys


def _chat(base: str, keys: dict, session: str, question: str = QUESTION) -> httpx.Response:
    return httpx.post(f"{base}/api/chat", json={"question": question, "session_id": session},
                      headers={"X-Bot-Key": keys["public"]}, timeout=120)


def test_two_workers_share_chats_settings_and_rate_limits(pg_sample, redis_url, model_cache):
    kb, keys = pg_sample
    Settings().updated(redis_url=redis_url, rate_limit_per_session=3).save(kb)
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    with kbchat_server(kb, model_cache, "serve", "/health") as a, kbchat_server(kb, model_cache, "serve", "/health") as b:
        answers = [_chat(base, keys, "session-shared-1") for base in (a, b, a)]
        assert [r.status_code for r in answers] == [200, 200, 200]
        assert "Tuesday to Friday" in answers[0].json()["text"] and answers[0].json()["method"] == "faq"
        over = _chat(b, keys, "session-shared-1")  # the 4th in a minute, counted across both workers
        assert over.status_code == 429 and "too quickly" in over.json()["detail"] and int(over.headers["Retry-After"]) >= 1
        assert _chat(b, keys, "session-other-1").status_code == 200  # another chat has its own count

        logged = httpx.get(f"{b}/api/admin/conversations", params={"session": "session-shared-1"}, headers=admin).json()
        assert len(logged) == 3  # answered by a and b, all seen by b

        changed = httpx.put(f"{a}/api/admin/settings", json={"bot_name": "Ask Copper Kiln"}, headers=admin)
        assert changed.status_code == 200
        assert httpx.get(f"{a}/api/config", headers={"X-Bot-Key": keys["public"]}).json()["name"] == "Ask Copper Kiln"
        # worker b reads the settings a saved, without a restart (it looks again within a second)
        wait_for(lambda: httpx.get(f"{b}/api/config", headers={"X-Bot-Key": keys["public"]}).json()["name"] == "Ask Copper Kiln",
                 what="worker b to show the new bot name")


def test_a_redis_outage_never_fails_a_question(pg_sample, model_cache):
    from contextlib import ExitStack

    from limits import RateLimitItemPerMinute

    kb, keys = pg_sample
    with ExitStack() as redis_alive:
        url = redis_alive.enter_context(start_redis())
        assert check(url) == ""
        Settings().updated(redis_url=url, rate_limit_per_session=50).save(kb)
        with kbchat_server(kb, model_cache, "serve", "/health") as a:
            assert _chat(a, keys, "session-outage-1").status_code == 200
            redis_alive.close()  # Redis stops while the worker runs
            assert "does not answer" in check(url)
            answers = [_chat(a, keys, "session-outage-2") for _ in range(3)]
            assert [r.status_code for r in answers] == [200, 200, 200] and "Tuesday to Friday" in answers[-1].json()["text"]
    local = RateLimits("probe")
    local.use(url)  # Redis is down: the window is this process's own, and it still limits
    item = RateLimitItemPerMinute(1)
    assert local.hit(item, "session:x") and not local.hit(item, "session:x") and not local.shared
