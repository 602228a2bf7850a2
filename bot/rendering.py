"""Messages built from index results, with ``aiogram.utils.formatting`` so article text is
always escaped. Every renderer here stays within Telegram's 4096-character limit (counted in
UTF-16 after entity parsing) by construction: long fields are trimmed to a budget."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

from aiogram.utils.formatting import BlockQuote, Bold, Italic, Text, TextLink, sizeof
from aiogram.utils.text_decorations import html_decoration
from babel.dates import format_date as babel_date

from bot.i18n import current_language, fill, ngettext
from bot.i18n import gettext as _
from index import Article, ArticleInfo, Hit

__all__ = [
    "TEXT_LIMIT",
    "answer_text",
    "article_parts",
    "clip",
    "hit_text",
    "html",
    "latest_text",
    "length",
    "not_found_text",
    "source_line",
    "sources_text",
]

TEXT_LIMIT = 4096  # Telegram's limit for a message, in UTF-16 code units after parsing
PART_LIMIT = 3800  # a part of a long article, leaving room for its header
_CONTEXT_STEPS = (320, 160, 80, 0)  # characters of passage kept on each side of the quote
_QUOTE_STEPS = (None, 800, 400, 200, 100)
_SPACES = re.compile(r"\s+")


def html(node: Text) -> str:
    """``node`` as Telegram HTML, all text escaped. (Nested entities that start together are
    ordered outermost first: ``Text.as_html`` would close a blockquote inside its bold.)"""
    text, entities = node.render()
    return html_decoration.unparse(text, sorted(entities, key=lambda e: (e.offset, -e.length)))


def length(node: Text) -> int:
    """The length Telegram counts for ``node``: UTF-16 code units of its plain text."""
    return sizeof(node.render()[0])


def clip(text: str, limit: int) -> str:
    """``text`` with collapsed whitespace, cut at a word boundary to ``limit`` characters."""
    text = _SPACES.sub(" ", text).strip()
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    if " " in cut[limit // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.") + "…"


def _clip_start(text: str, limit: int) -> str:
    """The end of ``text`` kept to ``limit`` characters, starting at a word."""
    text = _SPACES.sub(" ", text)
    if len(text) <= limit:
        return text.lstrip()
    if limit == 0:
        return "…"
    tail = text[-limit:]
    if " " in tail[: limit // 2]:
        tail = tail.split(" ", 1)[1]
    return "…" + tail.lstrip()


def _clip_end(text: str, limit: int) -> str:
    text = _SPACES.sub(" ", text)
    if len(text) <= limit:
        return text.rstrip()
    return " " + clip(text, limit) if limit else "…"


def format_date(value: date | None, pattern: str = "d MMM y") -> str | None:
    """``21 Jun 2022`` (``21 июн. 2022``, ``21 iyn 2022``) in the current language."""
    return babel_date(value, pattern, locale=current_language()) if value else None


def source_line(hit: Hit | ArticleInfo | Article, title_limit: int = 150) -> Text:
    """Headline linked to its URL, then outlet, date and author, separated by dots."""
    title = clip(hit.title, title_limit) or _("Untitled")
    headline = TextLink(title, url=hit.url) if hit.url else Bold(title)
    return Text(headline, *(Text(" · ", detail) for detail in _details(hit)))


def _details(item: Hit | ArticleInfo | Article) -> list[str]:
    """Outlet, date and author, those that are known."""
    details = [
        clip(item.outlet or "", 60),
        format_date(item.published),
        clip(item.author or "", 60),
    ]
    return [detail for detail in details if detail]


def _quoted(hit: Hit, context: int, quote_limit: int | None) -> Text:
    start, end = hit.quote_span
    quote = hit.passage[start:end] or hit.quote
    quote = clip(quote, quote_limit) if quote_limit else _SPACES.sub(" ", quote).strip()
    before = _clip_start(hit.passage[:start], context)
    after = _clip_end(hit.passage[end:], context)
    return BlockQuote(before, Bold(quote), after)


def _hit_block(number: int | None, hit: Hit, budget: int) -> Text:
    """The quote in its passage, then the source line, trimmed until it fits ``budget``."""
    block = Text()
    for context in _CONTEXT_STEPS:
        for quote_limit in _QUOTE_STEPS:
            prefix = f"{number}. " if number is not None else ""
            block = Text(_quoted(hit, context, quote_limit), "\n", prefix, source_line(hit))
            if length(block) <= budget:
                return block
    return Text(_quoted(hit, 0, 100), "\n", source_line(hit, 60))


def hit_text(hit: Hit) -> Text:
    """One hit on its own (an inline result's message): the quote, then the source."""
    return _hit_block(None, hit, TEXT_LIMIT)


def answer_text(question: str, hits: Sequence[Hit], first_number: int = 1) -> Text:
    """The answer to ``question``: each hit's quote in its passage, then its source line."""
    header = Text("🔎 ", Bold(clip(question, 200)), "\n\n")
    separator = "\n\n"
    budget = (TEXT_LIMIT - length(header) - len(separator) * len(hits)) // max(len(hits), 1)
    blocks: list[Text | str] = []
    for number, hit in enumerate(hits, start=first_number):
        if blocks:
            blocks.append(separator)
        blocks.append(_hit_block(number, hit, budget))
    return Text(header, *blocks)


def not_found_text(question: str) -> Text:
    """Nothing relevant: say so and suggest what to try."""
    return fill(
        _(
            "I found nothing about {question} in the articles I know.\n\n"
            "Try rephrasing with other words (names, places, topics), "
            "or see /latest for what I have read recently."
        ),
        question=Bold(clip(question, 200)),
    )


def article_parts(article: Article) -> list[Text]:
    """The full article: a header with its source, then its text in parts under the limit."""
    title = Bold(clip(article.title, 300) or _("Untitled"))
    header = Text(TextLink(title, url=article.url) if article.url else title)
    if _details(article):
        header = Text(header, "\n", " · ".join(_details(article)))
    chunks = _split(article.text, PART_LIMIT)
    if len(chunks) <= 1:
        return [Text(header, "\n\n", *chunks)]
    total = len(chunks)
    part = _("Part {number} of {total}")
    parts = [Text(header, "\n\n", Italic(part.format(number=1, total=total)), "\n\n", chunks[0])]
    for number, chunk in enumerate(chunks[1:], start=2):
        parts.append(Text(Italic(part.format(number=number, total=total)), "\n\n", chunk))
    return parts


def _split(text: str, limit: int) -> list[str]:
    """Split at paragraph boundaries (else at spaces) into pieces of at most ``limit``."""
    pieces: list[str] = []
    current = ""
    for paragraph in (p.strip() for p in text.split("\n\n")):
        while sizeof(paragraph) > limit:
            cut = _cut_point(paragraph, limit)
            if current:
                pieces.append(current)
                current = ""
            pieces.append(paragraph[:cut].rstrip())
            paragraph = paragraph[cut:].lstrip()
        if not paragraph:
            continue
        joined = f"{current}\n\n{paragraph}" if current else paragraph
        if sizeof(joined) > limit:
            pieces.append(current)
            joined = paragraph
        current = joined
    if current:
        pieces.append(current)
    return pieces


def _cut_point(text: str, limit: int) -> int:
    """Where to cut ``text`` so the head fits ``limit`` UTF-16 units: a space if one is near."""
    cut = min(len(text), limit)
    while sizeof(text[:cut]) > limit:
        cut -= max((sizeof(text[:cut]) - limit) // 2, 1)
    space = text.rfind(" ", 0, cut)
    return space if space > cut // 2 else cut


def latest_text(articles: Sequence[ArticleInfo]) -> Text:
    """The newest articles, one linked source line each."""
    if not articles:
        return Text(_("No articles yet. An admin can add some with /add or by sending a file."))
    lines: list[Text | str] = [Bold(_("Latest articles")), "\n"]
    for number, info in enumerate(articles, start=1):
        lines += ["\n", f"{number}. ", source_line(info)]
    return Text(*lines)


def sources_text(sources: Sequence[tuple[str, int]]) -> Text:
    """Outlets and how many of their articles are indexed."""
    if not sources:
        return Text(_("No articles yet. An admin can add some with /add or by sending a file."))
    lines: list[Text | str] = [Bold(_("Sources")), "\n"]
    for outlet, count in sources[:60]:
        template = ngettext("{outlet} — {count} article", "{outlet} — {count} articles", count)
        outlet_name = clip(outlet or _("Unknown outlet"), 80)
        lines += ["\n• ", fill(template, outlet=outlet_name, count=count)]
    if len(sources) > 60:
        lines += ["\n", _("…and {count} more").format(count=len(sources) - 60)]
    return Text(*lines)
