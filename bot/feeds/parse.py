"""Feed documents to entries: RSS 0.9x/1.0/2.0 and Atom through feedparser."""

from __future__ import annotations

import calendar
import hashlib
import html
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import feedparser

from bot.feeds.errors import FeedError

__all__ = ["FeedEntry", "ParsedFeed", "html_to_text", "parse_feed"]

_BLOCK_END = re.compile(
    r"</(?:p|div|li|h[1-6]|blockquote|pre|tr|section|article|figure)\s*>|<br\s*/?>|<hr\s*/?>",
    re.IGNORECASE,
)
# Each pattern is used so that it runs in time linear in the markup (see _strip_tags and
# _drop_elements): a "<" with no ">" after it, or an element never closed, is not searched
# for again from every later position.
_TAG = re.compile(r"<[^>]+>")
_DROP_OPEN = re.compile(r"<(script|style|figcaption)\b", re.IGNORECASE)
_DROP_CLOSE = {
    name: re.compile(rf"</{name}\s*>", re.IGNORECASE) for name in ("script", "style", "figcaption")
}
_TRACKING = re.compile(r"^(utm_|fbclid$|gclid$|ocid$|cmpid$)")


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One item of a feed, with its text as plain paragraphs."""

    key: str  # the entry's identity within its feed: id, else link, else a content digest
    title: str
    link: str | None  # the original link when the feed names it (feedburner:origLink)
    text: str
    author: str | None
    published_at: datetime | None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str | None
    ttl_minutes: int | None
    entries: list[FeedEntry]


def parse_feed(data: bytes, url: str, content_type: str = "application/xml") -> ParsedFeed:
    """Parse a feed document; raises ``FeedError`` when it is not a feed."""
    # Entries become plain text here (html_to_text), so feedparser's HTML sanitiser and URI
    # resolver, which rewrite markup we drop anyway, are off: the sanitiser's search for the
    # end of an unclosed "<!--" is quadratic (64 KB of them held the GIL for 2.5 s).
    parsed: Any = feedparser.parse(
        data,
        response_headers={"content-location": url, "content-type": content_type},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    if not parsed.get("version") and not parsed.entries:
        reason = parsed.get("bozo_exception") or "no RSS or Atom markup found"
        raise FeedError(f"not a feed ({reason})")
    entries = [entry for raw in parsed.entries if (entry := _entry(raw)) is not None]
    ttl = str(parsed.feed.get("ttl") or "").strip()
    return ParsedFeed(
        title=(parsed.feed.get("title") or "").strip() or None,
        ttl_minutes=int(ttl) if ttl.isdigit() else None,
        entries=entries,
    )


def _entry(raw: Any) -> FeedEntry | None:
    title = html.unescape(_strip_tags(raw.get("title") or "", "")).strip()
    link = raw.get("feedburner_origlink") or raw.get("link") or None
    bodies = [c.get("value", "") for c in raw.get("content") or []]
    bodies.append(raw.get("summary") or "")
    text = max((html_to_text(body) for body in bodies), key=len)
    if not title and not text:
        return None
    key = raw.get("id") or link or hashlib.sha256(f"{title}\n{text}".encode()).hexdigest()
    stamp = raw.get("published_parsed") or raw.get("updated_parsed")
    published = datetime.fromtimestamp(calendar.timegm(stamp), UTC) if stamp else None
    return FeedEntry(
        key=str(key),
        title=title,
        link=clean_url(link) if link else None,
        text=text,
        author=(raw.get("author") or "").strip() or None,
        published_at=published,
    )


def html_to_text(markup: str) -> str:
    """Plain paragraphs (separated by blank lines) from feed HTML."""
    markup = _drop_elements(markup)
    markup = _BLOCK_END.sub("\n\n", markup)
    text = html.unescape(_strip_tags(markup, " "))
    paragraphs = (" ".join(block.split()) for block in re.split(r"\n\s*\n", text))
    return "\n\n".join(p for p in paragraphs if p)


def _strip_tags(markup: str, replacement: str) -> str:
    """``markup`` with every tag replaced; a "<" after the last ">" stays text."""
    last = markup.rfind(">") + 1
    return _TAG.sub(replacement, markup[:last]) + markup[last:]


def _drop_elements(markup: str) -> str:
    """``markup`` without script, style and figcaption elements (an unclosed one stays)."""
    kept: list[str] = []
    position = resume = 0
    unclosed: set[str] = set()
    while opening := _DROP_OPEN.search(markup, resume):
        name = opening.group(1).lower()
        closing = None if name in unclosed else _DROP_CLOSE[name].search(markup, opening.end())
        if closing is None:
            unclosed.add(name)
            resume = opening.end()
            continue
        kept += (markup[position : opening.start()], " ")
        position = resume = closing.end()
    kept.append(markup[position:])
    return "".join(kept)


def clean_url(url: str) -> str:
    """The URL without tracking parameters (utm_*, fbclid, ...) and fragment."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url.strip())
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)
    ]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def published_date(entry: FeedEntry) -> date | None:
    return entry.published_at.date() if entry.published_at else None
