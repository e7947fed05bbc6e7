"""Ingestion: files, folders and URLs into the store, one result per file or page.

Bad input comes in two tiers. A bad file in a batch is reported with its reason and the rest goes
on; each file is stored in one transaction, so an interruption keeps every file finished before it
and leaves the others as they were.

    >>> for result in ingest(store, ["docs/", "https://example.com"], settings):  # doctest: +SKIP
    ...     print(result.target, result.status, result.reason)
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from kb import readers
from kb.chunk import chunk_document
from kb.crawls import Crawls
from kb.errors import BadInput
from kb.records import Document, Source
from kb.settings import Settings
from kb.store import Store, now_iso
from kb.web import PageGone, crawl, is_url

IGNORE_FILE = ".kbchatignore"
# Bump when a reader or the chunker changes its output, so unchanged files are read again.
PIPELINE_VERSION = "2"


@dataclass
class IngestResult:
    target: str  # the file path or URL
    status: str  # "added", "updated", "unchanged", "failed" or "skipped" (unsupported file in a folder)
    kind: str = ""
    title: str = ""
    n_chunks: int = 0
    n_faqs: int = 0
    reason: str = ""  # why it failed or was skipped
    warnings: list[str] = field(default_factory=list)  # parts of the file that were skipped
    gone: bool = False  # failed because the file or page no longer exists (kb.sync removes it)

    @property
    def failed(self) -> bool:
        return self.status == "failed"


def ingest(store: Store, targets: list[str], settings: Settings, crawl_pages: int = 0) -> Iterator[IngestResult]:
    """Ingest files, folders (recursively) and http(s) URLs. `crawl_pages` > 1 follows same-site
    links from each URL up to that many pages, and is remembered (kb.crawls) so that a sync finds
    the pages the site adds later; pages of it the owner removed are passed by."""
    for target in targets:
        if is_url(target):
            memory = Crawls.load(store.dir)
            memory.asked_for(store.dir, target, crawl_pages)
            yield from _ingest_url(store, target, settings, max(1, crawl_pages), memory.removed)
            continue
        path = Path(target).expanduser()
        if not path.exists():
            yield IngestResult(target, "failed", reason="no such file or folder", gone=True)
        elif path.is_dir():
            for file, ignored_reason in walk_folder(path):
                if ignored_reason:
                    yield IngestResult(str(file), "skipped", reason=ignored_reason)
                else:
                    yield _ingest_file(store, file, settings)
        else:
            yield _ingest_file(store, path, settings)


def walk_folder(folder: Path) -> Iterator[tuple[Path, str]]:
    """Files under a folder in a stable order, with a reason for the ones not to ingest.
    Hidden files and folders are passed over silently; `.kbchatignore` patterns apply below it."""
    patterns: dict[Path, list[str]] = {}
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        ignore = root_path / IGNORE_FILE
        if ignore.is_file():
            patterns[root_path] = [
                ln.strip() for ln in ignore.read_text(encoding="utf-8", errors="replace").splitlines()
                if ln.strip() and not ln.startswith("#")
            ]
        for name in sorted(files):
            if name.startswith("."):
                continue
            file = root_path / name
            if _ignored(file, patterns):
                continue
            if not readers.supported(name):
                yield file, f"'{file.suffix or name}' files are not supported"
            else:
                yield file, ""


def _ignored(file: Path, patterns: dict[Path, list[str]]) -> bool:
    for base, pats in patterns.items():
        if base in file.parents:
            rel = file.relative_to(base).as_posix()
            if any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(file.name, p) for p in pats):
                return True
    return False


def _signature(content: bytes | str, settings: Settings) -> str:
    """Changes when the content or anything that changes its chunks changes."""
    data = content.encode() if isinstance(content, str) else content
    h = hashlib.sha256(data)
    h.update(f"|{settings.ingest.chunk_size}|{settings.ingest.chunk_overlap}|{PIPELINE_VERSION}".encode())
    return h.hexdigest()[:24]


def _ingest_file(store: Store, path: Path, settings: Settings) -> IngestResult:
    target = str(path)
    if not readers.supported(path.name):
        return IngestResult(target, "failed", reason=readers.unsupported_message(path.suffix.lower()))
    try:
        size = path.stat().st_size
        if size == 0:
            raise BadInput("the file is empty")
        limit = settings.ingest.max_file_mb * 1_000_000
        if size > limit:
            raise BadInput(f"the file is {size / 1e6:.1f} MB, over the {settings.ingest.max_file_mb:g} MB limit (setting max_file_mb)")
        try:
            data = path.read_bytes()
        except OSError as e:
            raise BadInput(f"the file cannot be read ({e.strerror or e})") from None
        uri = str(path.resolve())
        signature = _signature(data, settings)
        previous = store.source(uri)
        if previous and previous.content_hash == signature:
            return IngestResult(target, "unchanged", previous.kind, previous.title, previous.n_chunks, previous.n_faqs)
        try:
            doc = readers.read(data, path.name)
        except BadInput:
            raise
        except Exception as e:  # noqa: BLE001 - a reader library choking on a broken file fails that file only
            raise BadInput(f"the file could not be read; it may be damaged ({type(e).__name__}: {str(e)[:200]})") from None
        return _store(store, uri, doc, signature, size, settings, target)
    except BadInput as e:
        return IngestResult(target, "failed", reason=str(e))


def _ingest_url(store: Store, url: str, settings: Settings, max_pages: int,
                passed_by: set[str]) -> Iterator[IngestResult]:
    for page_url, page in crawl(url, max_pages, settings):
        if page_url in passed_by or getattr(page, "url", None) in passed_by:
            continue  # its links are still followed
        if isinstance(page, BadInput):
            yield IngestResult(page_url, "failed", reason=str(page), gone=isinstance(page, PageGone))
            continue
        try:
            doc = readers.read(page.content, page.url, ext=page.ext)
        except BadInput as e:
            yield IngestResult(page_url, "failed", reason=str(e))
            continue
        # Pages carry dates, tokens and ads that change on every visit; compare what we keep.
        signature = _signature(_doc_text(doc), settings)
        previous = store.source(page.url)
        if previous and previous.content_hash == signature:
            yield IngestResult(page.url, "unchanged", previous.kind, previous.title, previous.n_chunks, previous.n_faqs)
            continue
        try:
            yield _store(store, page.url, doc, signature, len(page.content), settings, page.url)
        except BadInput as e:
            yield IngestResult(page_url, "failed", reason=str(e))


def _doc_text(doc: Document) -> str:
    parts = [f"{s.location}\n{s.text}" for s in doc.sections] + [f"{p.question}\n{p.answer}" for p in doc.faqs]
    return doc.title + "\n\n" + "\n\n".join(parts)


def _store(store: Store, uri: str, doc: Document, signature: str, size: int, settings: Settings, target: str) -> IngestResult:
    chunks = chunk_document(doc, uri, settings.ingest.chunk_size, settings.ingest.chunk_overlap)
    if not chunks:
        if doc.kind == "faq":
            detail = f" ({'; '.join(doc.warnings[:3])})" if doc.warnings else ""
            raise BadInput(f"no complete question/answer pairs were found{detail}")
        raise BadInput("no text was found in it")
    source = Source(uri, doc.kind, doc.title or Path(uri).name, signature, size, now_iso())
    status = store.replace_source(source, chunks)
    n_faqs = sum(1 for c in chunks if c.faq)
    return IngestResult(target, status, doc.kind, source.title, len(chunks), n_faqs, warnings=doc.warnings)
