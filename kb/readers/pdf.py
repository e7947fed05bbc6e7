"""PDF files with pypdf: text per page, the page number kept for citations.

pypdf returns one line per printed line. `blocks` rejoins lines into paragraphs and spots headings,
so passages break at paragraphs and sections (located as "page 3 > 5. Damaged Pieces") instead
of mid-sentence. Running headers and footers repeated on most pages are dropped.
"""

from __future__ import annotations

import io
import logging
import re
from collections import Counter

from kb.errors import BadInput
from kb.records import Document, Section

_END = (".", "!", "?", ":", ";", ",")
_BULLET = re.compile(r"^([*\-\u2022\u25aa\u25cf]|\d+[.)]|[a-z][.)])\s")
_PAGE_NUMBER = re.compile(r"^(page\s+)?\d+(\s*(of|/)\s*\d+)?$", re.I)

logging.getLogger("pypdf").setLevel(logging.ERROR)  # damaged files are reported by us, once


def _is_heading(line: str, width: int) -> bool:
    words = line.split()
    return (
        0 < len(words) <= 10
        and len(line) < 0.75 * width
        and not line.endswith(_END)
        and (line[0].isupper() or line[0].isdigit())
        and not line.startswith(("* ", "- ", "\u2022"))
    )


def blocks(text: str) -> list[tuple[str, bool]]:
    """Paragraphs of one page as (text, is_heading). A short line that ends a sentence ends its
    paragraph; a bullet starts one; a short line without punctuation is a heading.

    >>> blocks("Refunds\\nRefunds are given within 14 days of the purchase\\nwith a receipt.\\n* Cash only.")
    [('Refunds', True), ('Refunds are given within 14 days of the purchase with a receipt.', False), ('* Cash only.', False)]
    """
    lines = [ln.strip() for ln in text.split("\n")]
    width = max((len(ln) for ln in lines), default=0)
    out: list[tuple[str, bool]] = []
    current: list[str] = []

    def flush():
        if current:
            out.append((re.sub(r"(\w)- (\w)", r"\1\2", " ".join(current)), False))
            current.clear()

    for line in lines:
        if not line:
            flush()
        elif _is_heading(line, width) and (not current or current[-1].endswith((".", "!", "?", ":"))):
            flush()
            out.append((line, True))
        else:
            if _BULLET.match(line):
                flush()
            current.append(line)
            if len(line) < 0.75 * width and line.endswith((".", "!", "?", ":")):
                flush()
    flush()
    return out


def _running_lines(pages: list[str]) -> set[str]:
    """Header and footer lines printed on most pages ("Acme Ltd - Policies", "Page 2 of 5")."""
    if len(pages) < 3:
        return set()
    edges = Counter()
    for text in pages:
        lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
        edges.update(set(lines[:2] + lines[-2:]))
    return {line for line, n in edges.items() if n >= 0.6 * len(pages)}


def read_pdf(data: bytes, name: str) -> Document:
    from pypdf import PdfReader

    if b"%PDF-" not in data[:1024]:
        raise BadInput("this is not a PDF (it has no PDF header); it may be another kind of file renamed to .pdf")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            # Many PDFs are "encrypted" with an empty password only to restrict printing; those open.
            try:
                opened = reader.decrypt("")
            except Exception:  # pypdf raises several types for unsupported encryption
                opened = 0
            if not opened:
                raise BadInput(
                    "the PDF is password-protected; open it, save a copy without the password, and ingest that"
                )
        texts = [page.extract_text() or "" for page in reader.pages]
        title = (reader.metadata.title if reader.metadata else None) or name
    except BadInput:
        raise
    except Exception as e:  # a damaged file surfaces as many different errors inside pypdf
        raise BadInput(f"the PDF is damaged and cannot be read ({type(e).__name__}: {e})") from None
    if not texts:
        raise BadInput("the PDF has no pages")
    if not any(t.strip() for t in texts):
        raise BadInput(
            "no text could be extracted: the PDF looks scanned (pages are images). "
            "Run it through OCR (for example ocrmypdf) or export it with text, then ingest it again"
        )
    running = _running_lines(texts)
    sections: list[Section] = []
    heading = ""
    for n, text in enumerate(texts, start=1):
        lines = [ln for ln in text.split("\n") if ln.strip() not in running and not _PAGE_NUMBER.match(ln.strip())]
        body: list[str] = []
        has_text = False

        def flush():
            if has_text:
                sections.append(Section("\n\n".join(body), f"page {n}" + (f" > {heading}" if heading else "")))

        for para, is_heading in blocks("\n".join(lines)):
            if is_heading:
                if has_text:
                    flush()
                    body, has_text = [], False
                heading = para
            else:
                has_text = True
            body.append(para)
        flush()
    return Document(kind="pdf", title=str(title), sections=sections)
