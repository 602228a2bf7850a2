"""The bot's repositories, the same tests on SQLite and on PostgreSQL (a fresh database per
test): chats, feeds, stories, subscriptions, the outbox, ask prompts, and copying it all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from bot.storage import (
    BotStore,
    ChatPrefs,
    Delivery,
    Story,
    SubscriptionLimitError,
    copy_bot_data,
)
from bot.storage.database import database_url, sqlite_url


def open_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> BotStore:
    if kind == "sqlite":
        return BotStore.from_url(sqlite_url(tmp_path / "bot.sqlite3"))
    return BotStore.from_url(database_url(tmp_path, request.getfixturevalue("postgres_url")))


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BotStore]:
    store = open_store(request.param, tmp_path, request)
    await store.open()
    yield store
    await store.close()


def delivery(chat_id: int, article: str, thread_id: int = 0) -> Delivery:
    return Delivery(chat_id, thread_id, article, 1, {"article_id": article, "title": article})


GROUP = -100_1234567890  # supergroup ids need more than 32 bits


# -- chats ------------------------------------------------------------------------------


async def test_a_chat_is_recorded_with_default_preferences(store: BotStore) -> None:
    """A new chat gets instant alerts at UTC; big (64-bit) chat ids round-trip."""
    await store.chats.ensure(GROUP, "supergroup", "News fans")
    assert await store.chats.get(GROUP) == ChatPrefs(GROUP)
    assert await store.chats.get(1) is None


async def test_preferences_change_and_unknown_ones_are_refused(store: BotStore) -> None:
    await store.chats.ensure(7)
    prefs = await store.chats.set_prefs(7, mode="digest", digest_hour=6, tz_minutes=-300)
    assert (prefs.mode, prefs.digest_hour, prefs.tz_minutes) == ("digest", 6, -300)
    prefs = await store.chats.set_prefs(7, quiet_start=22, quiet_end=7)
    assert (prefs.quiet_start, prefs.quiet_end, prefs.mode) == (22, 7, "digest")
    with pytest.raises(ValueError, match="status"):
        await store.chats.set_prefs(7, status="active")


async def test_a_blocked_chat_loses_its_queue_and_comes_back_active(store: BotStore) -> None:
    """Blocking drops held and pending alerts and refuses new ones; the chat writing to the
    bot again (ensure) makes it active."""
    await store.chats.ensure(7)
    assert await store.outbox.enqueue([delivery(7, "a"), delivery(7, "b")]) == 2
    assert await store.chats.deactivate(7, "blocked", "403") == 2
    assert {r.state for r in await store.outbox.rows()} == {"dropped"}
    assert await store.outbox.enqueue([delivery(7, "c")]) == 0
    await store.chats.ensure(7)
    assert (await store.chats.get(7)) == ChatPrefs(7)
    assert await store.outbox.enqueue([delivery(7, "c")]) == 1


async def test_a_group_that_became_a_supergroup_is_followed(store: BotStore) -> None:
    """Settings, subscriptions and queued alerts move to the new id; what the new chat
    already had stays, the old copy of it is dropped."""
    await store.chats.ensure(-5, "group", "Team")
    await store.chats.set_prefs(-5, quiet_start=1, quiet_end=2, tz_minutes=60)
    await store.subscriptions.subscribe(-5, 0, "Volcano", "", None, 1)
    await store.subscriptions.subscribe(-5, 0, "bank", "", None, 1)
    await store.chats.ensure(GROUP, "supergroup")
    await store.subscriptions.subscribe(GROUP, 0, "volcano", "", None, 1)
    await store.outbox.enqueue([delivery(-5, "a"), delivery(-5, "b")])
    await store.outbox.enqueue([delivery(GROUP, "b")])
    today = store.clock
    store.clock = lambda: today() + 86400  # after any quiet hours
    [first] = await store.outbox.claim(1, owner="w", lease=30)  # "sending" when the
    store.clock = today  # migration error came
    assert (first.chat_id, first.article_id) == (-5, "a")

    await store.chats.migrate(-5, GROUP)

    old = await store.chats.get(-5)
    assert old is not None and (old.status, old.migrated_to) == ("migrated", GROUP)
    new = await store.chats.get(GROUP)
    assert new is not None and new.status == "active"
    assert sorted(s.topic for s in await store.subscriptions.of_chat(GROUP)) == ["bank", "volcano"]
    assert await store.subscriptions.of_chat(-5) == []
    rows = {(r.chat_id, r.article_id): r.state for r in await store.outbox.rows()}
    assert rows == {(GROUP, "a"): "pending", (GROUP, "b"): "pending", (-5, "b"): "dropped"}


async def test_a_migration_into_an_unknown_chat_copies_the_settings(store: BotStore) -> None:
    await store.chats.ensure(-5, "group")
    await store.chats.set_prefs(-5, mode="digest", digest_hour=19)
    await store.chats.migrate(-5, GROUP)
    new = await store.chats.get(GROUP)
    assert new is not None and (new.mode, new.digest_hour) == ("digest", 19)


# -- feeds and stories ------------------------------------------------------------------


async def test_feeds_are_added_once_resumed_listed_and_removed(store: BotStore) -> None:
    feed, created = await store.feeds.add("https://a.test/rss", preset=True)
    assert created and feed.preset and not feed.paused and feed.polls == 0
    await store.feeds.update(feed.id, paused=True, failures=8, next_poll_at=1e12)
    again, created = await store.feeds.add("https://a.test/rss")
    assert not created and again.id == feed.id
    assert (again.paused, again.failures, again.next_poll_at) == (False, 0, 0)
    other, _ = await store.feeds.add("https://b.test/rss")
    assert [f.url for f in await store.feeds.all()] == ["https://a.test/rss", "https://b.test/rss"]
    assert await store.feeds.by_url("https://b.test/rss") == other
    assert await store.feeds.get(other.id) == other
    assert await store.feeds.remove("https://b.test/rss")
    assert not await store.feeds.remove("https://b.test/rss")
    assert await store.feeds.get(other.id) is None
    with pytest.raises(ValueError, match="unknown feed columns"):
        await store.feeds.update(feed.id, nonsense=1)


async def test_due_feeds_are_the_unpaused_overdue_ones_most_overdue_first(store: BotStore) -> None:
    a, _ = await store.feeds.add("https://a.test/rss")
    b, _ = await store.feeds.add("https://b.test/rss")
    c, _ = await store.feeds.add("https://c.test/rss")
    await store.feeds.update(a.id, next_poll_at=50)
    await store.feeds.update(b.id, next_poll_at=10)
    await store.feeds.update(c.id, next_poll_at=5, paused=True)
    assert [f.url for f in await store.feeds.due(60)] == [b.url, a.url]
    assert [f.url for f in await store.feeds.due(20)] == [b.url]


async def test_a_poll_is_recorded_in_one_go(store: BotStore) -> None:
    """Entries seen, stories, alerts by chat preferences, the feed's new state; a second
    record of the same entries changes nothing but the feed."""
    feed, _ = await store.feeds.add("https://a.test/rss")
    await store.chats.ensure(7)
    await store.chats.ensure(8)
    await store.chats.set_prefs(8, mode="digest", digest_hour=8)
    signature = np.arange(64, dtype=np.uint32)
    stories = [
        Story("a1", "https://a.test/1", "h1", "Volcano", "Daily", None, signature),
        Story("a2", "https://b.test/2", "h2", "Volcano again", "Other", "a1", None),
    ]
    keys = [(f"entry-{n}", f"a{n}" if n < 3 else None) for n in range(1, 700)]
    enqueued = await store.stories.record_poll(
        feed.id,
        keys,
        stories,
        [delivery(7, "a1"), delivery(8, "a1")],
        {"title": "A feed", "polls": 1, "etag": '"x"'},
    )
    assert enqueued == 2
    assert {r.chat_id: r.state for r in await store.outbox.rows()} == {7: "pending", 8: "held"}
    row = await store.feeds.get(feed.id)
    assert row is not None and (row.title, row.polls, row.etag, row.articles) == (
        "A feed",
        1,
        '"x"',
        1,  # the duplicate is not counted
    )
    asked = [f"entry-{n}" for n in range(0, 800)]
    assert await store.feeds.seen_entries(feed.id, asked) == {k for k, _ in keys}
    assert await store.stories.record_poll(feed.id, keys, stories, [delivery(7, "a1")], {}) == 0

    found = await store.stories.by_id_or_hash("zzz", "h1")
    assert found is not None and found.article_id == "a1"
    assert found.signature is not None and found.signature.tolist() == signature.tolist()
    assert (await store.stories.by_id_or_hash("a2", "none")).duplicate_of == "a1"  # type: ignore[union-attr]
    assert await store.stories.by_id_or_hash("zzz", "none") is None
    ids, signatures = await store.stories.recent_signatures(store.clock() - 60)
    assert ids == ["a1"] and signatures is not None and signatures.shape == (1, 64)
    assert await store.stories.recent_signatures(store.clock() + 60) == ([], None)


async def test_removing_a_feed_forgets_its_entries(store: BotStore) -> None:
    feed, _ = await store.feeds.add("https://a.test/rss")
    await store.stories.record_poll(feed.id, [("e", None)], [], [], {})
    await store.feeds.remove(feed.url)
    again, _ = await store.feeds.add(feed.url)
    assert await store.feeds.seen_entries(feed.id, ["e"]) == set()
    assert await store.feeds.seen_entries(again.id, ["e"]) == set()


async def test_another_outlets_copy_is_mentioned_in_queued_alerts(store: BotStore) -> None:
    await store.chats.ensure(7)
    await store.outbox.enqueue([delivery(7, "a1")])
    other = {"title": "Copy", "url": "https://b.test/2", "outlet": "Other"}
    assert await store.stories.link_duplicate("a1", other) == 1
    [row] = await store.outbox.rows()
    assert row.payload["also"] == [other]


# -- subscriptions ----------------------------------------------------------------------


async def test_subscriptions_are_case_insensitive_and_unmute(store: BotStore) -> None:
    vector = np.linspace(-1, 1, 384, dtype=np.float32)
    sub, created = await store.subscriptions.subscribe(7, 0, "Climate Policy", "BBC", vector, 1)
    assert created and sub.vector is not None and sub.vector.tolist() == vector.tolist()
    again, created = await store.subscriptions.subscribe(7, 0, "climate policy", "bbc", None, 1)
    assert (again.id, created) == (sub.id, False)
    thread, created = await store.subscriptions.subscribe(7, 12, "climate policy", "bbc", None, 1)
    assert created and thread.id != sub.id
    muted = await store.subscriptions.mute(7, sub.id)
    assert muted is not None and muted.muted
    assert await store.subscriptions.mute(8, sub.id) is None  # another chat's
    back, created = await store.subscriptions.subscribe(7, 0, "Climate policy", "BBC", None, 1)
    assert (back.id, created, back.muted) == (sub.id, True, False)
    assert sub.describe() == "about “Climate Policy” from BBC"


async def test_a_chat_keeps_at_most_the_limit(store: BotStore) -> None:
    for n in range(3):
        await store.subscriptions.subscribe(7, 0, f"topic {n}", "", None, 1, limit=3)
    with pytest.raises(SubscriptionLimitError):
        await store.subscriptions.subscribe(7, 0, "one more", "", None, 1, limit=3)
    _, created = await store.subscriptions.subscribe(7, 0, "TOPIC 1", "", None, 1, limit=3)
    assert not created  # an existing one is no new subscription
    assert len(await store.subscriptions.of_chat(7)) == 3


async def test_active_subscriptions_leave_out_muted_and_inactive_chats(store: BotStore) -> None:
    for chat in (7, 8, 9):
        await store.chats.ensure(chat)
        await store.subscriptions.subscribe(chat, 0, "", "", None, 1)
    await store.subscriptions.subscribe(7, 0, "volcano", "", None, 1)
    [muted] = [s for s in await store.subscriptions.of_chat(8)]
    await store.subscriptions.mute(8, muted.id)
    await store.chats.deactivate(9, "blocked", "403")
    assert [(s.chat_id, s.topic) for s in await store.subscriptions.active()] == [
        (7, ""),
        (7, "volcano"),
    ]
    assert await store.subscriptions.subscriber_count() == 2  # 7 and 8 (muted, still active)
    assert await store.subscriptions.unsubscribe(7, muted.id) == 0  # not chat 7's
    assert await store.subscriptions.unsubscribe(7) == 2
    assert await store.subscriptions.subscriber_count() == 1


# -- outbox -----------------------------------------------------------------------------


async def test_each_alert_is_queued_once_per_chat_thread_and_article(store: BotStore) -> None:
    await store.chats.ensure(7)
    batch = [delivery(7, "a"), delivery(7, "a"), delivery(7, "a", thread_id=3), delivery(8, "a")]
    assert await store.outbox.enqueue(batch) == 3  # chat 8 unknown: queued as active
    assert await store.outbox.enqueue(batch) == 0
    await store.outbox.enqueue_notice(7, "Feed paused")
    await store.outbox.enqueue_notice(7, "Feed paused")  # notices are not deduplicated
    assert await store.outbox.counts() == {"pending": 5}
    notices = [r for r in await store.outbox.rows(7) if r.kind == "notice"]
    assert [r.payload for r in notices] == [{"text": "Feed paused"}] * 2


async def test_due_rows_are_the_oldest_of_each_chat(store: BotStore) -> None:
    """One row per chat at a time, oldest first; a chat with a long queue does not hold
    up the others; rows not yet due wait."""
    now = store.clock()
    await store.outbox.enqueue([delivery(7, str(n)) for n in range(5)])
    await store.outbox.enqueue([delivery(8, "x")])
    await store.chats.ensure(9)
    await store.chats.set_prefs(9, mode="digest", digest_hour=0)
    await store.outbox.enqueue([delivery(9, "held")])
    due = await store.outbox.due(now + 1, 10)
    assert [(r.chat_id, r.article_id) for r in due] == [(7, "0"), (8, "x")]
    assert len(await store.outbox.due(now + 1, 1)) == 1
    assert await store.outbox.next_due_time() == pytest.approx(now, abs=5)


async def test_claims_are_exclusive_and_outcomes_recorded(store: BotStore) -> None:
    await store.outbox.enqueue([delivery(7, "a"), delivery(8, "b"), delivery(9, "c")])
    a, b, c = await store.outbox.claim(10, owner="w1", lease=30)
    assert await store.outbox.claim(10, owner="w2", lease=30) == []  # all taken
    await store.outbox.mark_sent(a.id, 555)
    await store.outbox.retry_later(b.id, store.clock() + 60, "429", counts=False)
    await store.outbox.retry_later(c.id, store.clock() + 60, "502", counts=True)
    rows = {r.article_id: r for r in await store.outbox.rows()}
    assert (rows["a"].state, rows["a"].attempts) == ("sent", 1)
    assert (rows["b"].state, rows["b"].attempts) == ("pending", 0)  # a 429 gives it back
    assert (rows["c"].state, rows["c"].attempts) == ("pending", 1)
    assert await store.outbox.claim(10, owner="w2", lease=30) == []  # not before a minute
    await store.outbox.mark_failed(c.id, "400 bad request")
    assert await store.outbox.counts() == {"sent": 1, "pending": 1, "failed": 1}


async def test_a_chat_gets_one_row_at_a_time_and_a_gap_after_each(store: BotStore) -> None:
    """Whoever claims: a chat's next row waits until its last one is sent and the chat's
    gap has passed; other chats go on meanwhile."""
    now = store.clock()
    await store.outbox.enqueue([delivery(7, str(n)) for n in range(3)])
    await store.outbox.enqueue([delivery(8, "x")])
    first = await store.outbox.claim(10, owner="w1", lease=30)
    assert [(r.chat_id, r.article_id) for r in first] == [(7, "0"), (8, "x")]
    assert await store.outbox.claim(10, owner="w2", lease=30) == []  # 7 is being sent to
    await store.outbox.mark_sent_many([(r.id, 1) for r in first], chat_gap=60)
    assert await store.outbox.claim(10, owner="w2", lease=30) == []  # within 7's gap
    assert await store.outbox.next_due_time() == pytest.approx(now + 60, abs=5)
    store.clock = lambda: now + 61
    [second] = await store.outbox.claim(10, owner="w2", lease=30)
    assert (second.chat_id, second.article_id, second.attempts) == (7, "1", 1)


async def test_a_lapsed_claim_returns_to_the_queue_a_renewed_one_does_not(
    store: BotStore,
) -> None:
    """A worker that stopped renewing loses its rows when the lease passes; they go to
    whoever claims next, counting the attempt; a live worker keeps its own."""
    now = store.clock()
    await store.outbox.enqueue([delivery(7, "a"), delivery(8, "b")])
    [a] = await store.outbox.claim(1, owner="dead", lease=30)
    [b] = await store.outbox.claim(1, owner="alive", lease=30)
    assert await store.outbox.release_expired() == 0
    store.clock = lambda: now + 20
    assert await store.outbox.renew("alive", 30) == 1
    store.clock = lambda: now + 31
    assert await store.outbox.claim(10, owner="other", lease=30) == []  # not released yet
    assert await store.outbox.release_expired() == 1
    [again] = await store.outbox.claim(10, owner="other", lease=30)
    assert (again.id, again.attempts) == (a.id, 2)
    assert await store.outbox.mark_sent_many([(b.id, 9)], owner="dead") == 0  # not its row
    assert await store.outbox.mark_sent_many([(b.id, 9)], owner="alive") == 1


async def test_a_stopping_worker_gives_back_what_it_did_not_start(store: BotStore) -> None:
    await store.outbox.enqueue([delivery(7, "a"), delivery(8, "b")])
    a, b = await store.outbox.claim(10, owner="w1", lease=30)
    assert await store.outbox.unclaim([a.id, b.id], "w2") == 0
    assert await store.outbox.unclaim([a.id, b.id], "w1") == 2
    assert {(r.state, r.attempts) for r in await store.outbox.rows()} == {("pending", 0)}


async def test_digests_collect_held_alerts_per_chat_and_thread(store: BotStore) -> None:
    await store.chats.ensure(7)
    await store.chats.set_prefs(7, mode="digest", digest_hour=8)
    await store.outbox.enqueue([delivery(7, str(n)) for n in range(5)])
    await store.outbox.enqueue([delivery(7, "t", thread_id=4)])
    assert await store.outbox.roll_digests(store.clock(), max_items=3) == 0  # not yet
    assert await store.outbox.roll_digests(store.clock() + 86400, max_items=3) == 2
    digests = [r for r in await store.outbox.rows() if r.kind == "digest"]
    assert [(r.thread_id, r.state) for r in digests] == [(0, "pending"), (4, "pending")]
    assert [i["article_id"] for i in digests[0].payload["items"]] == ["0", "1", "2"]
    assert digests[0].payload["more"] == 2
    assert (await store.outbox.counts())["digested"] == 6
    assert await store.outbox.roll_digests(store.clock() + 86400, max_items=3) == 0


# -- ask prompts ------------------------------------------------------------------------


async def test_ask_prompts_route_replies(store: BotStore) -> None:
    await store.prompts.add(GROUP, 10, "a1")
    await store.prompts.add(GROUP, 10, "a2")  # the same message again: the newer article
    assert await store.prompts.article(GROUP, 10) == "a2"
    assert await store.prompts.article(GROUP, 11) is None


# -- moving data between stores ---------------------------------------------------------


async def test_copy_moves_everything_once(
    request: pytest.FixtureRequest, tmp_path: Path, store: BotStore
) -> None:
    """A SQLite store copied into ``store``: the same rows after; a second copy adds
    nothing; new rows after the copy get fresh ids."""
    source = open_store("sqlite", tmp_path / "source", request)
    feed, _ = await source.feeds.add("https://a.test/rss")
    await source.chats.ensure(7)
    await source.chats.set_prefs(7, tz_minutes=120)
    vector = np.ones(8, dtype=np.float32)
    await source.subscriptions.subscribe(7, 0, "volcano", "", vector, 1)
    story = Story("a1", None, "h1", "Volcano", None, None, np.arange(4, dtype=np.uint32))
    await source.stories.record_poll(feed.id, [("e1", "a1")], [story], [delivery(7, "a1")], {})
    await source.outbox.enqueue_notice(7, "hello")
    await source.prompts.add(7, 3, "a1")
    before = await source.outbox.rows()

    copied = await copy_bot_data(source, store)

    assert copied == {
        "chats": 1,
        "feeds": 1,
        "feed_entries": 1,
        "stories": 1,
        "subscriptions": 1,
        "outbox": 2,
        "ask_prompts": 1,
    }
    assert await store.outbox.rows() == before
    assert await store.chats.get(7) == await source.chats.get(7)
    [sub] = await store.subscriptions.active()
    assert sub.topic == "volcano" and sub.vector is not None and sub.vector.tolist() == [1.0] * 8
    assert await store.feeds.seen_entries(feed.id, ["e1"]) == {"e1"}
    assert await store.prompts.article(7, 3) == "a1"
    assert set((await copy_bot_data(source, store)).values()) == {0}
    newer, created = await store.subscriptions.subscribe(7, 0, "bank", "", None, 1)
    assert created and newer.id > sub.id
    await store.outbox.enqueue_notice(7, "after")
    assert len(await store.outbox.rows()) == 3
    await source.close()
