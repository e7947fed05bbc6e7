"""The answer paths of one knowledge base as they should be right now: built from the settings as
saved and the fine-tuned model that is active, and built again when either changes (kbchat
settings, the app, kbchat tune, kbchat adapters --activate), never half-way through an answer.
The website's API and the app both hold one, so they answer alike and follow the owner's changes
without a restart.

    >>> live = LivePaths(store)                                  # doctest: +SKIP
    >>> with live.lock:                                          # doctest: +SKIP
    ...     live.paths().get("rag").answer("When are you open?")
"""

from __future__ import annotations

import logging
import threading
import time

from compare.paths import Paths, build
from kb.errors import KbchatError
from kb.settings import Settings
from kb.store import Store

log = logging.getLogger("kbchat.paths")

RECHECK_S = 1.0  # a knowledge base in a database is asked for its settings at most this often


class LivePaths:
    """The paths of `store` for its current settings and active adapter. `lock` is held by whoever
    answers; the paths are rebuilt only while nobody holds it (a caller that cannot wait gets the
    paths it had, and the next call rebuilds)."""

    def __init__(self, store: Store):
        self.store = store
        self.lock = threading.Lock()
        self._read_at, self._state = -RECHECK_S, None  # (settings stamp, active adapter id), cached
        self._built_for: tuple | None = None
        self._settings = Settings.load(store.dir)
        self._settings_stamp = Settings.stamp(store.dir)
        self._retriever = None
        self._paths: Paths | None = None

    # -- what changes under a running process -------------------------------------------------------
    def state(self, fresh: bool = False) -> tuple:
        """(settings stamp, active adapter id): a stat() and a small read for a folder each time; a
        database round trip for a shared store at most once a second."""
        from tuning.adapters import active_id

        now = time.monotonic()
        if fresh or self.store.db.kind != "postgres" or now - self._read_at >= RECHECK_S:
            self._read_at, self._state = now, (Settings.stamp(self.store.dir), active_id(self.store.dir))
        return self._state

    @property
    def settings(self) -> Settings:
        """The settings as saved now; a file broken by hand keeps the last good ones (logged)."""
        stamp = self.state()[0]
        if stamp != self._settings_stamp:
            try:
                self._settings = Settings.load(self.store.dir)
            except KbchatError as e:
                log.warning("settings not reloaded: %s", e)
            self._settings_stamp = stamp
        return self._settings

    def retriever(self, settings: Settings | None = None):
        """The search index for the settings (those saved now by default): one object for the paths
        and whoever shows or syncs the index (the Knowledge page), so nothing is embedded twice."""
        from rag.retrieve import Retriever

        settings = settings or self.settings
        if self._retriever is None or self._retriever.settings != settings:
            self._retriever = Retriever(self.store, settings)
        return self._retriever

    def paths(self, wait: bool = True) -> Paths:
        """The paths for the settings and adapter as they are now. With wait=False (an event loop
        that must not block) a change waits for the next call if an answer holds the lock."""
        if self._paths is None or self.state() != self._built_for:
            if self.lock.acquire(blocking=wait or self._paths is None):
                try:
                    key = self.state(fresh=True)
                    self._paths, self._built_for = self._build(self.settings), key
                finally:
                    self.lock.release()
        return self._paths

    def update_settings(self, changes: dict) -> Settings:
        """Change and save settings; the paths follow before the next answer."""
        settings = self.settings.updated(**changes)
        with self.lock:  # no answer is half-way through when the paths change
            self._paths = self._build(settings)
            settings.save(self.store.dir)
            self._settings, self._settings_stamp = settings, Settings.stamp(self.store.dir)
            self._built_for = self.state(fresh=True)
        return settings

    def _build(self, settings: Settings) -> Paths:
        paths = build(self.store, settings, retriever=self.retriever(settings))
        for name, reason in paths.unavailable.items():
            log.info("path %s not available: %s", name, reason)
        return paths
