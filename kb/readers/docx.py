"""Word .docx files with python-docx. Heading styles become Markdown headings, so sections keep
their heading path; tables become one row per line."""

from __future__ import annotations

import io
import zipfile

from kb.errors import BadInput
from kb.readers.text import markdown_sections
from kb.records import Document


def read_docx(data: bytes, name: str) -> Document:
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    from kb.readers import check_zip

    check_zip(data, "Word .docx")
    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, PackageNotFoundError, KeyError, ValueError):
        raise BadInput("this is not a readable Word .docx file: it may be damaged, password-protected or another kind "
                       "of file renamed to .docx. Open it in Word and save it again as .docx, without a password") from None
    blocks = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            rows = [" | ".join(c.text.strip() for c in row.cells) for row in block.rows]
            blocks.append("\n".join(r for r in rows if r.strip(" |")))
            continue
        text = block.text.strip()
        if not text:
            continue
        style = (block.style.name if block.style is not None else "") or ""
        if style == "Title":
            blocks.append(f"# {text}")
        elif style.startswith("Heading") and style[-1:].isdigit():
            # One level below "Title", so a document title heads its sections' paths.
            blocks.append("#" * min(int(style.split()[-1]) + 1, 6) + " " + text)
        elif style.startswith("List"):
            blocks.append(f"- {text}")
        else:
            blocks.append(text)
    sections = markdown_sections("\n\n".join(blocks))
    title = document.core_properties.title or next((s.location.split(" > ")[0] for s in sections if s.location), name)
    return Document(kind="docx", title=title, sections=sections)
