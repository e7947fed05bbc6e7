"""The chat API's rate limits: a moving window per visitor address, chat and poller, counted by the
`limits` library, in this process or, when the `redis_url` setting is set, in Redis, so several
`kbchat serve` workers behind one load balancer share one count.

A Redis that stops answering never turns a visitor's question into an error: the limits are
counted in this worker until Redis answers again (tried again every RETRY_S seconds), and the log
says so in plain words at each failed try.

    >>> limits = RateLimits("bot-1")
    >>> from limits import RateLimitItemPerMinute
    >>> limits.hit(RateLimitItemPerMinute(1), "ip:1.2.3.4"), limits.hit(RateLimitItemPerMinute(1), "ip:1.2.3.4")
    (True, False)
"""

from __future__ import annotations

import logging
import threading
import time

from limits import RateLimitItem
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger("kbchat.api")
RETRY_S = 10.0  # how long a worker counts on its own after Redis failed, before trying it again
TIMEOUT_S = 0.5  # a Redis that does not answer within this is treated as down


class RateLimits:
    """hit() and reset_in() over the shared (Redis) or local (memory) window. `prefix` keeps each
    knowledge base's counts apart in a Redis that several businesses share."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._shared: MovingWindowRateLimiter | None = None
        self._url = ""
        self._down_until = 0.0
        self._lock = threading.Lock()

    def use(self, redis_url: str) -> None:
        """Count in this Redis from now on ("" for this process only). Connects lazily."""
        with self._lock:
            if redis_url == self._url:
                return
            self._url, self._shared, self._down_until = redis_url, None, 0.0
            if redis_url:
                from limits.storage import RedisStorage

                storage = RedisStorage(redis_url, key_prefix=f"kbchat:{self.prefix}", wrap_exceptions=True,
                                       socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)
                self._shared = MovingWindowRateLimiter(storage)

    @property
    def shared(self) -> bool:
        """Whether the counts are in Redis right now."""
        return self._shared is not None and time.monotonic() >= self._down_until

    def hit(self, item: RateLimitItem, key: str) -> bool:
        """Count one request; False when it is over the limit."""
        return self._call(lambda limiter: limiter.hit(item, key))

    def reset_in(self, item: RateLimitItem, key: str) -> float:
        """Seconds until the window has room again."""
        return max(0.0, self._call(lambda limiter: limiter.get_window_stats(item, key).reset_time) - time.time())

    def _call(self, work):
        from limits.errors import StorageError

        limiter = self._shared
        if limiter is not None and time.monotonic() >= self._down_until:
            try:
                return work(limiter)
            except StorageError as e:
                self._down_until = time.monotonic() + RETRY_S
                log.warning("Redis at %s did not answer (%s); rate limits are counted in this worker alone until it "
                            "is back. Check that Redis runs and that the redis_url setting is its address.",
                            _shown(self._url), type(e.storage_error).__name__ if hasattr(e, "storage_error") else e)
        return work(self._local)


def check(redis_url: str) -> str:
    """"" when Redis answers at this address, else what is wrong, in words (kbchat serve says it at start)."""
    import redis

    try:
        redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2).ping()
        return ""
    except (redis.RedisError, ValueError) as e:
        return (f"Redis at {_shown(redis_url)} does not answer ({e}). Until it does, each worker counts rate limits on "
                "its own. Check that Redis runs and that the redis_url setting is its address.")


def _shown(url: str) -> str:
    from kb.location import shown

    return shown(url)
