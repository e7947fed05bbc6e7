"""Keep the knowledge base in step with where it came from: every web page and local file is read
again, and only what changed is stored again (so only new or changed passages are embedded, by
the search index's own sync).

- A site that was read by following its links (`kbchat ingest URL --crawl N`) is followed again
  from the same address, so pages the site added since are found and added.

- A page the site says is gone (HTTP 404 or 410), or a file that was deleted, is removed.
- A page or file that fails to load (a timeout, a server error, a damaged file) keeps its old
  passages and is reported: a site that is down for a moment never empties the chatbot.
- The owner's own answers (kb.corrections) and uploads are kbchat's copies: they are read again
  like any file, and never removed by a sync.
- One sync at a time per knowledge base folder (a lock file); the last report is kept in
  `sync.json` for the app and `kbchat sync --last`.

    >>> report = sync(store, settings)                                    # doctest: +SKIP
    >>> report.summary()                                                  # doctest: +SKIP
    '1 document changed and read again (about.html); 11 documents unchanged.'
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import threading
import time
from datetime import datetime, timezone
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from kb.crawls import Crawls
from kb.errors import BadInput
from kb.files import atomic_write
from kb.ingest import IngestResult, ingest
from kb.settings import Settings
from kb.sources import kept_copy
from kb.store import Store, now_iso
from kb.web import is_url

REPORT = "sync.json"
LOCK = "sync.lock"
log = logging.getLogger("kbchat.sync")


@dataclass
class SyncReport:
    started_at: str
    finished_at: str = ""
    seconds: float = 0.0
    changed: list[str] = field(default_factory=list)  # sources read again with new content
    added: list[str] = field(default_factory=list)  # new pages found by following a site's links
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)  # gone from the site or the disk: their passages went
    failed: list[dict] = field(default_factory=list)  # {"source", "reason"}: kept with their old passages
    passages_removed: int = 0

    def summary(self) -> str:
        """The report in plain words, one sentence per kind of change."""
        def names(uris: list[str]) -> str:
            shown = ", ".join(_name(u) for u in uris[:5])
            return shown + (f" and {len(uris) - 5} more" if len(uris) > 5 else "")

        parts = []
        if self.added:
            parts.append(f"{len(self.added)} new page{'' if len(self.added) == 1 else 's'} found on the site and "
                         f"added ({names(self.added)})")
        if self.changed:
            parts.append(f"{_documents(len(self.changed))} changed and read again ({names(self.changed)})")
        if self.removed:
            parts.append(f"{_documents(len(self.removed))} removed, gone from the site or the disk "
                         f"({names(self.removed)})")
        parts.append(f"{_documents(self.unchanged)} unchanged")
        text = "; ".join(parts) + "."
        if self.failed:
            text += (f" {_documents(len(self.failed))} could not be read and kept {'its' if len(self.failed) == 1 else 'their'}"
                     " old passages: " + "; ".join(f"{_name(f['source'])} ({f['reason']})" for f in self.failed[:5]) + ".")
        return text

    @property
    def changed_anything(self) -> bool:
        return bool(self.changed or self.added or self.removed)


def _documents(n: int) -> str:
    return f"{n} document{'' if n == 1 else 's'}"


def _name(uri: str) -> str:
    return uri if is_url(uri) else Path(uri).name


def sync(store: Store, settings: Settings,
         on_result: Callable[[str, IngestResult | None], None] | None = None) -> SyncReport:
    """Read every source again; `on_result(uri, result)` hears each one as it is done (result None
    for a removed source). Raises BadInput when another sync of this knowledge base is running."""
    with _only_one(store.dir):
        started = time.monotonic()
        report = SyncReport(now_iso())
        known, done = {s.uri for s in store.sources()}, set()
        for start, pages in Crawls.load(store.dir).sites.items():  # followed again: finds the pages added since
            for result in ingest(store, [start], settings, crawl_pages=pages):
                done.add(result.target)
                if result.target in known:
                    _record(report, store, result.target, result, on_result)
                elif result.status == "added":
                    report.added.append(result.target)
                    if on_result is not None:
                        on_result(result.target, result)
                elif result.failed:  # a link to a page that cannot be read: nothing of it was kept
                    log.info("sync: %s could not be read (%s)", result.target, result.reason)
        for source in store.sources():
            if source.uri not in done:
                result = next(iter(ingest(store, [source.uri], settings)), None)
                if result is not None:
                    _record(report, store, source.uri, result, on_result)
        report.finished_at, report.seconds = now_iso(), round(time.monotonic() - started, 1)
        atomic_write(Path(store.dir) / REPORT, lambda f: f.write(json.dumps(asdict(report), indent=1).encode()))
        return report


def _record(report: SyncReport, store: Store, uri: str, result: IngestResult,
           on_result: Callable[[str, IngestResult | None], None] | None) -> None:
    """A known source read again, in the report (and removed when it is gone)."""
    if result.failed and result.gone and not kept_copy(store, uri):
        report.passages_removed += store.remove_source(uri)
        report.removed.append(uri)
        result = None
    elif result.failed:
        report.failed.append({"source": uri, "reason": result.reason})
    elif result.status in ("added", "updated"):
        report.changed.append(uri)
    else:
        report.unchanged += 1
    if on_result is not None:
        on_result(uri, result)


def last(kb_dir) -> SyncReport | None:
    """The report of the last sync, or None when there was none (or it cannot be read)."""
    try:
        return SyncReport(**json.loads((Path(kb_dir) / REPORT).read_text()))
    except (OSError, ValueError, TypeError):
        return None


@contextlib.contextmanager
def _only_one(kb_dir):
    path = Path(kb_dir) / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BadInput("A sync of this knowledge base is already running. Wait for it to finish; its report "
                           "shows on the Knowledge page and with: kbchat sync --last") from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class Background:
    """`kbchat serve`'s syncs: every sync_every_hours (read from the settings each time, so a change
    needs no restart; 0 is off), counted from the last sync of this knowledge base wherever it ran,
    in a thread of its own, so answers go on meanwhile. `after(report)` runs after a sync that
    changed something (the server brings its search index up to date there)."""

    CHECK_S = 60.0  # how often a sleeping syncer looks at the setting and the clock

    def __init__(self, store: Store, settings: Callable[[], Settings], after: Callable[[SyncReport], None]):
        self.store, self.settings, self.after = store, settings, after
        self._stop = threading.Event()
        self._tried = 0.0  # time.time() of the last try here, so a sync that keeps failing waits its turn too
        self._thread = threading.Thread(target=self._run, name="kbchat-sync", daemon=True)

    def start(self) -> "Background":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def due_in(self) -> float | None:
        """Seconds until the next sync (0: now), or None when the setting is off."""
        hours = self.settings().server.sync_every_hours
        if hours <= 0:
            return None
        report = last(self.store.dir)
        done = _epoch(report.finished_at) if report else 0.0
        return max(0.0, max(done, self._tried) + hours * 3600 - time.time())

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self.due_in()
            except Exception:  # noqa: BLE001 - settings broken by hand: look again later
                log.exception("sync: cannot read the settings")
                wait = None
            if wait is None or wait > 0:
                self._stop.wait(self.CHECK_S if wait is None else min(wait, self.CHECK_S))
                continue
            self._tried = time.time()
            try:
                report = sync(self.store, self.settings())
            except BadInput as e:  # another sync runs (kbchat sync, the app, another worker)
                log.info("sync skipped: %s", e)
                continue
            except Exception:  # noqa: BLE001 - the server goes on; the next try is hours away
                log.exception("sync failed")
                continue
            log.info("sync: %s", report.summary())
            if report.changed_anything:
                try:
                    self.after(report)
                except Exception:  # noqa: BLE001
                    log.exception("after the sync")


def _epoch(iso: str) -> float:
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
