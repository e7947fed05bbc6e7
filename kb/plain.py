"""Passages as people read them. Markdown files, web pages and Word documents are kept as Markdown
(the headings and lists help the search and the writer), so their passages hold marks like
`**Helen Marsh**`; a visitor's source snippet and the owner's preview show the text without them.
The Markdown is read by markdown-it-py (CommonMark), not by hand.

    >>> readable("**Helen Marsh** runs the [kiln room](https://example.com/kiln).", "html")
    'Helen Marsh runs the kiln room.'
    >>> readable("1. Wear closed shoes\\n2. No food", "markdown")
    '1. Wear closed shoes\\n2. No food'
"""

from __future__ import annotations

from functools import lru_cache

MARKDOWN_KINDS = ("markdown", "html", "docx")  # the readers that keep a document as Markdown
_MARKDOWN_FILES = (".md", ".markdown", ".html", ".htm", ".docx")


def kind_of(uri: str) -> str:
    """'markdown' for a source whose passages are Markdown (by its name: a web page, a .md, .html or
    .docx file), else '' (no marks to leave out); for when only the source's address is at hand."""
    uri = str(uri).lower()
    return "markdown" if uri.startswith(("http://", "https://")) or uri.endswith(_MARKDOWN_FILES) else ""


@lru_cache(maxsize=1)
def _parser():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table")


def readable(text: str, kind: str) -> str:
    """The passage without Markdown marks when its document kind is kept as Markdown; other kinds
    (PDF, plain text, FAQ answers, subtitles) come back unchanged."""
    if kind not in MARKDOWN_KINDS:
        return text
    lines, prefix, row = [], "", None
    for token in _parser().parse(text):
        kind_ = token.type
        if kind_ == "list_item_open":
            prefix = f"{token.info}{token.markup} " if token.info else "• "
        elif kind_ == "tr_open":
            row = []
        elif kind_ == "tr_close":
            lines.append(" | ".join(row or []))
            row = None
        elif kind_ == "inline":
            words = _inline(token.children or [])
            if row is not None:
                row.append(words)
            else:
                lines.append(prefix + words)
                prefix = ""
        elif kind_ in ("fence", "code_block", "html_block"):
            lines.append(token.content.rstrip("\n"))
    return "\n".join(lines)


def _inline(children) -> str:
    parts = []
    for child in children:
        if child.type in ("text", "code_inline", "html_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type == "image":
            parts.append(child.content)  # its alt text
    return "".join(parts)
