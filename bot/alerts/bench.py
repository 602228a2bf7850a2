"""Benchmark: one new article to N subscribers through a local fake Bot API, rate limit
lifted. Measures what the sender sustains with the outbox (claim + mark in the database
around every request) against the same requests sent directly, with the same concurrency:
on SQLite (a temporary folder) and, with ``--database-url``, on PostgreSQL too (in a
temporary schema of that database, dropped afterwards).

    python -m bot.alerts bench [--subscribers 10000] [--concurrency 4] [--database-url URL]

Run from the project root: it uses the test suite's fake Bot API (tests/fake_telegram.py),
which validates every call against the Bot API spec, as the server.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy import insert, text

from bot.alerts.rendering import alert_payload, render
from bot.alerts.sender import NO_PREVIEW, OutboxSender
from bot.storage import BotStore, Database, Delivery
from bot.storage.database import database_url, sqlite_url
from bot.storage.schema import chats

FIRST_CHAT = 5_000_000


async def run(subscribers: int, concurrency: int = 4, postgres_url: str | None = None) -> int:
    from tests.fake_telegram import FakeBotAPI, FakeChat, FakeUser

    payload = alert_payload(
        article_id="0123456789abcdef",
        title="Volcano erupts near village",
        url="https://news.example/volcano",
        outlet="Daily Test",
        published=date(2024, 5, 1),
        quote="The volcano erupted on Monday morning, sending ash over the village.",
        topic="volcano",
        source="",
        sub_id=1,
    )
    chat_ids = list(range(FIRST_CHAT, FIRST_CHAT + subscribers))
    results: list[tuple[str, float, float, OutboxSender]] = []
    async with FakeBotAPI() as api:
        for chat_id in chat_ids:
            api.add_chat(FakeChat.private(FakeUser(id=chat_id, first_name="S")))
        bot = Bot(api.token, session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url)))
        try:
            direct = await _direct(bot, chat_ids, payload, concurrency)
            with tempfile.TemporaryDirectory() as folder:
                store = BotStore.from_url(sqlite_url(Path(folder) / "bot.sqlite3"))
                try:
                    results.append(
                        ("SQLite", *await _outbox(bot, store, chat_ids, payload, concurrency))
                    )
                finally:
                    await store.close()
            if postgres_url:
                results.append(
                    (
                        "PostgreSQL",
                        *await _postgres(bot, postgres_url, chat_ids, payload, concurrency),
                    )
                )
        finally:
            await bot.session.close()
    n = len(chat_ids)
    print(
        f"subscribers: {n:,}; concurrency {concurrency}; rate limit lifted; "
        "fake Bot API on 127.0.0.1 (spec-validated)"
    )
    print(f"direct sends (no outbox):         {direct:6.2f} s  {n / direct:7.0f} msg/s")
    ok = True
    for backend, enqueue, outbox, sender in results:
        overhead = (outbox - direct) / n * 1000
        print(
            f"{backend + ' outbox enqueue (1 txn):':<34}{enqueue:6.2f} s  {n / enqueue:7.0f} rows/s"
        )
        print(
            f"{backend + ' outbox sender:':<34}{outbox:6.2f} s  {n / outbox:7.0f} msg/s sustained "
            f"(sent {sender.stats.sent:,}, failed {sender.stats.failed})"
        )
        print(
            f"{backend + ' outbox overhead:':<34}{overhead:+.3f} ms/message "
            f"({(outbox / direct - 1) * 100:+.0f}% time; +{enqueue / n * 1000:.3f} ms/message "
            "to enqueue)"
        )
        ok = ok and sender.stats.sent == n
    return 0 if ok else 1


async def _postgres(
    bot: Bot,
    url: str,
    chat_ids: list[int],
    payload: dict,
    concurrency: int,  # type: ignore[type-arg]
) -> tuple[float, float, OutboxSender]:
    """The outbox part in a schema of its own, dropped afterwards."""
    schema = f"newsbot_bench_{uuid.uuid4().hex[:8]}"
    store = BotStore(Database(database_url(Path(), url), schema=schema))
    try:
        return await _outbox(bot, store, chat_ids, payload, concurrency)
    finally:
        async with store.database.write() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await store.close()


async def _direct(bot: Bot, chat_ids: list[int], payload: dict, concurrency: int) -> float:  # type: ignore[type-arg]
    slots = asyncio.Semaphore(concurrency)

    async def one(chat_id: int) -> None:
        async with slots:
            content, keyboard = render("alert", payload)
            await bot.send_message(
                chat_id=chat_id, reply_markup=keyboard, link_preview_options=NO_PREVIEW, **content
            )

    started = time.perf_counter()
    await asyncio.gather(*(one(chat_id) for chat_id in chat_ids))
    return time.perf_counter() - started


async def _outbox(
    bot: Bot,
    store: BotStore,
    chat_ids: list[int],
    payload: dict,  # type: ignore[type-arg]
    concurrency: int,
) -> tuple[float, float, OutboxSender]:
    async with store.database.write() as conn:
        await conn.execute(
            insert(chats),
            [{"chat_id": chat_id, "created_at": 0, "updated_at": 0} for chat_id in chat_ids],
        )
    started = time.perf_counter()
    await store.outbox.enqueue(
        [Delivery(c, 0, payload["article_id"], 1, payload) for c in chat_ids]
    )
    enqueue = time.perf_counter() - started
    sender = OutboxSender(store, bot, rate=0, chat_interval=0, concurrency=concurrency)
    started = time.perf_counter()
    await sender.run(until_empty=True)
    return enqueue, time.perf_counter() - started, sender
