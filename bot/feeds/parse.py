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
_TAG = re.compile(r"<[^>]+>")
_DROP = re.compile(r"<(script|style|figcaption)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
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
    parsed: Any = feedparser.parse(
        data,
        response_headers={"content-location": url, "content-type": content_type},
        sanitize_html=True,
        resolve_relative_uris=True,
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
    title = html.unescape(_TAG.sub("", raw.get("title") or "")).strip()
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
    """Plain paragraphs (separated by blank lines) from sanitised feed HTML."""
    markup = _DROP.sub(" ", markup)
    markup = _BLOCK_END.sub("\n\n", markup)
    text = html.unescape(_TAG.sub(" ", markup))
    paragraphs = (" ".join(block.split()) for block in re.split(r"\n\s*\n", text))
    return "\n\n".join(p for p in paragraphs if p)


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
