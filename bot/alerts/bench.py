"""Benchmark: one new article to N subscribers through a local fake Bot API, rate limit
lifted. Measures what the sender sustains with the outbox (claim + mark in SQLite around
every request) against the same requests sent directly, with the same concurrency.

    python -m bot.alerts bench [--subscribers 10000] [--concurrency 4]

Run from the project root: it uses the test suite's fake Bot API (tests/fake_telegram.py),
which validates every call against the Bot API spec, as the server.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import date
from pathlib import Path

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.alerts.rendering import alert_payload, render
from bot.alerts.sender import NO_PREVIEW, OutboxSender
from bot.storage import Delivery, Storage

FIRST_CHAT = 5_000_000


async def run(subscribers: int, concurrency: int = 4) -> int:
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
    async with FakeBotAPI() as api:
        for chat_id in chat_ids:
            api.add_chat(FakeChat.private(FakeUser(id=chat_id, first_name="S")))
        bot = Bot(api.token, session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url)))
        try:
            direct = await _direct(bot, chat_ids, payload, concurrency)
            with tempfile.TemporaryDirectory() as folder:
                storage = Storage(Path(folder) / "bot.sqlite3")
                enqueue, outbox, sender = await _outbox(
                    bot, storage, chat_ids, payload, concurrency
                )
                storage.close()
        finally:
            await bot.session.close()
    n = len(chat_ids)
    print(
        f"subscribers: {n:,}; concurrency {concurrency}; rate limit lifted; "
        "fake Bot API on 127.0.0.1 (spec-validated)"
    )
    print(f"direct sends (no outbox):   {direct:6.2f} s  {n / direct:7.0f} msg/s")
    print(f"outbox enqueue (1 txn):     {enqueue:6.2f} s  {n / enqueue:7.0f} rows/s")
    print(
        f"outbox sender:              {outbox:6.2f} s  {n / outbox:7.0f} msg/s sustained "
        f"(sent {sender.stats.sent:,}, failed {sender.stats.failed})"
    )
    overhead = (outbox - direct) / n * 1000
    print(
        f"outbox overhead:            {overhead:+.3f} ms/message "
        f"({(outbox / direct - 1) * 100:+.0f}% time; +{enqueue / n * 1000:.3f} ms/message "
        "to enqueue)"
    )
    return 0 if sender.stats.sent == n else 1


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
    storage: Storage,
    chat_ids: list[int],
    payload: dict,
    concurrency: int,  # type: ignore[type-arg]
) -> tuple[float, float, OutboxSender]:
    with storage.transaction() as db:
        db.executemany(
            "INSERT INTO chats (chat_id, created_at, updated_at) VALUES (?, 0, 0)",
            [(chat_id,) for chat_id in chat_ids],
        )
    started = time.perf_counter()
    storage.enqueue([Delivery(c, 0, payload["article_id"], 1, payload) for c in chat_ids])
    enqueue = time.perf_counter() - started
    sender = OutboxSender(storage, bot, rate=0, chat_interval=0, concurrency=concurrency)
    started = time.perf_counter()
    await sender.run(until_empty=True)
    return enqueue, time.perf_counter() - started, sender
