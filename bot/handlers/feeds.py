"""/feeds for admins: list feeds with their status, add one (polled at once), remove one."""

from __future__ import annotations

import time
from typing import Any

from aiogram import Router
from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import Message
from aiogram.utils.formatting import Bold, Code, Text, as_list

from bot.alerts.service import AlertsService
from bot.rendering import clip
from bot.storage import FeedRow

__all__ = ["IsBotAdmin", "create_router"]

USAGE = "Use /feeds, /feeds add URL or /feeds remove URL."
LIST_LIMIT = 3800


class IsBotAdmin(Filter):
    """The user is in ``ADMIN_IDS``."""

    async def __call__(self, message: Message, alerts: AlertsService) -> bool:
        return message.from_user is not None and message.from_user.id in alerts.admin_ids


async def feeds(message: Message, command: CommandObject, alerts: AlertsService) -> None:
    """/feeds [add|remove URL]: manage the polled feeds."""
    words = (command.args or "").split()
    if not words:
        await message.answer(**_feed_list(await alerts.feeds()))
    elif (
        len(words) == 2
        and words[0].lower() == "add"
        and words[1].startswith(("http://", "https://"))
    ):
        await add_feed(message, words[1], alerts)
    elif len(words) == 2 and words[0].lower() == "remove":
        removed = await alerts.remove_feed(words[1])
        url = Code(clip(words[1], 300))
        reply = (
            Text("Removed ", url, ".") if removed else Text("No feed ", url, ": /feeds lists them.")
        )
        await message.answer(**reply.as_kwargs())
    else:
        await message.answer(USAGE)


async def add_feed(message: Message, url: str, alerts: AlertsService) -> None:
    """Add a feed and report its first poll (which indexes its backlog without alerts)."""
    feed, created, report = await alerts.add_feed(url)
    verb = "Added" if created else "Resumed"
    if report.error:
        await message.answer(
            **Text(f"{verb} {url}, but it failed: {report.error}. I will keep trying.").as_kwargs()
        )
        return
    await message.answer(
        **as_list(
            Bold(f"{verb} {feed.title or url}"),
            f"{report.entries} entries, {len(report.added)} new articles indexed"
            f"{f', {len(report.duplicates)} duplicates skipped' if report.duplicates else ''}.",
            f"Polled every {_duration(_interval(alerts, feed))}.",
        ).as_kwargs()
    )


async def refuse(message: Message) -> None:
    """Anyone not in ADMIN_IDS."""
    await message.answer("Only the bot's admins can manage feeds.")


def _interval(alerts: AlertsService, feed: FeedRow) -> float:
    return max(alerts.settings.feed_poll_interval, feed.min_interval)


def _feed_list(rows: list[FeedRow]) -> dict[str, Any]:
    if not rows:
        return Text("No feeds yet. ", USAGE).as_kwargs()
    lines: list[Any] = [Bold(f"{len(rows)} feed{'s' if len(rows) != 1 else ''}:")]
    size = 0
    for number, feed in enumerate(rows, start=1):
        entry = Text(
            f"{number}. ",
            Bold(feed.title or "(untitled)"),
            "\n",
            Code(feed.url),
            "\n",
            _status(feed),
        )
        size += len(entry.as_kwargs()["text"])
        if size > LIST_LIMIT:
            lines.append(f"…and {len(rows) - number + 1} more.")
            break
        lines.append(entry)
    return as_list(*lines, sep="\n\n").as_kwargs()


def _status(feed: FeedRow) -> str:
    now = time.time()
    ok = (
        f"last success {_ago(now, feed.last_success_at)}"
        if feed.last_success_at
        else "not fetched yet"
    )
    parts = [f"{feed.articles} articles", ok]
    if feed.paused:
        return f"⏸ paused after {feed.failures} failures: {feed.last_error} · " + ", ".join(parts)
    if feed.failures:
        parts.append(
            f"⚠ last error {_ago(now, feed.last_error_at)}: {feed.last_error} "
            f"({feed.failures} in a row)"
        )
    elif feed.last_error:
        parts.append(f"last error {_ago(now, feed.last_error_at)}: {feed.last_error}")
    if feed.failures:
        return " · ".join(parts)
    return ("✅ " if feed.last_success_at else "⏳ ") + " · ".join(parts)


def _ago(now: float, then: float | None) -> str:
    return f"{_duration(max(now - (then or now), 0))} ago"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{int(seconds)} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    if seconds < 2 * 86400:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} days"


def create_router() -> Router:
    """/feeds for admins; a refusal for everyone else."""
    router = Router(name="feeds")
    router.message.register(feeds, Command("feeds"), IsBotAdmin())
    router.message.register(refuse, Command("feeds"))
    return router
