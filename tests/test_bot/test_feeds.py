"""Feeds: parsing every shared feed, polling a local server (conditional GET, TTL, errors,
backoff, pause, redirects, teasers), deduplication, incremental indexing."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.feeds.parse import parse_feed
from tests.alerts_support import FEEDS_DIR, Stack, alerts_stack, rss
from tests.conversation import Conversation
from tests.fake_telegram import FakeChat, FakeUser

ADMIN = FakeUser(id=42, first_name="Ada")
RUSSIAN_ADMIN = FakeUser(id=43, first_name="Ирина", language_code="ru")
READER = FakeUser(id=7, first_name="Rui")
VOLCANO = (
    "The volcano erupted on Monday morning, sending ash over the village. Residents were "
    "evacuated by the civil defence service.\n\nScientists said lava flows could continue "
    "for weeks. The airport closed its runway while ash fell on the town."
)
BANK = (
    "The central bank raised interest rates by half a point to fight inflation. Mortgage "
    "costs will rise for millions of households.\n\nEconomists expect one more rate rise this "
    "year. Markets fell after the announcement by the bank governor."
)
SHARED = sorted(p for p in FEEDS_DIR.iterdir() if not p.name.startswith("LICENSE"))


@pytest.mark.parametrize("path", SHARED, ids=lambda p: p.name)
def test_every_shared_feed_parses(path: Path) -> None:
    """All real feeds (RSS 0.92, 1.0, 2.0, Atom 0.3/1.0) give entries with titles and keys."""
    feed = parse_feed(path.read_bytes(), f"http://feeds.test/{path.name}")
    assert feed.entries
    assert all(entry.title and entry.key for entry in feed.entries)


def test_feed_text_is_plain_and_origlink_wins() -> None:
    """Entry HTML becomes paragraphs; feedburner's original link replaces the proxy link."""
    feed = parse_feed((FEEDS_DIR / "reuters-2018.xml").read_bytes(), "http://f.test/r")
    assert all("<" not in entry.text for entry in feed.entries)
    assert feed.entries[0].link and feed.entries[0].link.startswith("http://www.reuters.com/")
    medium = parse_feed((FEEDS_DIR / "medium-content-encoded.rss").read_bytes(), "http://f/m")
    assert "\n\n" in medium.entries[0].text


async def feed_with(stack: Stack, path: str, items: list[dict], **options) -> str:  # type: ignore[no-untyped-def]
    return stack.feeds.serve(path, rss("Test Outlet", items), **options)


async def test_first_poll_indexes_backlog_then_conditional_get(tmp_path: Path) -> None:
    """The backlog is indexed without alerts; unchanged feeds answer 304 to conditional GETs;
    a new entry is searchable right after the poll and alerts subscribers."""
    async with alerts_stack(tmp_path) as stack:
        url = stack.feeds.serve(
            "medium.rss", (FEEDS_DIR / "medium-content-encoded.rss").read_bytes()
        )
        conv = Conversation(stack.api, FakeChat.private(READER), READER)
        await conv.send("/subscribe")
        feed, created, report = await stack.alerts.add_feed(url)
        assert created and report.entries == 7 and len(report.added) == 7
        assert (await stack.index.stats()).articles == 7
        await stack.alerts.store.feeds.update(feed.id, next_poll_at=0)
        [again] = await stack.alerts.poll_now()
        assert again.status == "not modified"
        headers = [h for p, h, _ in stack.feeds.requests if p == "medium.rss"][-1]
        assert headers.get("If-None-Match") and headers.get("If-Modified-Since")

        await feed_with(
            stack,
            "medium.rss",
            [
                {
                    "title": "Volcano erupts near village",
                    "link": "http://news.test/volcano",
                    "text": VOLCANO,
                }
            ],
        )
        await stack.alerts.store.feeds.update(feed.id, next_poll_at=0)
        [new] = await stack.alerts.poll_now()
        assert new.added == ["Volcano erupts near village"] and new.alerts == 1
        result = await stack.index.search("lava flows ash village")
        assert result.hits and result.hits[0].title == "Volcano erupts near village"
        alert = await conv.wait_for(lambda m: "Volcano erupts" in m.text)
        assert len([m for m in conv.messages if "Volcano erupts" in m.text]) == 1
        assert alert.entities[0]["type"] == "text_link"
        assert alert.entities[0]["url"] == "http://news.test/volcano"


async def test_ttl_and_cache_control_raise_the_interval(tmp_path: Path) -> None:
    """A feed's <ttl> or Cache-Control max-age lengthens its polling interval."""
    async with alerts_stack(tmp_path, feed_poll_interval=60) as stack:
        ttl_url = stack.feeds.serve("ttl.rss", rss("T", [{"title": "a", "text": BANK}], ttl=30))
        cc_url = stack.feeds.serve(
            "cc.rss",
            rss("C", [{"title": "b", "text": VOLCANO}]),
            cache_control="public, max-age=7200",
        )
        plain_url = stack.feeds.serve("plain.rss", rss("P", [{"title": "c", "text": BANK + "!"}]))
        for url, expected in ((ttl_url, 1800), (cc_url, 7200), (plain_url, 60)):
            feed, _, _ = await stack.alerts.add_feed(url)
            assert feed.next_poll_at - feed.last_success_at == pytest.approx(expected, abs=2)


async def test_errors_back_off_then_pause_and_tell_admins(tmp_path: Path) -> None:
    """Failures back off exponentially; after FEED_MAX_FAILURES the feed is paused, admins
    get a message saying why, each in the language they chose, and /feeds shows it."""
    async with alerts_stack(
        tmp_path,
        admin_ids=(ADMIN.id, RUSSIAN_ADMIN.id),
        feed_max_failures=3,
        feed_poll_interval=10,
    ) as stack:
        admin = Conversation(stack.api, FakeChat.private(ADMIN), ADMIN)
        russian = Conversation(stack.api, FakeChat.private(RUSSIAN_ADMIN), RUSSIAN_ADMIN)
        await stack.alerts.store.chats.set_language(RUSSIAN_ADMIN.id, "ru")  # as /language does
        url = await feed_with(stack, "flaky.rss", [{"title": "a", "text": BANK}])
        feed, _, _ = await stack.alerts.add_feed(url)
        stack.feeds.fail("flaky.rss", 503, times=5)
        delays = []
        for _ in range(3):
            await stack.alerts.store.feeds.update(feed.id, next_poll_at=0)
            [report] = await stack.alerts.poll_now()
            row = await stack.alerts.store.feeds.get(feed.id)
            assert row is not None and row.last_error_at is not None
            delays.append(round(row.next_poll_at - row.last_error_at))
        assert delays == [10, 20, 40]
        assert report.status == "paused" and "HTTP 503" in (report.error or "")
        assert await stack.alerts.poll_now() == []  # paused feeds are not polled
        notice = await admin.wait_for(lambda m: "Feed paused" in m.text)
        assert "HTTP 503" in notice.text and url in notice.text
        assert "Failures in a row: 3" in notice.text
        notice = await russian.wait_for(lambda m: "Лента приостановлена" in m.text)
        assert "HTTP 503" in notice.text and f"/feeds add {url}" in notice.text
        assert "Ошибок подряд: 3" in notice.text
        [listing] = await admin.send("/feeds")
        assert "paused after 3 failures" in listing.text


async def test_redirects_give_canonical_urls_and_teasers_get_their_page(tmp_path: Path) -> None:
    """A permanently moved feed is followed; a teaser entry's page is fetched (through its
    redirect) and its main text indexed under the page's final URL."""
    async with alerts_stack(tmp_path) as stack:
        page = (
            "<html><head><title>Ash cloud grounds flights</title></head><body><article>"
            "<h1>Ash cloud grounds flights</h1>"
            + "".join(f"<p>{p}</p>" for p in VOLCANO.split("\n\n"))
            + "<p>Airlines cancelled hundreds of flights across the region on Tuesday.</p>"
            "</article></body></html>"
        )
        stack.feeds.serve("articles/ash.html", page, content_type="text/html")
        stack.feeds.redirect("go/ash", stack.feeds.url("articles/ash.html"), status=302)
        stack.feeds.serve(
            "new/feed.rss",
            rss(
                "Moved Outlet",
                [
                    {
                        "title": "Ash cloud grounds flights",
                        "link": stack.feeds.url("go/ash"),
                        "summary": "Flights grounded.",
                    }
                ],
            ),
        )
        old = stack.feeds.redirect("old/feed.rss", stack.feeds.url("new/feed.rss"), status=301)
        feed, _, report = await stack.alerts.add_feed(old)
        assert feed.url == stack.feeds.url("new/feed.rss")
        assert report.added == ["Ash cloud grounds flights"]
        [info] = await stack.index.latest(1)
        assert info.url == stack.feeds.url("articles/ash.html")
        article = await stack.index.article(info.id)
        assert article is not None and "Airlines cancelled hundreds" in article.text


async def test_duplicates_by_url_text_and_near_copy_alert_once(tmp_path: Path) -> None:
    """The same story by URL, by text, or lightly edited by another outlet: one alert."""
    async with alerts_stack(tmp_path) as stack:
        conv = Conversation(stack.api, FakeChat.private(READER), READER)
        await conv.send("/subscribe")
        one = await feed_with(stack, "one.rss", [{"title": "old", "text": BANK}])
        two = await feed_with(stack, "two.rss", [{"title": "old", "text": BANK}])
        f1, _, _ = await stack.alerts.add_feed(one)
        f2, _, r2 = await stack.alerts.add_feed(two)
        assert r2.duplicates == ["old"]  # same text as feed one's backlog
        story = {"title": "Volcano erupts near village", "link": "http://a.test/v", "text": VOLCANO}
        copy = {
            "title": "Village evacuated as volcano erupts",
            "link": "http://b.test/v2",
            "text": VOLCANO.replace("Monday", "Monday, officials said,") + " Reporting by B.",
        }
        await feed_with(stack, "one.rss", [story])
        await feed_with(stack, "two.rss", [story, copy])
        for feed in (f1, f2):
            await stack.alerts.store.feeds.update(feed.id, next_poll_at=0)
        reports = await stack.alerts.poll_now()
        assert sum(r.alerts for r in reports) == 1
        assert sorted(t for r in reports for t in r.duplicates) == [
            "Village evacuated as volcano erupts",
            "Volcano erupts near village",
        ]
        await conv.wait_for(lambda m: "erupts" in m.text)
        await stack.api.wait_until(lambda: stack.api.is_settled(0.3), 5)
        assert len([m for m in conv.messages if "erupts" in m.text]) == 1
