"""/feeds for admins: list feeds with their status, add one (polled at once), remove one."""

from __future__ import annotations

import time
from typing import Any

from aiogram import Router
from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import Message
from aiogram.utils.formatting import Bold, Code, Text, as_list

from bot.alerts.service import AlertsService
from bot.i18n import N_, fill, ngettext
from bot.i18n import gettext as _
from bot.rendering import clip
from bot.storage import FeedRow

__all__ = ["IsBotAdmin", "create_router"]

USAGE = N_("Use /feeds, /feeds add URL or /feeds remove URL.")
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
        template = _("Removed {url}.") if removed else _("No feed {url}: /feeds lists them.")
        await message.answer(**fill(template, url=url).as_kwargs())
    else:
        await message.answer(_(USAGE))


async def add_feed(message: Message, url: str, alerts: AlertsService) -> None:
    """Add a feed and report its first poll (which indexes its backlog without alerts)."""
    feed, created, report = await alerts.add_feed(url)
    if report.error:
        template = (
            _("Added {url}, but it failed: {error}. I will keep trying.")
            if created
            else _("Resumed {url}, but it failed: {error}. I will keep trying.")
        )
        await message.answer(**Text(template.format(url=url, error=report.error)).as_kwargs())
        return
    name = feed.title or url
    head = _("Added {feed}") if created else _("Resumed {feed}")
    found = ngettext("{count} entry in the feed.", "{count} entries in the feed.", report.entries)
    added = ngettext(
        "{count} new article indexed.", "{count} new articles indexed.", len(report.added)
    )
    lines = [found.format(count=report.entries), added.format(count=len(report.added))]
    if report.duplicates:
        skipped = ngettext(
            "{count} duplicate skipped.", "{count} duplicates skipped.", len(report.duplicates)
        )
        lines.append(skipped.format(count=len(report.duplicates)))
    await message.answer(
        **as_list(
            Bold(head.format(feed=name)),
            *lines,
            _("Polled every {interval}.").format(interval=_duration(_interval(alerts, feed))),
        ).as_kwargs()
    )


async def refuse(message: Message) -> None:
    """Anyone not in ADMIN_IDS."""
    await message.answer(_("Only the bot's admins can manage feeds."))


def _interval(alerts: AlertsService, feed: FeedRow) -> float:
    return max(alerts.settings.feed_poll_interval, feed.min_interval)


def _feed_list(rows: list[FeedRow]) -> dict[str, Any]:
    if not rows:
        return Text(_("No feeds yet."), " ", _(USAGE)).as_kwargs()
    heading = ngettext("{count} feed:", "{count} feeds:", len(rows)).format(count=len(rows))
    lines: list[Any] = [Bold(heading)]
    size = 0
    for number, feed in enumerate(rows, start=1):
        entry = Text(
            f"{number}. ",
            Bold(feed.title or _("(untitled)")),
            "\n",
            Code(feed.url),
            "\n",
            _status(feed),
        )
        size += len(entry.as_kwargs()["text"])
        if size > LIST_LIMIT:
            lines.append(_("…and {count} more.").format(count=len(rows) - number + 1))
            break
        lines.append(entry)
    return as_list(*lines, sep="\n\n").as_kwargs()


def _status(feed: FeedRow) -> str:
    now = time.time()
    ok = (
        _("last success {ago}").format(ago=_ago(now, feed.last_success_at))
        if feed.last_success_at
        else _("not fetched yet")
    )
    articles = ngettext("{count} article", "{count} articles", feed.articles)
    parts = [articles.format(count=feed.articles), ok]
    error = feed.last_error or ""
    if feed.paused:
        paused = ngettext(
            "⏸ paused after {count} failure: {error} · {status}",
            "⏸ paused after {count} failures: {error} · {status}",
            feed.failures,
        )
        return paused.format(count=feed.failures, error=error, status=", ".join(parts))
    if feed.failures:
        failing = ngettext(
            "⚠ last error {ago}: {error} ({count} in a row)",
            "⚠ last error {ago}: {error} ({count} in a row)",
            feed.failures,
        )
        parts.append(
            failing.format(ago=_ago(now, feed.last_error_at), error=error, count=feed.failures)
        )
        return " · ".join(parts)
    if feed.last_error:
        last = _("last error {ago}: {error}")
        parts.append(last.format(ago=_ago(now, feed.last_error_at), error=error))
    return ("✅ " if feed.last_success_at else "⏳ ") + " · ".join(parts)


def _ago(now: float, then: float | None) -> str:
    return _("{duration} ago").format(duration=_duration(max(now - (then or now), 0)))


def _duration(seconds: float) -> str:
    if seconds < 90:
        return _("{count} s").format(count=int(seconds))
    if seconds < 5400:
        return _("{count} min").format(count=round(seconds / 60))
    if seconds < 2 * 86400:
        return _("{count} h").format(count=round(seconds / 3600))
    days = round(seconds / 86400)
    return ngettext("{count} day", "{count} days", days).format(count=days)


def create_router() -> Router:
    """/feeds for admins; a refusal for everyone else."""
    router = Router(name="feeds")
    router.message.register(feeds, Command("feeds"), IsBotAdmin())
    router.message.register(refuse, Command("feeds"))
    return router
