"""How a document or passage is named to the owner and to visitors: the file name or page path,
not the absolute path on the owner's disk."""

from __future__ import annotations

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
