"""Alert delivery through the outbox: exactly once, rate limits, 429/403/5xx, migrations,
quiet hours, digests, topic matching, schema migrations."""

from __future__ import annotations

import itertools
import time
from datetime import date
from pathlib import Path

import pytest

from bot.alerts.matching import ArticlePassages, match_subscriptions
from bot.alerts.rendering import alert_payload
from bot.storage import ChatPrefs, Delivery, Subscription
from index.formats import make_article
from tests.alerts_support import Stack, alerts_stack
from tests.fake_telegram import FakeChat, FakeUser

ANN = FakeUser(id=1001, first_name="Ann")
CHAT = FakeChat.private(ANN)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> dict[str, str]:
    """Settings for the bot's database: SQLite in DATA_DIR, or a fresh PostgreSQL one."""
    if request.param == "sqlite":
        return {}
    return {"database_url": request.getfixturevalue("postgres_url")}


def delivery(chat_id: int, n: int, thread_id: int = 0) -> Delivery:
    article_id = f"{n:016x}"
    payload = alert_payload(
        article_id=article_id,
        title=f"Story number {n}",
        url=f"https://news.test/{n}",
        outlet="Daily Test",
        published=date(2024, 5, 1),
        quote=f"Quote of story {n}.",
        topic="volcano",
        source="",
        sub_id=1,
    )
    return Delivery(chat_id, thread_id, article_id, 1, payload)


async def queue(stack: Stack, *deliveries: Delivery) -> int:
    for d in deliveries:
        await stack.alerts.store.chats.ensure(d.chat_id)
    count = await stack.alerts.store.outbox.enqueue(list(deliveries))
    assert stack.alerts.sender is not None
    stack.alerts.sender.wake()
    return count


def texts(stack: Stack, chat_id: int) -> list[str]:
    return [m.text.split("\n")[0] for m in stack.api.sent_messages(chat_id)]


async def settle(stack: Stack, seconds: float = 0.3) -> None:
    await stack.api.wait_until(lambda: stack.api.is_settled(seconds), 10)


async def test_each_alert_is_sent_exactly_once(tmp_path: Path, backend: dict[str, str]) -> None:
    """The same (chat, article) queued twice is one row and one message, in order."""
    async with alerts_stack(tmp_path, **backend) as stack:
        stack.api.add_chat(CHAT)
        assert await queue(stack, delivery(CHAT.id, 1), delivery(CHAT.id, 2)) == 2
        assert await queue(stack, delivery(CHAT.id, 1)) == 0
        await stack.api.wait_until(lambda: len(texts(stack, CHAT.id)) == 2)
        await settle(stack)
        assert texts(stack, CHAT.id) == ["Story number 1", "Story number 2"]
        assert {r.state for r in await stack.alerts.store.outbox.rows()} == {"sent"}


async def test_per_chat_interval_and_global_rate(tmp_path: Path) -> None:
    """Messages to one chat are spaced by ALERT_CHAT_INTERVAL; all by 1/ALERT_RATE."""
    async with alerts_stack(tmp_path, alert_chat_interval=0.3, alert_rate=20) as stack:
        chats = [FakeChat.private(FakeUser(id=2000 + i, first_name="U")) for i in range(6)]
        for chat in chats:
            stack.api.add_chat(chat)
        await queue(stack, *[delivery(CHAT.id, n) for n in range(3)])
        stack.api.add_chat(CHAT)
        await queue(stack, *[delivery(c.id, 9) for c in chats])
        await stack.api.wait_until(lambda: len(stack.api.calls_of("sendMessage")) == 9)
        calls = [c for c in stack.api.calls_of("sendMessage") if c.ok]
        own = [c.time for c in calls if c.params["chat_id"] == CHAT.id]
        assert all(b - a >= 0.28 for a, b in itertools.pairwise(own))
        every = sorted(c.time for c in calls)
        assert every[-1] - every[0] >= 8 / 20 - 0.05


async def test_429_retry_after_is_honoured(tmp_path: Path) -> None:
    """A 429 holds sending for retry_after seconds, then the alert arrives once."""
    async with alerts_stack(tmp_path) as stack:
        stack.api.add_chat(CHAT)
        stack.api.fail_next("sendMessage", 429, retry_after=1)
        started = time.monotonic()
        await queue(stack, delivery(CHAT.id, 1))
        await stack.api.wait_until(lambda: texts(stack, CHAT.id) == ["Story number 1"], 5)
        assert time.monotonic() - started >= 1.0
        failed, ok = stack.api.calls_of("sendMessage")
        assert ok.time - failed.time >= 1.0


async def test_5xx_is_retried_with_backoff(tmp_path: Path) -> None:
    """Transient server errors are retried; the user gets the alert once."""
    async with alerts_stack(tmp_path) as stack:
        assert stack.alerts.sender is not None
        stack.alerts.sender.backoff = 0.05
        stack.api.add_chat(CHAT)
        stack.api.fail_next("sendMessage", 502, times=2)
        await queue(stack, delivery(CHAT.id, 1))
        await stack.api.wait_until(lambda: texts(stack, CHAT.id) == ["Story number 1"], 5)
        assert len(stack.api.calls_of("sendMessage")) == 3
        assert stack.alerts.sender.stats.retried == 2


async def test_403_deactivates_the_chat(tmp_path: Path, backend: dict[str, str]) -> None:
    """A chat that blocked the bot is deactivated, its queue dropped, nothing more queued;
    a chat that vanished ("chat not found") too."""
    async with alerts_stack(tmp_path, **backend) as stack:
        stack.api.add_chat(CHAT)
        stack.api.fail_next("sendMessage", 403, chat_id=CHAT.id)
        await queue(stack, delivery(CHAT.id, 1))
        sender = stack.alerts.sender
        assert sender is not None
        await stack.api.wait_until(lambda: sender.stats.deactivated == 1)
        assert await stack.alerts.prefs(CHAT.id) == ChatPrefs(CHAT.id, status="blocked")
        assert await stack.alerts.store.outbox.enqueue([delivery(CHAT.id, 2)]) == 0  # inactive
        await settle(stack)
        assert texts(stack, CHAT.id) == []
        assert len(stack.api.calls_of("sendMessage")) == 1
        await queue(stack, delivery(-555, 1))  # never known to Telegram
        await stack.api.wait_until(lambda: sender.stats.deactivated == 2)
        assert (await stack.alerts.prefs(-555)).status == "gone"


async def test_group_migration_is_followed(tmp_path: Path, backend: dict[str, str]) -> None:
    """A group upgraded to a supergroup: the alert goes to the new id, and so do the
    group's subscriptions."""
    async with alerts_stack(tmp_path, **backend) as stack:
        group, supergroup = FakeChat.group(), FakeChat.supergroup()
        stack.api.add_chat(group)
        stack.api.add_chat(supergroup)
        await stack.alerts.store.chats.ensure(group.id, "group")
        await stack.alerts.store.subscriptions.subscribe(group.id, 0, "", "", None, ANN.id)
        stack.api.fail_next("sendMessage", 400, migrate_to_chat_id=supergroup.id, chat_id=group.id)
        await queue(stack, delivery(group.id, 1))
        await stack.api.wait_until(lambda: texts(stack, supergroup.id) == ["Story number 1"], 5)
        assert texts(stack, group.id) == []
        assert [s.chat_id for s in await stack.alerts.store.subscriptions.active()] == [
            supergroup.id
        ]


async def test_quiet_hours_hold_alerts_until_they_end(
    tmp_path: Path, backend: dict[str, str]
) -> None:
    """An alert made during quiet hours is sent when they end, not before."""
    async with alerts_stack(tmp_path, **backend) as stack:
        store = stack.alerts.store
        stack.api.add_chat(CHAT)
        now = time.time()
        hour = int(now % 86400 // 3600)
        await store.chats.ensure(CHAT.id)
        await store.chats.set_prefs(CHAT.id, quiet_start=hour, quiet_end=(hour + 2) % 24)
        await queue(stack, delivery(CHAT.id, 1))
        await settle(stack)
        assert texts(stack, CHAT.id) == []
        [row] = await store.outbox.rows()
        assert row.not_before == pytest.approx(now - now % 3600 + 2 * 3600, abs=1)
        store.clock = lambda: now + 2 * 3600 + 1  # two hours later
        assert stack.alerts.sender is not None
        stack.alerts.sender.wake()
        await stack.api.wait_until(lambda: texts(stack, CHAT.id) == ["Story number 1"], 5)


async def test_digest_collects_alerts_at_the_chosen_hour(
    tmp_path: Path, backend: dict[str, str]
) -> None:
    """Digest mode: nothing instantly; at the digest hour one message lists the articles."""
    async with alerts_stack(tmp_path, **backend) as stack:
        store = stack.alerts.store
        stack.api.add_chat(CHAT)
        await store.chats.ensure(CHAT.id)
        now = time.time()
        digest_hour = (int(now % 86400 // 3600) + 3) % 24
        await store.chats.set_prefs(CHAT.id, mode="digest", digest_hour=digest_hour, tz_minutes=0)
        await queue(stack, delivery(CHAT.id, 1), delivery(CHAT.id, 2))
        assert await stack.alerts.roll_digests() == 0
        await settle(stack)
        assert texts(stack, CHAT.id) == []
        store.clock = lambda: now + 3 * 3600
        assert await stack.alerts.roll_digests() == 1
        await stack.api.wait_until(lambda: texts(stack, CHAT.id) == ["Your digest: 2 new articles"])
        [digest] = stack.api.sent_messages(CHAT.id)
        assert "Story number 1" in digest.text and "Story number 2" in digest.text
        assert [e["url"] for e in digest.entities if e["type"] == "text_link"] == [
            "https://news.test/1",
            "https://news.test/2",
        ]
        assert await stack.alerts.roll_digests() == 0


def test_deliver_at_for_quiet_hours_across_midnight_and_time_zones() -> None:
    """Quiet 22-7 in UTC+2: 23:30 local waits until 07:00 local; 12:00 goes now."""
    prefs = ChatPrefs(1, quiet_start=22, quiet_end=7, tz_minutes=120)
    day = 1_700_000_000 - 1_700_000_000 % 86400  # a UTC midnight
    late = day + 21.5 * 3600  # 23:30 local
    assert prefs.deliver_at(late) == ("pending", day + 86400 + 5 * 3600)
    noon = day + 10 * 3600
    assert prefs.deliver_at(noon) == ("pending", noon)


def test_topic_matching_is_semantic_with_a_threshold() -> None:
    """A topic matches the article whose passage is close to it, quoting that passage; an
    outlet subscription matches only its outlet."""
    import numpy as np

    from tests.fakes import HashEmbedder

    embedder = HashEmbedder()
    texts_ = [
        "Markets were calm in the morning.",
        "The volcano erupted, ash fell on the village and lava flowed.",
    ]
    article = make_article(
        title="Morning report",
        text="\n\n".join(texts_),
        url=None,
        outlet="Daily Test",
        author=None,
        published=None,
        source=None,
    )
    passages = ArticlePassages(
        texts_,
        embedder.encode(texts_),
        [[(0, len(t))] for t in texts_],
        [embedder.encode([t]) for t in texts_],
    )

    def sub(n: int, topic: str = "", outlet: str = "") -> Subscription:
        vector = embedder.encode([topic])[0] if topic else None
        return Subscription(n, n, 0, topic, outlet, vector, False)

    subs = [
        sub(1, "volcano lava"),
        sub(2, "football penalties"),
        sub(3, outlet="Other"),
        sub(4, outlet="daily test"),
        sub(5),
    ]
    found = {m.subscription.id: m for m in match_subscriptions(article, passages, subs, 0.3)}
    assert sorted(found) == [1, 4, 5]
    assert "volcano erupted" in found[1].quote
    assert found[5].quote == texts_[0]
    assert np.isclose(found[5].score, 1.0)


@pytest.mark.real_model
def test_topic_matching_with_the_real_model(real_embedder) -> None:  # type: ignore[no-untyped-def]
    """With all-MiniLM-L6-v2 and the calibrated threshold, a topic matches an article
    that shares none of its words, and not an unrelated one."""
    from bot.alerts.settings import AlertSettings

    threshold = AlertSettings(_env_file=None).topic_threshold(real_embedder.name)  # type: ignore[call-arg]
    quake = [
        "A strong tremor shook the coastal city at dawn, cracking walls and toppling "
        "chimneys. Seismologists measured a magnitude of 6.1."
    ]
    football = ["The striker scored twice in the second half and the home side won the cup."]
    topic = real_embedder.encode(["earthquake"])[0]
    for text, expected in ((quake, True), (football, False)):
        article = make_article(
            title="News",
            text=text[0],
            url=None,
            outlet=None,
            author=None,
            published=None,
            source=None,
        )
        passages = ArticlePassages(
            text, real_embedder.encode(text), [[(0, len(text[0]))]], [real_embedder.encode(text)]
        )
        sub = Subscription(1, 1, 0, "earthquake", "", topic, False)
        assert bool(match_subscriptions(article, passages, [sub], threshold)) is expected
