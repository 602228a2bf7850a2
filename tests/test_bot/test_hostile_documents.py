"""Hostile pages and feeds are parsed in child processes: other users are answered while
one is parsed, and one over PARSE_TIMEOUT fails with a one-line reason."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.settings import BotSettings
from index import parsing_pool
from tests.alerts_support import alerts_stack, rss
from tests.test_bot.harness import ADMIN, OTHER, RunningBot, longest_help_wait_during_upload

# One 4.9 MB paragraph: trafilatura and htmldate, run in the bot's process, held the GIL
# (and so froze the event loop) for 3.7 s at a time on it.
HOSTILE_PAGE = (
    b"<html><head><title>Words</title></head><body><article><p>"
    + b"word " * 980_000
    + b"</p></article></body></html>"
)
# 20,000 attributes in one tag of a malformed feed: feedparser's loose parser, which takes
# over from the XML one, needs about 4 s of CPU for 16,000 and four times that for 32,000.
SLOW_FEED = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>Slow</title><item '
    + " ".join(f'a{n}="v"' for n in range(20_000))
    + "><title>One</title></item><br></channel></rss>"
).encode()
STORY = (
    "The ferry timetable changes next month. Crossings at dawn are cancelled for the "
    "winter.\n\nThe operator said fuel costs made the early sailings unaffordable."
)
LIGHTHOUSE = (
    "The lighthouse on the north pier was repainted this week. Volunteers spent five days "
    "on scaffolding.\n\nThe harbour master thanked them at a small ceremony on Friday."
)


@pytest.fixture
def bot_settings(bot_settings: BotSettings) -> Iterator[BotSettings]:
    """The bot tests' settings with a two-second parse limit (the index applies it)."""
    yield bot_settings.model_copy(update={"parse_timeout": 2.0})
    parsing_pool.configure(timeout=parsing_pool.DEFAULT_TIMEOUT)


async def test_help_is_answered_promptly_while_a_hostile_page_is_parsed(
    running: RunningBot,
) -> None:
    """While an admin's 4.9 MB HTML upload is parsed (until PARSE_TIMEOUT stops it),
    another user's /help is answered with no gap longer than a few of its usual round
    trips; the admin is told in one line why the page was not added."""
    admin, other = running.chat(ADMIN), running.chat(OTHER)
    usual = 0.0
    for _ in range(5):
        started = time.monotonic()
        await other.send("/help")
        usual = max(usual, time.monotonic() - started)
    longest = await longest_help_wait_during_upload(
        running, "words.html", HOSTILE_PAGE, "text/html"
    )

    bound = max(1.5, 5 * usual)
    assert longest < bound, f"/help waited {longest:.1f} s (usually {usual:.2f} s) meanwhile"
    assert admin.messages[-1].text == "Failed: words.html — took longer than 2 s to parse"


async def test_a_feed_over_the_parse_limit_fails_in_one_line_and_the_next_is_polled(
    tmp_path: Path,
) -> None:
    """A feed that takes longer than PARSE_TIMEOUT to parse is an error of that feed, with
    a one-line reason, within seconds; the feed polled beside it gets its new entry."""
    async with alerts_stack(tmp_path) as stack:
        slow_url = stack.feeds.serve("slow.rss", rss("Slow", [{"title": "a", "text": STORY}]))
        calm_url = stack.feeds.serve("calm.rss", rss("Calm", [{"title": "b", "text": STORY + "!"}]))
        slow, _, _ = await stack.alerts.add_feed(slow_url)
        calm, _, _ = await stack.alerts.add_feed(calm_url)
        stack.feeds.serve("slow.rss", SLOW_FEED)
        new = {
            "title": "Lighthouse repainted",
            "link": "http://news.test/light",
            "text": LIGHTHOUSE,
        }
        stack.feeds.serve("calm.rss", rss("Calm", [new, {"title": "b", "text": STORY + "!"}]))
        for feed in (slow, calm):
            await stack.alerts.store.feeds.update(feed.id, next_poll_at=0)
        parsing_pool.configure(timeout=1)
        try:
            started = time.monotonic()
            reports = {r.url: r for r in await stack.alerts.poll_now()}
            took = time.monotonic() - started
        finally:
            parsing_pool.configure(timeout=parsing_pool.DEFAULT_TIMEOUT)

        assert reports[slow_url].status == "error"
        assert reports[slow_url].error == "took longer than 1 s to parse"
        assert reports[calm_url].added == ["Lighthouse repainted"]
        assert took < 30, f"the poll took {took:.0f} s"
        row = await stack.alerts.store.feeds.get(slow.id)
        assert row is not None and row.last_error == "took longer than 1 s to parse"
