"""Crash safety: the sender is killed with SIGKILL in the middle of a broadcast and
restarted; every subscriber ends with each alert exactly once (tolerating only requests
Telegram accepted in the instant before they were marked, at most one per slot in flight).
The rows the killed sender had claimed return to the queue when its lease passes."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import sys
from pathlib import Path

from bot.storage import BotStore
from bot.storage.database import sqlite_url
from tests.fake_telegram import FakeBotAPI, FakeChat, FakeUser
from tests.test_bot.test_alerts import delivery

PROJECT = Path(__file__).resolve().parents[2]
SUBSCRIBERS = 300
ARTICLES = 2
CONCURRENCY = 2
LEASE = 2  # seconds: the killed sender's claims return to the queue after this


async def start_sender(api: FakeBotAPI, db: Path) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "BOT_TOKEN": api.token,
        "BOT_API_URL": api.base_url,
        "ALERT_RATE": "0",
        "ALERT_CHAT_INTERVAL": "0",
        "ALERT_CONCURRENCY": str(CONCURRENCY),
        "ALERT_CLAIM_LEASE": str(LEASE),
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.alerts",
        "send",
        "--db",
        str(db),
        "--until-empty",
        env=env,
        cwd=PROJECT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_sigkill_mid_broadcast_then_restart_sends_each_alert_once(tmp_path: Path) -> None:
    """Kill -9 after about a third of the messages; the restart finishes the broadcast."""
    db = tmp_path / "bot.sqlite3"
    store = BotStore.from_url(sqlite_url(db))
    chats = [FakeChat.private(FakeUser(id=10_000 + i, first_name="S")) for i in range(SUBSCRIBERS)]
    async with FakeBotAPI() as api:
        for chat in chats:
            api.add_chat(chat)
            await store.chats.ensure(chat.id)
        await store.outbox.enqueue([delivery(c.id, n) for n in range(ARTICLES) for c in chats])
        total = SUBSCRIBERS * ARTICLES

        def sent() -> int:
            return sum(1 for c in api.calls_of("sendMessage") if c.ok)

        first = await start_sender(api, db)
        await api.wait_until(lambda: sent() >= total // 3, 120, what="a third of the broadcast")
        first.send_signal(signal.SIGKILL)
        await first.wait()
        at_kill = sent()
        assert at_kill < total, "the broadcast finished before the kill"

        second = await start_sender(api, db)
        _, err = await asyncio.wait_for(second.communicate(), 60)
        assert second.returncode == 0, err.decode()[-2000:]

        received = collections.Counter(
            (m.chat_id, m.text.split("\n")[0]) for c in chats for m in api.sent_messages(c.id)
        )
        expected = {(c.id, f"Story number {n}") for c in chats for n in range(ARTICLES)}
        assert set(received) == expected  # nothing lost
        repeats = sum(count - 1 for count in received.values())
        assert repeats <= CONCURRENCY  # only what was in flight at the kill
        assert await store.outbox.counts() == {"sent": total}
    await store.close()
