"""HTML pages: the main content only (no navigation, scripts, styles, cookie banners), extracted
with trafilatura as Markdown so headings become the sections' locations."""

from __future__ import annotations

import re

from kb.errors import BadInput
from kb.readers.text import decode_text, markdown_sections
from kb.records import Document


def read_html(data: bytes, name: str, url: str | None = None) -> Document:
    import trafilatura

    html = decode_text(data, "web page")
    if not html.strip():
        raise BadInput("the page is empty")
    options = dict(
        url=url,
        output_format="markdown",
        include_comments=False,
        include_tables=True,
        include_links=False,
        include_images=False,
        include_formatting=True,  # keeps headings, which become section locations
        deduplicate=False,
    )
    markdown = trafilatura.extract(html, favor_precision=True, **options)
    if not markdown or len(markdown) < 200:
        # Short pages (an "About" page with three paragraphs) can fall under the precision
        # heuristics; recall mode keeps them, still without navigation and boilerplate.
        markdown = trafilatura.extract(html, favor_recall=True, **options) or markdown
    if not markdown or not markdown.strip():
        raise BadInput("no readable text was found on the page (it may be built by JavaScript, or empty)")
    # Source indentation survives inside list items ("- text\n          more text"): rejoin it.
    markdown = re.sub(r"\n[ \t]+(?![-*+] |\d+\. )", " ", markdown)
    meta = trafilatura.extract_metadata(html)
    title = (meta.title if meta and meta.title else None) or name
    return Document(kind="html", title=title, sections=markdown_sections(markdown))
