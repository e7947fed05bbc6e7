"""How kbchat words things for people: a document or passage by its file name or page path (not the
absolute path on the owner's disk), and how long something took."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit


def split_uri(uri: str) -> tuple[str, str]:
    """('faq.csv', '/home/me/docs') for a file; ('/about', 'https://example.com') for a page."""
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        return parts.path or "/", f"{parts.scheme}://{parts.netloc}"
    folder = Path(uri).parent
    try:
        where = str(folder.relative_to(Path.cwd())) or "."
    except ValueError:
        where = str(folder).replace(str(Path.home()), "~", 1)
    return Path(uri).name, where


def place(source: str, location: str) -> str:
    """'policies.pdf, page 2 > Kiln Room Access': where a passage is, as the owner names it."""
    name, _ = split_uri(source)
    return f"{name}, {location}" if location else name


def visitor_place(kind: str, title: str, uri: str, location: str) -> str:
    """Where a passage is, as a visitor names it: 'Our FAQ', or the document's title with its page and
    section ('Studio Policies and Safety Guide, page 2: Kiln Room Access'), never a file name and row.

    >>> visitor_place("markdown", "Price List", "/srv/price_list.md", "Price List > Classes")
    'Price List: Classes'
    >>> visitor_place("faq", "faq.csv", "/srv/faq.csv", "row 7")
    'Our FAQ'
    """
    if kind == "faq":
        return "Our FAQ"
    name, _ = split_uri(uri)
    title = " ".join(str(title).split())
    if not title or title == name:  # a file without a title of its own: its name in words
        title = Path(name).stem.replace("_", " ").replace("-", " ").strip().capitalize() or name
    parts = [p.strip() for p in str(location).split(" > ") if p.strip()]
    page = parts.pop(0) if parts and _PAGE.fullmatch(parts[0]) else ""
    headings = [p for p in parts if p != title and not _PART.fullmatch(p)]
    return title + (f", {page}" if page else "") + (f": {headings[-1]}" if headings else "")


_PAGE = re.compile(r"page \d+")
_PART = re.compile(r"(part|row) \d+")


def duration(ms: float) -> str:
    """1234.5 -> '1.2 s'; 80 -> '80 ms'."""
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms:.0f} ms"


def plural(n: int, word: str) -> str:
    """plural(1, "passage") -> '1 passage'; plural(3, "FAQ pair") -> '3 FAQ pairs'."""
    return f"{n} {word}{'' if n == 1 else 's'}"



WORDS_PER_TOKEN = 0.75  # English text: a token is about 3/4 of a word


def writing_speed(n_tokens: int, tokens_per_s: float | None) -> str | None:
    """'writes about 9 words a second', for an answer the model wrote; None for a short one, whose
    rate says more about the start-up than the model (a 1-token answer once showed '1 tokens/s')."""
    if not tokens_per_s or n_tokens < 10:
        return None
    words = tokens_per_s * WORDS_PER_TOKEN
    return f"wrote about {words:.0f} words a second" if words >= 1.5 else "wrote slowly (under 2 words a second)"
