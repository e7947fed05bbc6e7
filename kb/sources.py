"""The owner's documents as the owner handles them: uploads come in, a source goes out. Every
interface (the CLI, the app's Knowledge page, the API) calls these, so removing a document means
the same thing everywhere.

    >>> add_uploads(store, settings, [("faq.csv", b"Question,Answer\\nOpen?,9-5\\n")])   # doctest: +SKIP
    [IngestResult(target='.../uploads/faq.csv', status='added', ...)]
    >>> remove(store, "faq.csv")                                                      # doctest: +SKIP
    Removed(uri='.../uploads/faq.csv', passages=1, deleted_file=True)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kb import corrections
from kb.crawls import Crawls
from kb.files import safe_name
from kb.ingest import IngestResult, ingest
from kb.settings import Settings
from kb.store import Store
from kb.web import is_url

UPLOADS = "uploads"  # the folder in the knowledge base that keeps the owner's uploaded files


@dataclass
class Removed:
    uri: str
    passages: int
    deleted_file: bool  # a copy kbchat kept (an upload, the owner's own answers) was deleted too


def uploads_folder(store: Store) -> Path:
    return store.dir / UPLOADS


def kept_copy(store: Store, uri: str) -> bool:
    """True when kbchat keeps the file of this source itself (an upload, the owner's own answers):
    removing the source deletes it, or the next ingest or "fix this answer" would bring it back."""
    path = Path(uri).resolve()  # a source's uri is absolute; the folder given with --kb may be relative
    return path.parent == uploads_folder(store).resolve() or path == corrections.path(store.dir).resolve()


def remove(store: Store, name: str) -> Removed:
    """Remove a source (by uri, path or unique file name) and its passages; a copy kbchat keeps
    (an upload, the owner's answers written in kbchat) is deleted with it."""
    source = store.find_source(name)
    n = store.remove_source(source.uri)
    if is_url(source.uri):  # a page of a site kbchat follows: the next sync does not bring it back
        Crawls.load(store.dir).leave_out(store.dir, source.uri)
    kept = kept_copy(store, source.uri)
    if kept:
        Path(source.uri).unlink(missing_ok=True)
    return Removed(source.uri, n, kept)


def add_uploads(store: Store, settings: Settings, files: list[tuple[str, bytes]],
                on_progress: Callable[[int, int, IngestResult], None] | None = None) -> list[IngestResult]:
    """Save uploaded (name, bytes) pairs into the knowledge base's uploads folder and ingest them
    in one batch; one result per file, bad files included (with their reason). A file that fails
    is not kept, and an earlier good version of the same name is put back, so the uploads folder
    holds exactly what the knowledge base was read from."""
    folder = uploads_folder(store)
    folder.mkdir(parents=True, exist_ok=True)
    results: list[IngestResult] = []
    saved: dict[str, tuple[Path, bytes | None]] = {}  # target -> (path, the bytes it replaced)
    for name, data in files:
        base = safe_name(name)
        if not base:
            results.append(IngestResult(str(name), "failed",
                                        reason="the file name cannot be used; rename the file and upload it again"))
            continue
        path = folder / base
        if str(path) in saved:
            results.append(IngestResult(str(path), "failed",
                                        reason="another file in this upload has the same name; upload it separately"))
            continue
        saved[str(path)] = (path, path.read_bytes() if path.is_file() else None)
        path.write_bytes(data)

    done = 0
    for result in ingest(store, list(saved), settings):  # a file that cannot be read fails alone
        if result.failed and result.target in saved:
            path, before = saved[result.target]
            if before is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(before)
        results.append(result)
        done += 1
        if on_progress:
            on_progress(done, len(saved), result)
    return results
