"""Plain text and Markdown, and the text decoding every text format shares.

Markdown is split along its headings; each section keeps its heading path as its location:

    >>> [s.location for s in markdown_sections("# Prices\\n## Classes\\nWheel: $30")]
    ['Prices > Classes']
"""

from __future__ import annotations

import re

from kb.errors import BadInput
from kb.records import Document, Section

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def decode_text(data: bytes, what: str = "text file") -> str:
    """Bytes to text: UTF-8 (with or without BOM), UTF-16 with BOM (Excel's "Unicode text"),
    else Windows-1252, the encoding of most older spreadsheets and exports.

    Binary content (a renamed image or PDF) is refused instead of becoming mojibake.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16")
    elif b"\x00" in data[:8192]:
        raise BadInput(f"this does not look like a {what}: it contains binary data")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            # cp1252 leaves five bytes undefined; latin-1 maps every byte, so it is the last resort.
            try:
                text = data.decode("cp1252")
            except UnicodeDecodeError:
                text = data.decode("latin-1")
    sample = text[:20000]
    if sample and len(_CONTROL.findall(sample)) > max(2, len(sample) // 100):
        raise BadInput(f"this does not look like a {what}: it contains binary data")
    return text.replace("\r\n", "\n").replace("\r", "\n")


_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def markdown_sections(text: str) -> list[Section]:
    """Split Markdown along ATX (`# Title`) and setext (`Title` over `===`) headings, ignoring
    `#` lines inside code fences. Each section's location is its heading path."""
    sections: list[Section] = []
    path: list[tuple[int, str]] = []  # (level, heading)
    body: list[str] = []
    in_fence = False

    def flush():
        content = "\n".join(body).strip()
        if content:
            sections.append(Section(content, " > ".join(h for _, h in path)))
        body.clear()

    def open_heading(level: int, title: str):
        flush()
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, _clean_inline(title)))

    for line in text.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
            body.append(line)
            continue
        if not in_fence:
            m = _ATX.match(line)
            if m:
                open_heading(len(m.group(1)), m.group(2))
                continue
            m = _SETEXT.match(line)
            # A setext underline turns the single preceding paragraph line into a heading.
            if m and body and body[-1].strip() and (len(body) == 1 or not body[-2].strip()):
                title = body.pop()
                open_heading(1 if m.group(1)[0] == "=" else 2, title.strip())
                continue
        body.append(line)
    flush()
    return sections


def _clean_inline(text: str) -> str:
    """Drop inline Markdown emphasis and links from a heading: '**Our** [team](x)' -> 'Our team'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[*_`]+", "", text).strip()


def _first_heading(sections: list[Section], fallback: str) -> str:
    for s in sections:
        if s.location:
            return s.location.split(" > ")[0]
    return fallback


def read_markdown(data: bytes, name: str) -> Document:
    sections = markdown_sections(decode_text(data, "Markdown file"))
    return Document(kind="markdown", title=_first_heading(sections, name), sections=sections)


def read_text(data: bytes, name: str) -> Document:
    text = decode_text(data, "text file").strip()
    return Document(kind="text", title=name, sections=[Section(text)] if text else [])
