"""Alert, digest and notice messages, built with aiogram's formatting (entities, no HTML),
so article text is never interpreted as markup and lengths are counted exactly."""

from __future__ import annotations

from datetime import date
from typing import Any

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.formatting import BlockQuote, Bold, Italic, Text, TextLink

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
    return Text(payload["text"]).as_kwargs(), None


def _headline(item: dict[str, Any]) -> Any:
    title = _cut(item["title"], TITLE_CHARS)
    return TextLink(title, url=item["url"]) if item.get("url") else Bold(title)


def _source_line(item: dict[str, Any]) -> str:
    parts = [item.get("outlet") or "", _date(item.get("published"))]
    return " · ".join(p for p in parts if p)


def _reason(item: dict[str, Any]) -> str:
    if item.get("topic") and item.get("source"):
        return f"you follow “{item['topic']}” from {item['source']}"
    if item.get("topic"):
        return f"you follow “{item['topic']}”"
    if item.get("source"):
        return f"you follow {item['source']}"
    return "you follow every new article"


def _alert(item: dict[str, Any]) -> tuple[dict[str, Any], InlineKeyboardMarkup]:
    parts: list[Any] = [_headline(item)]
    if line := _source_line(item):
        parts += ["\n", line]
    parts += [
        "\n\n",
        Italic(f"Why you got this: {_reason(item)}"),
        "\n",
        BlockQuote(_cut(item["quote"], 900)),
    ]
    also = item.get("also") or []
    if also:
        parts += ["\n", "Also reported by: "]
        for number, other in enumerate(also[:5]):
            parts += [
                ", " if number else "",
                _headline({**other, "title": other["outlet"] or other["title"]}),
            ]
    article, sub = item["article_id"], int(item.get("sub_id") or 0)
    label = item.get("topic") or item.get("source") or ""
    mute = f"🔕 Mute “{_cut(label, LABEL_TOPIC_CHARS)}”" if label else "🔕 Mute these alerts"
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text="💬 Ask about this article",
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
    header = Bold(
        f"Your digest: {len(items) + more} new article{'s' if len(items) + more != 1 else ''}"
    )
    parts: list[Any] = [header]
    length = len(header.as_kwargs()["text"])
    for item in items:
        entry: list[Any] = ["\n\n• ", _headline(item)]
        if line := _source_line(item):
            entry += ["\n", line]
        entry += ["\n", Italic(_reason(item).capitalize())]
        size = len(Text(*entry).as_kwargs()["text"])
        if length + size > TEXT_LIMIT - 100:
            more += 1
            continue
        parts += entry
        length += size
    if more:
        parts.append(f"\n\n…and {more} more: ask me about them.")
    return Text(*parts).as_kwargs()


def _date(value: str | None) -> str:
    if not value:
        return ""
    day = date.fromisoformat(value)
    return f"{day.day} {day:%B %Y}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"
