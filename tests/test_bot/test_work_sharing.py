"""Work shared by several workers over one PostgreSQL database (each with its own connection
pool, as separate processes have): the outbox, feed polling, digests and /reindex jobs.
Each alert reaches its chat once, each due feed is fetched once, each digest is rolled once,
a /reindex asked on a web replica runs once on a worker that edits the admin's status
message, and the claims of a worker that died are taken over when their lease passes."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.alerts.sender import OutboxSender
from bot.alerts.service import AlertsService
from bot.app import build_services, create_bot, create_dispatcher
from bot.i18n import create_i18n
from bot.jobs import JobRunner
from bot.settings import BotSettings
from bot.storage import BotStore, Delivery
from bot.storage.database import database_url
from index import ArticleIndex, IndexCore, IndexSettings
from tests.alerts_support import FeedServer, alert_settings, rss
from tests.conversation import Conversation
from tests.fake_telegram import FakeBotAPI, FakeChat, FakeUser
from tests.fakes import HashEmbedder
from tests.test_bot.harness import ADMIN
from tests.test_bot.test_alerts import delivery

SUBSCRIBERS = 150
PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def two_stores(postgres_url: str, tmp_path: Path) -> Iterator[tuple[BotStore, BotStore]]:
    """Two workers' stores on one PostgreSQL database."""
    url = database_url(tmp_path, postgres_url)
    yield BotStore.from_url(url), BotStore.from_url(url)


def fake_bot(api: FakeBotAPI) -> Bot:
    return Bot(api.token, session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url)))


def sender(store: BotStore, bot: Bot, **options: float) -> OutboxSender:
    values = {"rate": 0.0, "chat_interval": 0.0, "concurrency": 4, **options}
    return OutboxSender(store, bot, **values)  # type: ignore[arg-type]


def received(api: FakeBotAPI, chats: list[FakeChat]) -> collections.Counter[tuple[int, str]]:
    """(chat, headline) of every alert the chats got, with how many times."""
    return collections.Counter(
        (m.chat_id, m.text.split("\n")[0]) for c in chats for m in api.sent_messages(c.id)
    )


async def queue_broadcast(store: BotStore, api: FakeBotAPI, articles: int) -> list[FakeChat]:
    chats = [FakeChat.private(FakeUser(id=20_000 + i, first_name="S")) for i in range(SUBSCRIBERS)]
    for chat in chats:
        api.add_chat(chat)
    await store.outbox.enqueue([delivery(c.id, n) for n in range(articles) for c in chats])
    return chats


# -- the outbox ---------------------------------------------------------------------------


async def test_many_claimers_racing_take_each_row_once(postgres_url: str, tmp_path: Path) -> None:
    """Four workers' pools, two claimers each, small batches, marking as they go: no row
    is ever claimed twice (a row another worker claimed after a statement began is
    skipped, not taken again)."""
    url = database_url(tmp_path, postgres_url)
    stores = [BotStore.from_url(url) for _ in range(4)]
    await stores[0].outbox.enqueue([Delivery(chat, 0, "a", None, {}) for chat in range(200)])
    claims: collections.Counter[int] = collections.Counter()

    async def claim_until_done(store: BotStore, name: str) -> None:
        while rows := await store.outbox.claim(4, owner=name, lease=60):
            claims.update(r.id for r in rows)
            await store.outbox.mark_sent_many([(r.id, 1) for r in rows])

    while (await stores[0].outbox.counts()).get("pending"):
        await asyncio.gather(
            *(claim_until_done(s, f"w{n}") for n, s in enumerate(stores) for _ in range(2))
        )
    assert len(claims) == 200
    assert [row for row, count in claims.items() if count > 1] == []
    for store in stores:
        await store.close()


async def test_two_senders_share_one_outbox_and_send_each_alert_once(
    two_stores: tuple[BotStore, BotStore], api: FakeBotAPI
) -> None:
    """Two senders drain one outbox together: every chat gets each alert exactly once, in
    order, and both senders took part."""
    first, second = two_stores
    chats = await queue_broadcast(first, api, articles=2)
    bot = fake_bot(api)
    one, two = sender(first, bot), sender(second, bot)

    await asyncio.gather(one.run(until_empty=True), two.run(until_empty=True))

    expected = {(c.id, f"Story number {n}") for c in chats for n in range(2)}
    assert received(api, chats) == collections.Counter(expected)
    for chat in chats:
        assert [m.text.split("\n")[0] for m in api.sent_messages(chat.id)] == [
            "Story number 0",
            "Story number 1",
        ]
    assert one.stats.sent > 0 and two.stats.sent > 0
    assert one.stats.sent + two.stats.sent == 2 * SUBSCRIBERS
    assert await first.outbox.counts() == {"sent": 2 * SUBSCRIBERS}
    await bot.session.close()
    await first.close()
    await second.close()


async def test_a_dead_senders_claims_are_sent_by_another_after_its_lease(
    two_stores: tuple[BotStore, BotStore], api: FakeBotAPI
) -> None:
    """A worker claimed a batch and died without sending it: nobody sends those rows while
    its lease runs, then another worker sends them, each once."""
    first, second = two_stores
    chats = await queue_broadcast(first, api, articles=1)
    abandoned = await first.outbox.claim(40, owner="dead worker", lease=1.5)
    bot = fake_bot(api)
    survivor = sender(second, bot)
    started = time.monotonic()

    await survivor.run(until_empty=True)

    assert received(api, chats) == collections.Counter({(c.id, "Story number 0") for c in chats})
    last_abandoned = max(
        call.time
        for call in api.calls_of("sendMessage")
        if call.params["chat_id"] in {row.chat_id for row in abandoned}
    )
    assert last_abandoned - started >= 1.0  # not before the lease passed
    rows = {r.id: r for r in await second.outbox.rows()}
    assert {rows[r.id].attempts for r in abandoned} == {2}  # the dead worker's try counts
    assert await second.outbox.counts() == {"sent": SUBSCRIBERS}
    await bot.session.close()
    await first.close()
    await second.close()


# -- feeds ---------------------------------------------------------------------------------


async def test_two_pollers_fetch_each_due_feed_once(postgres_url: str, tmp_path: Path) -> None:
    """Two workers poll at the same moment: each due feed is fetched by one of them."""
    server = FeedServer()
    await server.start()
    services = []
    for name in ("one", "two"):
        settings = alert_settings(tmp_path / name, database_url=postgres_url)
        core = await asyncio.to_thread(
            IndexCore.open,
            IndexSettings(data_dir=settings.data_dir, _env_file=None),  # type: ignore[call-arg]
            HashEmbedder(),
        )
        services.append(AlertsService(settings, ArticleIndex(core)))
    paths = [f"feed{n}.rss" for n in range(8)]
    for n, path in enumerate(paths):
        url = server.serve(path, rss(f"Feed {n}", [{"title": f"Story {n}", "text": "Text."}]))
        await services[0].store.feeds.add(url)
    try:
        reports = await asyncio.gather(*(s.poll_now() for s in services))
        assert sorted(r.url for rs in reports for r in rs) == sorted(server.url(p) for p in paths)
        assert all(server.statuses(path) == [200] for path in paths)
        assert await services[1].poll_now() == []  # polled: none due now
    finally:
        for service in services:
            await service.stop()  # its database and fetcher
            await service.index.close()
        await server.stop()


# -- digests -------------------------------------------------------------------------------


async def test_racing_workers_roll_each_digest_once(
    two_stores: tuple[BotStore, BotStore],
) -> None:
    first, second = two_stores
    for chat_id in range(1, 6):
        await first.chats.ensure(chat_id)
        await first.chats.set_prefs(chat_id, mode="digest", digest_hour=8)
        await first.outbox.enqueue(
            [Delivery(chat_id, 0, f"a{n}", 1, {"article_id": f"a{n}"}) for n in range(3)]
        )
    later = first.clock() + 86400

    rolled = await asyncio.gather(
        *(store.outbox.roll_digests(later, 20) for store in (first, second, first, second))
    )

    assert sum(rolled) == 5
    digests = [r for r in await first.outbox.rows() if r.kind == "digest"]
    assert sorted(r.chat_id for r in digests) == [1, 2, 3, 4, 5]
    assert all(len(r.payload["items"]) == 3 for r in digests)
    await first.close()
    await second.close()


# -- /reindex as a job ---------------------------------------------------------------------


@pytest.fixture
async def web_replica(
    api: FakeBotAPI, bot_settings: BotSettings, index: ArticleIndex, postgres_url: str
) -> AsyncIterator[BotSettings]:
    """A replica that only answers updates (role "web"), on the shared database; yields its
    settings (for a worker to share)."""
    settings = bot_settings.model_copy(
        update={"bot_api_url": api.base_url, "database_url": postgres_url}
    )
    services = build_services(settings, index)
    services.role = "web"
    bot = create_bot(settings)
    dispatcher = create_dispatcher(services)
    polling = asyncio.create_task(dispatcher.start_polling(bot, handle_signals=False))
    await api.wait_until(lambda: api.calls_of("getUpdates"), what="polling")
    try:
        yield settings
        assert services.alerts is not None and services.alerts.sender is None  # no delivery
    finally:
        await dispatcher.stop_polling()
        await polling
        await bot.session.close()


def worker_jobs(settings: BotSettings, index: ArticleIndex) -> JobRunner:
    """A worker's job runner, with its own store on the shared database."""
    store = BotStore.from_settings(settings.data_dir, settings.database_url)
    return JobRunner(store.jobs, index, create_i18n())


async def test_reindex_asked_on_a_web_replica_runs_once_on_a_worker(
    api: FakeBotAPI, web_replica: BotSettings, index: ArticleIndex
) -> None:
    """The web replica queues the job and answers with a status message; a second /reindex
    meanwhile is told one is running; a worker runs it and edits that status message."""
    conv = Conversation(api, FakeChat.private(ADMIN), ADMIN)
    [status] = await conv.send("/reindex")
    [refusal] = await conv.send("/reindex")
    assert status.text == "🔄 Reindexing: starting…"
    assert refusal.text.startswith("A reindex is already running")
    assert (await conv.send("/stats"))[0].text.endswith("Reindex: running")

    runner = worker_jobs(web_replica, index)
    bot = create_bot(web_replica)
    assert await runner.run_one(bot)

    final = await conv.wait_for(lambda m: m.text.startswith("✅ Reindex finished"))
    assert final.message_id == status.message_id
    assert final.text.startswith("✅ Reindex finished: 5 articles, ")
    assert not await runner.run_one(bot)  # ran once
    assert (await conv.send("/stats"))[0].text.endswith("Reindex: idle")
    await bot.session.close()
    await runner.jobs.db.close()


async def test_a_job_whose_worker_died_is_taken_over_after_its_lease(
    api: FakeBotAPI, web_replica: BotSettings, index: ArticleIndex
) -> None:
    conv = Conversation(api, FakeChat.private(ADMIN), ADMIN)
    [status] = await conv.send("/reindex")
    dead = worker_jobs(web_replica, index)
    assert await dead.jobs.claim(owner="dead worker", lease=30) is not None  # then it died

    survivor = worker_jobs(web_replica, index)
    bot = create_bot(web_replica)
    assert not await survivor.run_one(bot)  # its lease still runs
    now = time.time()
    survivor.jobs.db.clock = lambda: now + 31
    assert await survivor.run_one(bot)

    final = await conv.wait_for(lambda m: m.text.startswith("✅ Reindex finished"))
    assert final.message_id == status.message_id
    await bot.session.close()
    for runner in (dead, survivor):
        await runner.jobs.db.close()


# -- the roles as processes ------------------------------------------------------------------


def test_a_web_replica_without_a_webhook_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from bot.__main__ import main

    monkeypatch.setenv("BOT_TOKEN", "123:abc")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("WEBHOOK_URL", raising=False)

    assert main(["web"]) == 2
    assert capsys.readouterr().err == (
        "error: python -m bot web takes updates by webhook only: set WEBHOOK_URL and "
        "WEBHOOK_SECRET (or run python -m bot for long polling)\n"
    )


async def test_a_worker_process_sends_alerts_takes_no_updates_and_stops_on_sigterm(
    api: FakeBotAPI, postgres_url: str, tmp_path: Path
) -> None:
    """``python -m bot worker`` delivers what the outbox holds, never asks Telegram for
    updates, and exits cleanly on SIGTERM."""
    store = BotStore.from_url(database_url(tmp_path, postgres_url))
    chats = await queue_broadcast(store, api, articles=1)
    (tmp_path / "samples").mkdir()
    env = {
        **os.environ,
        "BOT_TOKEN": api.token,
        "BOT_API_URL": api.base_url,
        "DATABASE_URL": postgres_url,
        "DATA_DIR": str(tmp_path / "data"),
        "SAMPLES_DIR": str(tmp_path / "samples"),
        "ALERT_RATE": "0",
        "ALERT_CHAT_INTERVAL": "0",
        "EMBEDDING_BACKEND": "torch",  # loads in seconds; no ONNX export in this process
    }
    for unwanted in ("WEBHOOK_URL", "REDIS_URL", "METRICS_PORT"):
        env.pop(unwanted, None)
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "worker",
        env=env,
        cwd=PROJECT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await api.wait_until(
            lambda: len(received(api, chats)) == SUBSCRIBERS, 120, what="the broadcast"
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(worker.communicate(), 30)
    assert worker.returncode == 0, err.decode()[-2000:]
    assert received(api, chats) == collections.Counter({(c.id, "Story number 0") for c in chats})
    assert api.calls_of("getUpdates") == [] and api.calls_of("setWebhook") == []
    assert await store.outbox.counts() == {"sent": SUBSCRIBERS}
    await store.close()
