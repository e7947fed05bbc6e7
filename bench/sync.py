"""`kbchat sync` of a changed web site, measured against reading the whole site again.

    .venv/bin/python bench/sync.py                # 24 pages on loopback, 1 changed, 1 removed (~2 min)
    .venv/bin/python bench/sync.py --pages 60

The site is made from the sample's documents (each section of the price list, the about page and
the policies a page of its own) and served on 127.0.0.1. It is crawled into a knowledge base and
indexed (quality profile), then one page changes and one is removed, and:
  * sync: `kbchat sync`'s work (kb.sync, then the index brought up to date),
  * baseline: the same site read into a fresh knowledge base and indexed from nothing.
Prints the time of each, the passages embedded, and the ratio.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kb import sync  # noqa: E402
from kb.ingest import ingest  # noqa: E402
from kb.settings import Settings  # noqa: E402
from kb.store import Store  # noqa: E402
from rag.retrieve import Retriever  # noqa: E402


def sections(n: int) -> list[tuple[str, str]]:
    """(title, text) pieces of the sample's Markdown and text, cycled to n pages."""
    text = (ROOT / "sample_data" / "price_list.md").read_text(encoding="utf-8")
    parts = [p.strip() for p in re.split(r"\n(?=## )", text) if len(p.strip()) > 80]
    pages = []
    for i in range(n):
        body = parts[i % len(parts)]
        title = body.splitlines()[0].lstrip("# ").strip()
        pages.append((f"{title} ({i + 1})", body + f"\n\nPage {i + 1} of the studio's site."))
    return pages


def html(title: str, text: str, links: list[str]) -> str:
    paras = "".join(f"<p>{p}</p>" for p in text.split("\n\n"))
    nav = "".join(f'<a href="{link}">{link}</a> ' for link in links)
    return f"<html><head><title>{title}</title></head><body><h1>{title}</h1>{paras}<nav>{nav}</nav></body></html>"


def index(store: Store, settings: Settings) -> tuple[float, str]:
    start = time.perf_counter()
    messages = Retriever(store, settings).sync()
    return time.perf_counter() - start, " / ".join(m for m in messages if "passage index" in m)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=24)
    args = parser.parse_args()
    pages = {f"/p{i}": page for i, page in enumerate(sections(args.pages))}
    links = list(pages)

    class Site(BaseHTTPRequestHandler):
        def do_GET(self):
            page = pages.get(self.path if self.path != "/" else "/p0")
            body = (html(*page, links) if page else "<p>Not here</p>").encode()
            self.send_response(200 if page else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    settings = Settings(model_profile="quality").updated(intranet_addresses="127.0.0.1")
    with tempfile.TemporaryDirectory() as tmp:
        with Store(Path(tmp) / "kb") as store:
            settings.save(store.dir)
            results = list(ingest(store, [f"{base}/p0"], settings, crawl_pages=len(pages)))
            assert sum(r.status == "added" for r in results) == len(pages), [r.reason for r in results if r.failed]
            index(store, settings)  # loads the model and builds the index: not timed
            n_passages = store.count()[1]
            title, text = pages["/p3"]
            pages["/p3"] = (title, text + "\n\nNew this month: gift wrapping for $4.")
            del pages[f"/p{len(pages) - 1}"]
            start = time.perf_counter()
            report = sync.sync(store, settings)
            read_s = time.perf_counter() - start
            index_s, embedded = index(store, settings)
            sync_s = read_s + index_s
        with Store(Path(tmp) / "fresh") as fresh:
            settings.save(fresh.dir)
            start = time.perf_counter()
            list(ingest(fresh, [f"{base}/p0"], settings, crawl_pages=len(pages)))
            full_read = time.perf_counter() - start
            full_index, full_embedded = index(fresh, settings)
            full_s = full_read + full_index
    server.shutdown()
    print(f"\n== kbchat sync of a {args.pages}-page site on loopback ({n_passages} passages), 1 page changed, 1 removed ==")
    print(f"report: {report.summary()}")
    print(f"sync:     {sync_s:6.1f} s (reading {read_s:.1f} s, index {index_s:.1f} s); {embedded}")
    print(f"baseline: {full_s:6.1f} s (reading {full_read:.1f} s, index {full_index:.1f} s); {full_embedded or 'built anew'}")
    print(f"ratio sync/baseline: {sync_s / full_s:.2f}")


if __name__ == "__main__":
    main()
