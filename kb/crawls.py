"""The sites a knowledge base reads by following their links (`kbchat ingest URL --crawl N`), kept
in `crawls.json` in its folder so that `kbchat sync` follows them again and finds the pages a site
adds later; and the pages of them the owner removed, which a sync passes by.

    >>> memory = Crawls.load(kb_dir)                                         # doctest: +SKIP
    >>> memory.sites, memory.removed                                         # doctest: +SKIP
    ({'https://example.com/': 20}, {'https://example.com/old-offer'})
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from kb.files import atomic_write

FILE = "crawls.json"


@dataclass
class Crawls:
    sites: dict[str, int] = field(default_factory=dict)  # start address -> most pages
    removed: set[str] = field(default_factory=set)  # pages of those sites the owner removed

    @classmethod
    def load(cls, kb_dir) -> "Crawls":
        """What is kept (nothing when the file is missing or unreadable)."""
        try:
            saved = json.loads((Path(kb_dir) / FILE).read_text(encoding="utf-8"))
            sites = {u: n for u, n in saved.get("sites", {}).items() if isinstance(u, str) and isinstance(n, int)}
            removed = saved.get("removed", [])
            return cls(sites, {u for u in removed if isinstance(u, str)} if isinstance(removed, list) else set())
        except (OSError, ValueError, AttributeError, TypeError):
            return cls()

    def save(self, kb_dir) -> None:
        data = {"sites": self.sites, "removed": sorted(self.removed)}
        atomic_write(Path(kb_dir) / FILE, lambda f: f.write(json.dumps(data, indent=1).encode()))

    def asked_for(self, kb_dir, url: str, max_pages: int) -> None:
        """The owner read `url` (following its links when `max_pages` > 1): it is followed from now
        on, and no longer passed by."""
        follow = max_pages > 1 and self.sites.get(url) != max_pages
        if follow or url in self.removed:
            if follow:
                self.sites[url] = max_pages
            self.removed.discard(url)
            self.save(kb_dir)

    def leave_out(self, kb_dir, url: str) -> None:
        """The owner removed this page: a sync following its site passes it by."""
        if self.sites and url not in self.removed:
            self.removed.add(url)
            self.save(kb_dir)
