"""Readers turn the bytes of one file into a `Document`. One module per family of formats;
each reader is `read(data: bytes, name: str) -> Document` and raises `BadInput` with a plain reason."""

from __future__ import annotations

from pathlib import PurePath
from typing import Callable

from kb.errors import BadInput
from kb.records import Document
from kb.readers import docx, faq, html, pdf, subtitles, text

Reader = Callable[[bytes, str], Document]

READERS: dict[str, Reader] = {
    ".csv": faq.read_csv,
    ".tsv": faq.read_csv,
    ".xlsx": faq.read_xlsx,
    ".json": faq.read_json,
    ".jsonl": faq.read_jsonl,
    ".pdf": pdf.read_pdf,
    ".md": text.read_markdown,
    ".markdown": text.read_markdown,
    ".txt": text.read_text,
    ".html": html.read_html,
    ".htm": html.read_html,
    ".docx": docx.read_docx,
    ".srt": subtitles.read_subtitles,
    ".vtt": subtitles.read_subtitles,
}

# What a web server's Content-Type maps to, for URLs.
CONTENT_TYPES = {
    "text/html": ".html",
    "application/xhtml+xml": ".html",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/csv": ".csv",
    "application/json": ".json",
    "text/vtt": ".vtt",
    "application/x-subrip": ".srt",
}


# An .xlsx or .docx is a zip archive. One that unpacks to far more than any real spreadsheet or
# document (a "zip bomb") would take all the memory of the machine before its reader gives up.
ZIP_UNPACKED_MAX = 1_000_000_000  # bytes, whatever the ratio
ZIP_RATIO_MAX = 100  # unpacked / packed, once over ZIP_RATIO_FROM
ZIP_RATIO_FROM = 50_000_000


def check_zip(data: bytes, kind: str) -> None:
    """Refuse a zip-based file (.xlsx, .docx) that unpacks to far more than it holds (BadInput).
    The sizes checked are the ones the archive declares; Python's zip reader never unpacks more
    than that, so a file that lies about them fails as damaged instead."""
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            unpacked = sum(info.file_size for info in z.infolist())
    except (zipfile.BadZipFile, ValueError, OSError):
        return  # not a zip at all: the reader says so in its own words
    if unpacked > ZIP_UNPACKED_MAX or (unpacked > ZIP_RATIO_FROM and unpacked > ZIP_RATIO_MAX * len(data)):
        raise BadInput(f"this {kind} file unpacks to {unpacked / 1e6:,.0f} MB from {len(data) / 1e6:,.1f} MB, far more "
                       "than a real one holds (it may be a 'zip bomb'), so kbchat does not open it. Open it in its "
                       "program and save it again, or export it as .csv or .pdf")


def supported(name: str) -> bool:
    return PurePath(name).suffix.lower() in READERS


def read(data: bytes, name: str, ext: str | None = None) -> Document:
    """Read one file's bytes, choosing the reader by extension (or `ext` for web content)."""
    ext = (ext or PurePath(name).suffix).lower()
    reader = READERS.get(ext)
    if reader is None:
        raise BadInput(unsupported_message(ext))
    return reader(data, name)


# Older or related formats an owner is likely to have, and what to save them as.
_CONVERT_HINTS = {".xls": ".xlsx or .csv", ".doc": ".docx", ".odt": ".docx", ".ods": ".xlsx", ".rtf": ".docx",
                  ".pages": ".docx", ".numbers": ".xlsx", ".pptx": ".pdf", ".ppt": ".pdf", ".key": ".pdf"}


def unsupported_message(ext: str) -> str:
    kinds = ", ".join(sorted(READERS))
    what = f"'{ext}' files are" if ext else "files without an extension are"
    hint = f" Save it as {_CONVERT_HINTS[ext]} and ingest that." if ext in _CONVERT_HINTS else ""
    return f"{what} not supported.{hint} Supported: {kinds}"
