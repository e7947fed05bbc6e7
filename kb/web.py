"""Web pages: fetch one URL, or crawl a site from it, politely (robots.txt, a timeout per page,
same site only) and safely: only from public addresses unless the owner allowed an intranet
(kb.addresses, checked on every request, redirect and connection)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urldefrag, urljoin, urlsplit
from urllib.robotparser import RobotFileParser

from kb.errors import BadInput
from kb.readers import CONTENT_TYPES
from kb.settings import Settings

# Links to these are never pages worth reading.
_SKIP_EXTENSIONS = (
    ".jpg", ".jpeg", ".png", ".gif", ".svg", ".webp", ".ico", ".css", ".js", ".zip", ".gz",
    ".mp3", ".mp4", ".mov", ".avi", ".woff", ".woff2", ".ttf", ".exe", ".dmg",
)


class PageGone(BadInput):
    """The site says the page is not there any more (HTTP 404 or 410), rather than failing to serve it."""


@dataclass
class Page:
    url: str  # after redirects, without #fragment
    content: bytes
    ext: str  # the reader to use, from the Content-Type: ".html", ".pdf", ...


def is_url(text: str) -> bool:
    return urlsplit(text).scheme in ("http", "https")


def fetch(url: str, settings: Settings, session=None) -> Page:
    """Fetch one page; any network or HTTP problem, or an address kbchat may not read, becomes a
    BadInput with a plain reason. `session` must come from kb.addresses.session."""
    import requests

    from kb import addresses

    if session is None:
        with addresses.session(settings.ingest.intranet_addresses) as own:
            return fetch(url, settings, own)
    http = session
    limit = int(settings.ingest.max_file_mb * 1_000_000)
    host = urlsplit(url).netloc
    try:
        with http.get(url, timeout=settings.ingest.fetch_timeout_s, headers={"User-Agent": settings.ingest.user_agent}, stream=True) as r:
            if r.status_code >= 400:
                gone = r.status_code in (404, 410)  # the site removed it; anything else may pass
                raise (PageGone if gone else BadInput)(f"the server answered {r.status_code} {r.reason or ''}".rstrip())
            content_type = r.headers.get("Content-Type", "text/html").split(";")[0].strip().lower()
            ext = CONTENT_TYPES.get(content_type)
            if ext is None:
                raise BadInput(f"the page's content type '{content_type}' is not supported")
            body = bytearray()
            for block in r.iter_content(65536):
                body += block
                if len(body) > limit:
                    raise BadInput(f"the page is over the {settings.ingest.max_file_mb:g} MB limit (setting max_file_mb)")
            final = urldefrag(r.url)[0]
    except requests.exceptions.Timeout:
        raise BadInput(f"{host} did not answer within {settings.ingest.fetch_timeout_s:g} s (setting fetch_timeout_s)") from None
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema):
        raise BadInput(f"'{url}' is not a complete web address; write it like https://example.com/page") from None
    except requests.exceptions.ConnectionError:
        raise BadInput(f"could not connect to {host}; check the address and your connection") from None
    except requests.exceptions.RequestException as e:
        raise BadInput(f"could not fetch the page ({type(e).__name__})") from None
    if not body:
        raise BadInput("the page is empty")
    return Page(final, bytes(body), ext)


class _Robots:
    """robots.txt per site, fetched once. A site without one (or that fails to serve it) allows all."""

    def __init__(self, settings: Settings, session):
        self.settings, self.session, self.parsers = settings, session, {}

    def allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        site = f"{parts.scheme}://{parts.netloc}"
        if site not in self.parsers:
            parser = RobotFileParser()
            try:
                r = self.session.get(site + "/robots.txt", timeout=self.settings.ingest.fetch_timeout_s,
                                     headers={"User-Agent": self.settings.ingest.user_agent})
                parser.parse(r.text.splitlines() if r.status_code == 200 else [])
            except Exception:  # unreachable robots.txt: treat as no rules, like most crawlers
                parser.parse([])
            self.parsers[site] = parser
        return self.parsers[site].can_fetch(self.settings.ingest.user_agent, url)


def links(page: Page) -> list[str]:
    """Same-site http(s) links of an HTML page, absolute, without fragments, in page order."""
    import lxml.html

    if page.ext != ".html":
        return []
    try:
        tree = lxml.html.fromstring(page.content)
    except Exception:  # an unparsable page has no links to follow
        return []
    base = page.url
    for href in tree.xpath("//base/@href")[:1]:
        base = urljoin(page.url, href)
    site = urlsplit(page.url).netloc
    out: list[str] = []
    for href in tree.xpath("//a/@href"):
        url = urldefrag(urljoin(base, href.strip()))[0]
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.netloc == site and not parts.path.lower().endswith(_SKIP_EXTENSIONS):
            if url not in out:
                out.append(url)
    return out


def crawl(start: str, max_pages: int, settings: Settings) -> Iterator[tuple[str, Page | BadInput]]:
    """Breadth-first from `start`, following same-site links, at most `max_pages` pages.
    Yields (url, Page) or (url, BadInput) for each page tried."""
    from kb import addresses

    with addresses.session(settings.ingest.intranet_addresses) as session:
        robots = _Robots(settings, session)
        queue, seen, done = deque([urldefrag(start)[0]]), {urldefrag(start)[0]}, 0
        while queue and done < max_pages:
            url = queue.popleft()
            if not robots.allowed(url):
                if url == start:
                    yield url, BadInput("the site's robots.txt does not allow reading this page")
                continue
            done += 1
            try:
                page = fetch(url, settings, session)
            except BadInput as e:
                yield url, e
                continue
            yield url, page
            seen.add(page.url)
            for link in links(page):
                if link not in seen:
                    seen.add(link)
                    queue.append(link)
