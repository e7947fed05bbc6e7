"""Structure-aware chunking: a Document's sections become passages of about `size` characters.

Passages never cross a section (a page, a heading); inside a section they break between paragraphs,
else between sentences, else between words. Neighbouring passages share about `overlap` characters
so a fact cut at a boundary is still found. A Markdown table split over passages repeats its header.
An FAQ pair is always one passage, never split.

    >>> doc = Document("text", sections=[Section("One. " * 300)])
    >>> chunks = chunk_document(doc, "a.txt", 800, 100)
    >>> len(chunks), all(len(c.text) <= 800 for c in chunks)
    (3, True)
"""

from __future__ import annotations

import re

from kb.records import Chunk, Document, Section, chunk_id  # noqa: F401 (Section: doctest)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_LIST_ITEM = re.compile(r"\n(?=\s{0,3}(?:[-*+\u2022]|\d+[.)])\s)")


def faq_text(question: str, answer: str) -> str:
    return f"Q: {question}\nA: {answer}"


def chunk_document(doc: Document, source: str, size: int, overlap: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    for pair in doc.faqs:
        text = faq_text(pair.question, pair.answer)
        chunks.append(Chunk(chunk_id(source, text, seen), source, pair.location, text, faq=pair))
    for n, section in enumerate(doc.sections, start=1):
        location = section.location or (f"part {n}" if len(doc.sections) > 1 else "")
        for text in split_text(section.text, size, overlap):
            chunks.append(Chunk(chunk_id(source, text, seen), source, location, text))
    return chunks


def split_text(text: str, size: int, overlap: int) -> list[str]:
    """Pack the text's units (paragraphs, else sentences, else words) into pieces <= size."""
    pieces: list[str] = []
    current: list[tuple[str, str]] = []  # (unit, the separator that goes before it)

    def joined(parts: list[tuple[str, str]]) -> str:
        return "".join((sep if i else "") + unit for i, (unit, sep) in enumerate(parts))

    def fits(parts: list[tuple[str, str]]) -> bool:
        return sum(len(u) for u, _ in parts) + 2 * (len(parts) - 1) <= size

    for unit, table_header, sep in _units(text.strip(), size):
        continues_table = table_header is not None and not unit.startswith(table_header)
        if current and not fits(current + [(unit, sep)]):
            pieces.append(joined(current))
            if continues_table:
                current = []  # no overlap inside a table: the repeated header gives the context
                unit = f"{table_header}\n{unit}"
            else:
                current = _tail(current, overlap)
                while current and not fits(current + [(unit, sep)]):
                    current.pop(0)
        elif continues_table and current and current[-1][0].startswith(table_header):
            current[-1] = (current[-1][0] + "\n" + unit, current[-1][1])  # one table stays one block
            continue
        current.append((unit, sep))
    if current:
        pieces.append(joined(current))
    return [p for p in (piece.strip() for piece in pieces) if p]


def _units(text: str, size: int) -> list[tuple[str, str | None, str]]:
    """Paragraphs, cut further where one is longer than size: a list into its items, prose into
    sentences. Each unit comes with the header of the Markdown table it belongs to (or None) and
    the separator that joins it to the unit before ("\n\n" paragraph, "\n" list item, " ")."""
    units: list[tuple[str, str | None, str]] = []
    for para in re.split(r"\n\s*\n", text):
        para = para.strip()
        if not para:
            continue
        if len(para) <= size:
            units.append((para, None, "\n\n"))
        elif _is_table(para):
            lines = para.split("\n")
            head = "\n".join(lines[:2])  # header row and its |---| rule
            group: list[str] = []
            for row in lines[2:]:
                if group and len(head) + len("\n".join(group + [row])) + 1 > size:
                    units.append(_table_unit(head, group, first=not any(u[1] == head for u in units)))
                    group = []
                group.append(row[: size - len(head) - 1])
            if group:
                units.append(_table_unit(head, group, first=not any(u[1] == head for u in units)))
        else:
            for i, item in enumerate(_LIST_ITEM.split(para)):
                pieces = [w for sentence in _SENTENCE_END.split(item) for w in _hard_wrap(sentence, size)]
                units += [(w, None, "\n\n" if i == j == 0 else "\n" if j == 0 else " ") for j, w in enumerate(pieces)]
    return units


def _table_unit(head: str, rows: list[str], first: bool) -> tuple[str, str, str]:
    # The first rows carry the header in their text; later rows get it when they open a piece.
    return ("\n".join([head] + rows) if first else "\n".join(rows)), head, "\n\n"


def _is_table(para: str) -> bool:
    lines = para.split("\n")
    return len(lines) >= 3 and all(ln.lstrip().startswith("|") for ln in lines) and set(lines[1].strip()) <= set("|-: ")


def _hard_wrap(sentence: str, size: int) -> list[str]:
    if len(sentence) <= size:
        return [sentence]
    words, out, line = sentence.split(), [], ""
    for word in words:
        while len(word) > size:  # a "word" longer than a passage: a URL or junk
            if line:
                out.append(line)
                line = ""
            out.append(word[:size])
            word = word[size:]
        if line and len(line) + 1 + len(word) > size:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        out.append(line)
    return out


def _tail(parts: list[tuple[str, str]], overlap: int) -> list[tuple[str, str]]:
    """The trailing units of a piece that fit in `overlap` characters; if even the last one does
    not fit, its last words up to `overlap` characters. A table is never cut: a slice of it would
    be half a row with no header, so it gives no overlap."""
    if overlap <= 0 or not parts:
        return []
    tail: list[tuple[str, str]] = []
    total = 0
    for unit, sep in reversed(parts):
        if total + len(unit) > overlap:
            break
        tail.insert(0, (unit, sep))
        total += len(unit) + 2
    if tail:
        return tail
    if parts[-1][0].lstrip().startswith("|"):
        return []
    words = parts[-1][0][-overlap:].split(" ", 1)
    return [(words[1], "\n\n")] if len(words) == 2 and words[1] else []
