"""Parse article inputs (bytes plus a name) into ``Article`` records.

Formats, chosen by extension and then by content:

1. the Azernews / today.az text layout: `` date YYYY-MM-DD By <Outlet>``, ``By <Author>``,
   then paragraphs separated by blank lines;
2. plain text or Markdown whose first line is the headline (the BBC corpus layout);
3. HTML article pages (main text and metadata extracted by trafilatura);
4. JSON / JSONL records with ``title``, ``text`` and optional ``url``, ``published``,
   ``outlet``, ``author``.

Bytes that are not text (binary data, no fitting encoding, many control characters) are
refused. Files named like a project's or a corpus's own papers (README, LICENSE, ...) are
not articles: ingesting a folder skips them (``is_article_name``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from datetime import date, datetime
from pathlib import PurePath
from typing import Any

from index import parsing_pool
from index.errors import InputError
from index.models import Article

TEXT_EXTENSIONS = {".txt", ".text", ".md", ".markdown"}
HTML_EXTENSIONS = {".html", ".htm", ".xhtml"}
JSON_EXTENSIONS = {".json", ".jsonl", ".ndjson"}
SUPPORTED_EXTENSIONS = TEXT_EXTENSIONS | HTML_EXTENSIONS | JSON_EXTENSIONS
NOT_ARTICLE_NAMES = frozenset(
    {
        "authors",
        "changelog",
        "changes",
        "code_of_conduct",
        "contributing",
        "copying",
        "copyright",
        "history",
        "licence",
        "license",
        "notice",
        "readme",
        "security",
    }
)  # compared with the lower-cased name without extension, and its part before a "-"
_CONTROL_CHARACTERS = [chr(c) for c in (*range(0x01, 0x09), *range(0x0E, 0x20), *range(0x7F, 0xA0))]
_TEXT_SAMPLE_CHARS = 65_536
_MAX_CONTROL_SHARE = 0.01  # real text, in any language, has next to none
# Smaller pages are parsed in the calling process: a child's round trip saves nothing there
# (16 KB: 10 ms either way) and they hold the GIL for milliseconds (python -m index.parsing_bench).
IN_PROCESS_HTML_CHARS = 16_384

# The name runs to the end of the line (callers strip it): "(.+?)\s*$" re-scans trailing
# whitespace for every character tried, which is quadratic on a long line.
_AZERNEWS_HEAD = re.compile(r"^\s*date\s+(\d{4}-\d{2}-\d{2})\s+By\s+(.+)", re.IGNORECASE)
_BYLINE = re.compile(r"^\s*By\s+(.+)")
_MARKDOWN_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+")
_BLANK_LINES = re.compile(r"\n\s*\n")


def parse(name: str, data: bytes, *, url: str | None = None) -> list[Article]:
    """Articles in one input; raises ``InputError`` with the reason when there are none."""
    if not data.strip():
        raise InputError("empty file")
    if b"\x00" in data[:8192]:
        raise InputError("binary file, not text")
    text = decode(data)
    _check_text(text)
    suffix = PurePath(name).suffix.lower()
    if suffix in JSON_EXTENSIONS or (suffix not in SUPPORTED_EXTENSIONS and _looks_json(text)):
        articles = parse_json(text, source=name)
    elif suffix in HTML_EXTENSIONS or (suffix not in TEXT_EXTENSIONS and _looks_html(text)):
        articles = [parse_html(text, source=name, url=url)]
    elif suffix in TEXT_EXTENSIONS or not suffix:
        articles = [parse_text(text, source=name, url=url)]
    else:
        raise InputError(f"unsupported file type {suffix!r}")
    return articles


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM) when valid; mostly-ASCII text as Windows-1252 (the
    usual legacy encoding of Western news, a superset of Latin-1's printable range) when
    that decodes cleanly; anything else as charset-normalizer guesses it."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    non_ascii = sum(byte >= 0x80 for byte in data)
    if non_ascii <= len(data) // 3:  # Western text: a few accented letters and symbols
        with contextlib.suppress(UnicodeDecodeError):  # bytes cp1252 leaves undefined
            return data.decode("cp1252")
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise InputError("not text (binary data, or an encoding that cannot be recognised)")
    return str(best)


def is_article_name(name: str) -> bool:
    """False for README, LICENSE and the like (any case, any extension, ``README-2``):
    files that describe a project or a corpus rather than report news."""
    stem = PurePath(name).stem.lower()
    return stem not in NOT_ARTICLE_NAMES and stem.split("-")[0] not in NOT_ARTICLE_NAMES


def _check_text(text: str) -> None:
    """Refuse decoded bytes that are not language: random or binary data without a NUL
    decodes to text full of control characters."""
    sample = text[:_TEXT_SAMPLE_CHARS]
    controls = sum(sample.count(character) for character in _CONTROL_CHARACTERS)
    if controls > _MAX_CONTROL_SHARE * len(sample):
        raise InputError(
            f"not text ({controls / len(sample):.0%} of the characters are control characters)"
        )


def parse_text(text: str, *, source: str, url: str | None = None) -> Article:
    """The Azernews layout, or a headline line followed by paragraphs."""
    lines = _from_first_nonblank(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    head = _AZERNEWS_HEAD.match(lines[0]) if lines else None
    published = outlet = author = None
    title = ""
    if head:
        published = _parse_date(head.group(1))
        outlet = head.group(2)
        rest = _from_first_nonblank(lines[1:])
        if rest and (byline := _BYLINE.match(rest[0])):
            author = byline.group(1)
            rest = rest[1:]
        body = _paragraphs("\n".join(rest))
        title = _headline_from(body)
    else:
        title = _MARKDOWN_HEADING.sub("", lines[0]).strip() if lines else ""
        body = _paragraphs("\n".join(lines[1:]))
    if not body:
        raise InputError("no article text after the headline")
    return make_article(
        title=title,
        text=body,
        url=url,
        outlet=outlet,
        author=author,
        published=published,
        source=source,
    )


def _from_first_nonblank(lines: list[str]) -> list[str]:
    """``lines`` without the blank ones at the start (one slice: popping them one by one
    took minutes on a file of 800,000 newlines)."""
    first = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    return lines[first:]


def parse_html(html: str, *, source: str, url: str | None = None) -> Article:
    """Main text, headline, date, author and canonical URL of an article page. A page of
    ``IN_PROCESS_HTML_CHARS`` or more is parsed in a child process (``index.parsing_pool``):
    trafilatura holds the GIL for seconds on a few megabytes, and a slow page is stopped
    after ``PARSE_TIMEOUT``."""
    if len(html) < IN_PROCESS_HTML_CHARS:
        return parse_html_here(html, source=source, url=url)
    return parsing_pool.run(parse_html_here, html, source=source, url=url)


def parse_html_here(html: str, *, source: str, url: str | None = None) -> Article:
    """``parse_html`` in the calling process, whatever the page's size."""
    from trafilatura import bare_extraction
    from trafilatura.settings import Document

    doc = bare_extraction(html, url=url, with_metadata=True, include_comments=False)
    if not isinstance(doc, Document) or not (doc.text or "").strip():
        raise InputError("no article text found in the HTML page")
    title = (doc.title or "").strip()
    paragraphs = [line.strip() for line in (doc.text or "").split("\n") if line.strip()]
    if paragraphs and title and paragraphs[0] == title:
        paragraphs = paragraphs[1:]
    if not paragraphs:
        raise InputError("no article text found in the HTML page")
    return make_article(
        title=title or _headline_from("\n\n".join(paragraphs)),
        text="\n\n".join(paragraphs),
        url=doc.url or url,
        outlet=doc.sitename or doc.hostname,
        author=doc.author,
        published=_parse_date(doc.date),
        source=source,
    )


def parse_json(text: str, *, source: str) -> list[Article]:
    """A JSON object, a JSON list of objects, or JSON Lines; every record must be valid."""
    try:
        payload = _load_json(text, where="")
        records = payload if isinstance(payload, list) else [payload]
    except json.JSONDecodeError:
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(_load_json(line, where=f" on line {number}"))
            except json.JSONDecodeError as error:
                raise InputError(f"invalid JSON on line {number}: {error.msg}") from None
    if not records:
        raise InputError("no JSON records")
    return [
        _article_from_record(record, number, source)
        for number, record in enumerate(records, start=1)
    ]


def _load_json(text: str, *, where: str) -> Any:
    """``json.loads``; raises ``JSONDecodeError`` on bad syntax and ``InputError`` on JSON
    that is valid but unusable (nested too deeply, numbers too long to convert)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise InputError(f"invalid JSON{where}: nested too deeply") from None
    except ValueError:  # Python refuses integers of more than 4,300 digits
        raise InputError(f"invalid JSON{where}: a number is too long") from None


def _article_from_record(record: Any, number: int, source: str) -> Article:
    if not isinstance(record, dict):
        raise InputError(f"record {number} is not a JSON object")
    title, body = record.get("title"), record.get("text")
    if not isinstance(title, str) or not title.strip():
        raise InputError(f"record {number} has no 'title'")
    if not isinstance(body, str) or not body.strip():
        raise InputError(f"record {number} has no 'text'")
    text = _paragraphs(body)
    if not text:
        raise InputError(f"record {number} has an empty 'text'")
    return make_article(
        title=title.strip(),
        text=text,
        url=_optional_str(record, "url"),
        outlet=_optional_str(record, "outlet"),
        author=_optional_str(record, "author"),
        published=_parse_date(record.get("published")),
        source=source,
    )


def make_article(
    *,
    title: str,
    text: str,
    url: str | None,
    outlet: str | None,
    author: str | None,
    published: date | None,
    source: str | None,
) -> Article:
    """An article with its stable id: from the canonical URL, else from the content."""
    url = url.strip() if url and _is_web_url(url.strip()) else None
    article_id = article_id_for_url(url) if url else _digest(f"text:{title}\n{text}")
    return Article(
        id=article_id,
        title=title.strip() or _headline_from(text),
        text=text,
        url=url,
        outlet=(outlet or "").strip() or None,
        author=(author or "").strip() or None,
        published=published,
        source=source,
    )


def article_id_for_url(url: str) -> str:
    """The id of the article at ``url`` (any spelling of its canonical URL)."""
    return _digest(f"url:{canonical_url(url)}")


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def canonical_url(url: str) -> str:
    """The URL as an identity: no fragment, no trailing slash, lower-cased host."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def _paragraphs(text: str) -> str:
    """Paragraphs separated by exactly one blank line, whitespace inside them folded."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks = [" ".join(block.split()) for block in _BLANK_LINES.split(text)]
    if len(blocks) == 1 and "\n" in text.strip():  # single newlines separate paragraphs
        blocks = [" ".join(line.split()) for line in text.split("\n")]
    return "\n\n".join(block for block in blocks if block)


def _headline_from(body: str) -> str:
    """A headline for text that has none: its first sentence, shortened."""
    first = body.split("\n\n", 1)[0]
    sentence = re.split(r"(?<=[.!?])\s", first, maxsplit=1)[0]
    return sentence if len(sentence) <= 100 else sentence[:99].rsplit(" ", 1)[0] + "\u2026"


def _parse_date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(value).date()
    except (TypeError, ValueError):
        return None


def _is_web_url(url: str) -> bool:
    """Only http(s) URLs with a host are kept: they become links and buttons in messages."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def _optional_str(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    return value.strip() or None if isinstance(value, str) else None


def _looks_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


def _looks_html(text: str) -> bool:
    head = text.lstrip()[:512].lower()
    return head.startswith(("<!doctype html", "<html")) or "<body" in text[:4096].lower()
