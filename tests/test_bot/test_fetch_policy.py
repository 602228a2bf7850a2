"""Feeds, teaser pages and /add under the outbound policy: slow feeds arrive whole, huge and
stuck ones fail with one line, and nothing reaches an internal address, not even through a
feed's teaser link or a redirect. 127.0.0.2 plays a public host; 127.0.0.1 is internal."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.feeds.fetch import Fetcher
from bot.feeds.parse import parse_feed
from bot.settings import BotSettings
from index.fetch import FetchPolicy
from tests.alerts_support import FEEDS_DIR, FeedServer, alerts_stack, rss
from tests.conversation import Conversation
from tests.fake_telegram import FakeChat, FakeUser
from tests.http_sites import LocalSite, endless, in_slow_chunks, page, trickle
from tests.test_bot.harness import ADMIN, StartBot

SHARED_FEEDS = sorted(p for p in FEEDS_DIR.iterdir() if not p.name.startswith("LICENSE"))
PUBLIC = (ipaddress.ip_network("127.0.0.2/32"),)
FEED_ADMIN = FakeUser(id=42, first_name="Ada")
SECRET = (
    "<html><head><title>Staff wiki</title></head><body><article><h1>Staff wiki</h1>"
    + "<p>The vault code of the staff wiki is walrus cobalt nine one seven, for internal "
    "use only; the admin console password is on the next page of this wiki.</p>"
    * 6
    + "</article></body></html>"
)


@pytest.fixture
def bot_settings(bot_settings: BotSettings) -> BotSettings:
    """The conftest settings with the production default: private destinations refused."""
    return bot_settings.model_copy(update={"fetch_allow_private": False})


@pytest.fixture
async def internal() -> AsyncIterator[LocalSite]:
    async with LocalSite("127.0.0.1") as site:
        site.route("/wiki", page(SECRET))
        yield site


@pytest.mark.parametrize("path", SHARED_FEEDS, ids=lambda p: p.name)
async def test_shared_feeds_sent_in_slow_chunks_parse_completely(path: Path) -> None:
    """Each real feed, served in 16 KB writes 5 ms apart, arrives whole: as many entries as
    parsing the file directly."""
    body = await asyncio.to_thread(path.read_bytes)
    fetcher = Fetcher(FetchPolicy(timeout=10, allow_private=True))
    async with LocalSite() as site:
        url = site.route("/feed", in_slow_chunks(body))
        try:
            result = await fetcher.get(url)
        finally:
            await fetcher.close()

    assert result.data == body
    fetched = parse_feed(result.data, url, result.content_type)
    assert len(fetched.entries) == len(parse_feed(body, url).entries)


async def test_a_hundred_megabyte_feed_is_too_large(tmp_path: Path) -> None:
    """/feeds add of a 100 MB feed (generated while streaming) says "too large" in one line."""
    async with alerts_stack(tmp_path, admin_ids=(FEED_ADMIN.id,)) as stack, LocalSite() as site:
        url = site.route("/huge.rss", endless(100_000_000))
        admin = Conversation(stack.api, FakeChat.private(FEED_ADMIN), FEED_ADMIN)

        [reply] = await admin.send(f"/feeds add {url}")

        assert reply.text == (
            f"Added {url}, but it failed: larger than 5,000,000 bytes. I will keep trying."
        )
        [feed] = await stack.alerts.store.feeds.all()
        assert feed.last_error == "larger than 5,000,000 bytes"


async def test_a_trickling_feed_fails_at_the_deadline(tmp_path: Path) -> None:
    """A feed server sending a byte every 0.2 s fails at FETCH_TIMEOUT, with the reason."""
    async with alerts_stack(tmp_path, fetch_timeout=1) as stack, LocalSite() as site:
        url = site.route("/slow.rss", trickle(interval=0.2))

        _, _, report = await stack.alerts.add_feed(url)

        assert (report.status, report.error) == ("error", "no complete answer within 1 s")


async def test_teaser_links_to_internal_pages_are_neither_fetched_nor_indexed(
    tmp_path: Path,
) -> None:
    """A subscribed feed's teasers link to a loopback page, directly and through a redirect:
    the page is never requested, the entries keep their teaser text, and asking about the
    page's content finds nothing of it."""
    async with alerts_stack(tmp_path, fetch_allow_private=False) as stack:
        await stack.alerts.fetcher.close()
        fetcher = Fetcher(FetchPolicy(timeout=3, allowed_networks=PUBLIC))
        stack.alerts.fetcher = stack.alerts.poller.fetcher = fetcher
        wiki = stack.feeds.serve("wiki.html", SECRET, content_type="text/html")  # on 127.0.0.1
        public = FeedServer(host="127.0.0.2")
        await public.start()
        try:
            go = public.redirect("go/wiki", wiki, status=302)
            entries = [
                {"title": "Quay repairs finished", "link": wiki, "summary": "Quay teaser."},
                {"title": "Ferry timetable back", "link": go, "summary": "Ferry teaser."},
            ]
            feed_url = public.serve("feed.rss", rss("Harbour News", entries))

            _, _, report = await stack.alerts.add_feed(feed_url)
        finally:
            await public.stop()

        assert sorted(report.added) == ["Ferry timetable back", "Quay repairs finished"]
        assert public.statuses("go/wiki") == [302]
        assert stack.feeds.requests == []  # the internal site was never asked
        result = await stack.index.search("What is the vault code of the staff wiki?", k=5)
        assert not any("walrus" in hit.passage for hit in result.hits)
        articles = [await stack.index.article(info.id) for info in await stack.index.latest(2)]
        assert sorted(a.text for a in articles if a) == ["Ferry teaser.", "Quay teaser."]


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "refused: 127.0.0.1 is a loopback address"),
        ("localhost", "refused: localhost resolves to 127.0.0.1, a loopback address"),
    ],
)
async def test_add_of_a_loopback_url_is_refused_in_one_line(
    start_bot: StartBot, internal: LocalSite, host: str, reason: str
) -> None:
    running = await start_bot()
    url = internal.url("/wiki").replace("127.0.0.1", host)

    [reply] = await running.chat(ADMIN).send(f"/add {url}")

    assert reply.text == f"Failed: {url} — {reason}"
    assert internal.requests == []
