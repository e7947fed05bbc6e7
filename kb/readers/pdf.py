"""PDF files with pypdf: text per page, the page number kept for citations.

pypdf returns one line per printed line; `reflow` rejoins lines into paragraphs so the chunker
can cut at paragraph and sentence boundaries instead of mid-sentence.
"""

from __future__ import annotations

import io
import re

from kb.errors import BadInput
from kb.records import Document, Section

_END = (".", "!", "?", ":", ";")


def reflow(text: str) -> str:
    """Join printed lines into paragraphs; a short line that ends a sentence, or a short line with
    no punctuation (a heading), ends its paragraph.

    >>> reflow("Refunds are given within\\n14 days.\\nPickup\\nPieces wait 30 days.")
    'Refunds are given within 14 days.\\n\\nPickup\\n\\nPieces wait 30 days.'
    """
    lines = [ln.strip() for ln in text.split("\n")]
    width = max((len(ln) for ln in lines), default=0)
    paragraphs, current = [], []

    def flush():
        if current:
            paragraphs.append(re.sub(r"(\w)- (\w)", r"\1\2", " ".join(current)))
            current.clear()

    for line in lines:
        if not line:
            flush()
            continue
        current.append(line)
        short = len(line) < 0.75 * width
        if short and (line.endswith(_END) or not line[-1] in ",-"):
            flush()
    flush()
    return "\n\n".join(paragraphs)


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
    sections = [Section(reflow(t), f"page {n}") for n, t in enumerate(texts, start=1) if t.strip()]
    if not sections:
        raise BadInput(
            "no text could be extracted: the PDF looks scanned (pages are images). "
            "Run it through OCR (for example ocrmypdf) or export it with text, then ingest it again"
        )
    return Document(kind="pdf", title=str(title), sections=sections)
