"""The outbox sender: delivers queued alerts under Telegram's limits, exactly once.

Each row is claimed (``sending``) just before its request and marked ``sent`` just after,
so a crash can repeat only the requests in flight (at most ``concurrency``). Limits: a
global pace (messages per second) and a per-chat gap; a 429 pauses everything for its
``retry_after``; 5xx and network errors are retried with exponential backoff; a 403 or a
vanished chat deactivates the chat and drops its queue; a group that became a supergroup
is followed to its new id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import LinkPreviewOptions

from bot.alerts.rendering import render
from bot.i18n import CachedLanguages, create_i18n, speaking
from bot.storage import BotStore, OutboxRow

__all__ = ["OutboxSender", "Pace", "SenderStats"]

log = logging.getLogger(__name__)

_GONE = (
    "chat not found",
    "user is deactivated",
    "group chat was deactivated",
    "chat was deleted",
    "peer_id_invalid",
    "bot was kicked",
)
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


class Pace:
    """Spaces events at least ``1 / rate`` seconds apart (no limit when rate is 0), and
    holds them all during a pause (a 429's ``retry_after``)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._next = 0.0
        self._paused_until = 0.0

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    async def wait(self) -> None:
        while True:
            now = self._clock()
            slot = max(now, self._next, self._paused_until)
            if slot <= now:
                self._next = now + self.interval
                return
            await asyncio.sleep(slot - now)


@dataclass
class SenderStats:
    sent: int = 0
    retried: int = 0
    rate_limited: int = 0
    failed: int = 0
    deactivated: int = 0
    migrated: int = 0
    errors: list[str] = field(default_factory=list)


class OutboxSender:
    """Drains the outbox; run with ``await sender.run()``, wake it after enqueueing."""

    def __init__(
        self,
        store: BotStore,
        bot: Bot,
        *,
        rate: float = 25.0,
        chat_interval: float = 1.0,
        concurrency: int = 4,
        max_attempts: int = 6,
        backoff: float = 1.0,
    ) -> None:
        self.outbox = store.outbox
        self.chats = store.chats
        self.i18n = create_i18n()  # alerts are rendered in each chat's language
        self.languages = CachedLanguages(store.chats.language, store.chats.set_language)
        self.bot = bot
        self.chat_interval = chat_interval
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.stats = SenderStats()
        self._pace = Pace(rate)
        self._slots = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._busy_chats: set[int] = set()
        self._chat_ready: dict[int, float] = {}  # chat -> monotonic time it may get the next
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        """New rows were queued: look now rather than at the next timer."""
        self._wake.set()

    async def stop(self, grace: float = 5.0) -> None:
        """Stop taking rows; let requests in flight finish (up to ``grace`` seconds)."""
        self._stopping = True
        self.wake()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=grace)
            for task in pending:
                task.cancel()

    async def run(self, *, until_empty: bool = False) -> None:
        """Send until stopped (or, with ``until_empty``, until nothing is pending)."""
        recovered = await self.outbox.recover()
        if recovered:
            log.warning("Re-queued %s alerts that were being sent when the bot stopped", recovered)
        while not self._stopping:
            self._wake.clear()
            rows = await self.outbox.due(self.outbox.now(), 4 * self._concurrency + 64)
            started = 0
            for row in rows:
                if self._stopping:
                    break
                if row.chat_id in self._busy_chats:
                    continue
                if self._chat_ready.get(row.chat_id, 0.0) > time.monotonic():
                    continue
                await self._slots.acquire()
                await self._pace.wait()
                self._busy_chats.add(row.chat_id)
                task = asyncio.create_task(self._deliver(row))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                started += 1
            if started:
                continue
            if until_empty and not self._tasks:
                next_due = await self.outbox.next_due_time()
                if next_due is None:
                    return
            await self._sleep(await self._idle_seconds())
        if self._tasks:
            await asyncio.wait(self._tasks)

    async def _idle_seconds(self) -> float:
        next_due = await self.outbox.next_due_time()
        wait = 1.0
        if next_due is not None:
            wait = min(wait, max(next_due - self.outbox.now(), 0.0))
        waiting_chats = [t - time.monotonic() for t in self._chat_ready.values()]
        if waiting_chats:
            wait = min(wait, max(min(waiting_chats), 0.0))
        return max(wait, 0.005)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _deliver(self, row: OutboxRow) -> None:
        try:
            if await self.outbox.claim(row.id):
                await self._send(row)
        except Exception:  # a bug must not stop the queue; the row stays for a retry
            log.exception("Unexpected error sending outbox row %s", row.id)
            await self.outbox.retry_later(
                row.id, self.outbox.now() + 60, "internal error", counts=True
            )
        finally:
            self._busy_chats.discard(row.chat_id)
            self._chat_ready[row.chat_id] = time.monotonic() + self.chat_interval
            if len(self._chat_ready) > 10_000:  # forget chats whose gap is over
                now = time.monotonic()
                self._chat_ready = {c: t for c, t in self._chat_ready.items() if t > now}
            self._slots.release()
            self.wake()

    async def _send(self, row: OutboxRow) -> None:
        with speaking(self.i18n, await self.languages.get(row.chat_id)):
            content, keyboard = render(row.kind, row.payload)
        try:
            message = await self.bot.send_message(
                chat_id=row.chat_id,
                message_thread_id=row.thread_id or None,
                reply_markup=keyboard,
                link_preview_options=NO_PREVIEW,
                **content,
            )
        except TelegramRetryAfter as error:
            self.stats.rate_limited += 1
            self._pace.pause(error.retry_after)
            await self.outbox.retry_later(
                row.id, self.outbox.now() + error.retry_after, error.message, counts=False
            )
        except TelegramMigrateToChat as error:
            self.stats.migrated += 1
            log.info("Chat %s became %s; following it", row.chat_id, error.migrate_to_chat_id)
            await self.chats.migrate(row.chat_id, error.migrate_to_chat_id)
        except TelegramForbiddenError as error:
            await self._deactivate(row, "blocked", error.message)
        except TelegramBadRequest as error:
            if any(reason in error.message.lower() for reason in _GONE):
                await self._deactivate(row, "gone", error.message)
            else:  # the request itself is wrong: retrying cannot help
                self.stats.failed += 1
                self.stats.errors.append(error.message)
                log.error("Alert %s to chat %s refused: %s", row.id, row.chat_id, error.message)
                await self.outbox.mark_failed(row.id, error.message)
        except (TelegramServerError, TelegramNetworkError, TelegramNotFound) as error:
            await self._transient(row, str(error))
        else:
            await self.outbox.mark_sent(row.id, message.message_id)
            self.stats.sent += 1

    async def _transient(self, row: OutboxRow, reason: str) -> None:
        attempts = row.attempts + 1
        if attempts >= self.max_attempts:
            self.stats.failed += 1
            log.error("Giving up on alert %s after %s attempts: %s", row.id, attempts, reason)
            await self.outbox.mark_failed(row.id, reason)
            return
        self.stats.retried += 1
        delay = min(self.backoff * 2 ** (attempts - 1), 300.0)
        await self.outbox.retry_later(row.id, self.outbox.now() + delay, reason, counts=True)

    async def _deactivate(self, row: OutboxRow, status: str, reason: str) -> None:
        log.info("Chat %s deactivated (%s): %s", row.chat_id, status, reason)
        await self.chats.deactivate(row.chat_id, status, reason)
        self.stats.deactivated += 1
