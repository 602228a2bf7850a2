"""Alert, digest and notice messages, built with aiogram's formatting (entities, no HTML),
so article text is never interpreted as markup and lengths are counted exactly."""

from __future__ import annotations

from datetime import date
from typing import Any

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.formatting import BlockQuote, Bold, Italic, Text, TextLink
from babel.dates import format_date

from bot.i18n import current_language, fill, ngettext
from bot.i18n import gettext as _

__all__ = ["AlertAction", "alert_payload", "render"]

TITLE_CHARS = 250
TEXT_LIMIT = 4096
LABEL_TOPIC_CHARS = 24


class AlertAction(CallbackData, prefix="al"):
    """Buttons under an alert: ``ask`` about the article, ``mute`` the subscription."""

    action: str
    article: str
    sub: int


def alert_payload(
    *,
    article_id: str,
    title: str,
    url: str | None,
    outlet: str | None,
    published: date | None,
    quote: str,
    topic: str,
    source: str,
    sub_id: int | None,
) -> dict[str, Any]:
    """Everything the sender needs to render an alert, stored in the outbox row."""
    return {
        "article_id": article_id,
        "title": title,
        "url": url,
        "outlet": outlet,
        "published": published.isoformat() if published else None,
        "quote": quote,
        "topic": topic,
        "source": source,
        "sub_id": sub_id,
    }


def render(
    kind: str, payload: dict[str, Any]
) -> tuple[dict[str, Any], InlineKeyboardMarkup | None]:
    """(sendMessage text/entities kwargs, keyboard) for an outbox row."""
    if kind == "alert":
        return _alert(payload)
    if kind == "digest":
        return _digest(payload), None
    if "values" in payload:  # a catalogue text, in the chat's language
        return Text(_(payload["text"]).format(**payload["values"])).as_kwargs(), None
    return Text(payload["text"]).as_kwargs(), None


def _headline(item: dict[str, Any]) -> Any:
    title = _cut(item["title"], TITLE_CHARS)
    return TextLink(title, url=item["url"]) if item.get("url") else Bold(title)


def _source_line(item: dict[str, Any]) -> str:
    parts = [item.get("outlet") or "", _date(item.get("published"))]
    return " · ".join(p for p in parts if p)


def _reason(item: dict[str, Any]) -> str:
    if item.get("topic") and item.get("source"):
        return _("you follow “{topic}” from {source}").format(
            topic=item["topic"], source=item["source"]
        )
    if item.get("topic"):
        return _("you follow “{topic}”").format(topic=item["topic"])
    if item.get("source"):
        return _("you follow {source}").format(source=item["source"])
    return _("you follow every new article")


def _alert(item: dict[str, Any]) -> tuple[dict[str, Any], InlineKeyboardMarkup]:
    parts: list[Any] = [_headline(item)]
    if line := _source_line(item):
        parts += ["\n", line]
    parts += [
        "\n\n",
        Italic(_("Why you got this: {reason}").format(reason=_reason(item))),
        "\n",
        BlockQuote(_cut(item["quote"], 900)),
    ]
    also = item.get("also") or []
    if also:
        outlets: list[Any] = []
        for number, other in enumerate(also[:5]):
            outlets += [
                ", " if number else "",
                _headline({**other, "title": other["outlet"] or other["title"]}),
            ]
        parts += ["\n", fill(_("Also reported by: {outlets}"), outlets=Text(*outlets))]
    article, sub = item["article_id"], int(item.get("sub_id") or 0)
    label = item.get("topic") or item.get("source") or ""
    mute = (
        _("🔕 Mute “{topic}”").format(topic=_cut(label, LABEL_TOPIC_CHARS))
        if label
        else _("🔕 Mute these alerts")
    )
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("💬 Ask about this article"),
                    callback_data=AlertAction(action="ask", article=article, sub=sub).pack(),
                ),
                InlineKeyboardButton(
                    text=mute,
                    callback_data=AlertAction(action="mute", article=article, sub=sub).pack(),
                ),
            ]
        ]
    )
    return Text(*parts).as_kwargs(), keyboard


def _digest(payload: dict[str, Any]) -> dict[str, Any]:
    items = payload["items"]
    more = payload.get("more", 0)
    total = len(items) + more
    header = Bold(
        ngettext(
            "Your digest: {count} new article", "Your digest: {count} new articles", total
        ).format(count=total)
    )
    parts: list[Any] = [header]
    length = len(header.as_kwargs()["text"])
    for item in items:
        entry: list[Any] = ["\n\n• ", _headline(item)]
        if line := _source_line(item):
            entry += ["\n", line]
        reason = _reason(item)
        entry += ["\n", Italic(reason[:1].upper() + reason[1:])]
        size = len(Text(*entry).as_kwargs()["text"])
        if length + size > TEXT_LIMIT - 100:
            more += 1
            continue
        parts += entry
        length += size
    if more:
        parts += ["\n\n", _("…and {count} more: ask me about them.").format(count=more)]
    return Text(*parts).as_kwargs()


def _date(value: str | None) -> str:
    if not value:
        return ""
    return format_date(date.fromisoformat(value), "d MMMM y", locale=current_language())


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"
