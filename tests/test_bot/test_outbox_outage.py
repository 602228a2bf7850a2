"""The alert sender rides out a database outage: PostgreSQL refusing connections for a
while pauses delivery (one log line), and once the database is back every alert still
reaches its chat; only rows in flight at the outage may arrive twice."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bot.storage import BotStore
from bot.storage.database import database_url
from tests.fake_telegram import FakeBotAPI
from tests.postgres import allow_connections
from tests.test_bot.test_work_sharing import fake_bot, queue_broadcast, received, sender


async def test_sender_survives_a_database_outage(
    postgres_url: str, tmp_path: Path, api: FakeBotAPI, caplog: pytest.LogCaptureFixture
) -> None:
    database = postgres_url.rsplit("/", 1)[1]
    store = BotStore.from_url(database_url(tmp_path, postgres_url))
    chats = await queue_broadcast(store, api, articles=2)
    bot = fake_bot(api)
    one = sender(store, bot, rate=100.0, lease=2.0)
    one.store_retry = 0.2
    caplog.set_level(logging.WARNING, logger="bot.alerts.sender")
    delivery = asyncio.create_task(one.run(until_empty=True))
    try:
        await api.wait_until(
            lambda: sum(len(api.sent_messages(c.id)) for c in chats) >= 40, 60, what="sends"
        )
        await asyncio.to_thread(allow_connections, database, False)
        await asyncio.sleep(1.5)
        assert not delivery.done()  # paused, not stopped
        await asyncio.to_thread(allow_connections, database, True)
        await asyncio.wait_for(delivery, 60)
    finally:
        await asyncio.to_thread(allow_connections, database, True)
        delivery.cancel()
        await store.close()
        await bot.session.close()

    got = received(api, chats)
    expected = {(c.id, f"Story number {n}") for c in chats for n in range(2)}
    assert set(got) == expected  # every alert delivered
    repeats = sum(count - 1 for count in got.values())
    # at most the rows the sender held when the database went: a claimed batch (16) and the
    # sends under way (4), which Telegram accepted but could not be marked sent
    assert repeats <= 16 + 4
    messages = [r.getMessage() for r in caplog.records]
    assert sum("Alert delivery paused" in m for m in messages) == 1
    assert any("Alert delivery resumed" in m for m in messages)
