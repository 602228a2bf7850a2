"""The outbox sender: delivers queued alerts under Telegram's limits, exactly once.

Rows are claimed in batches (``sending``, with a lease this sender renews while it runs)
and marked ``sent`` just after Telegram accepts them (the marks of requests that finish
together share one transaction). Any number of senders, in any number of processes, share
one outbox: a row goes to one of them, a chat gets one message at a time, and the rows of a
sender that dies return to the queue when its lease passes, so a crash can repeat only the
requests in flight (at most ``concurrency`` per sender). Limits: a global pace (messages
per second; shared by every worker through Redis when REDIS_URL is set) and a per-chat gap
(kept in the outbox, so across workers too); a 429 pauses everything for its
``retry_after``; 5xx and network errors are retried with exponential backoff; a 403 or a
vanished chat deactivates the chat and drops its queue; a group that became a supergroup is
followed to its new id.
"""

from __future__ import annotations

import asyncio
import collections
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
from bot.i18n import create_i18n, speaking
from bot.metrics import ALERTS_SENT
from bot.storage import BotStore, OutboxRow
from bot.storage.base import new_owner

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
STORE_RETRY_SECONDS = 3.0  # between tries to read the outbox while the database fails


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
        pace: Pace | None = None,
        lease: float = 30.0,
        owner: str | None = None,
    ) -> None:
        """``pace``: the global send pace; default ``Pace(rate)``, this process's alone
        (`bot.shared_state.RedisPace` shares one across workers). ``lease``: seconds a
        claim lasts unless renewed (ALERT_CLAIM_LEASE); ``owner``: this sender's name on
        its claims (default: host, pid and a random part)."""
        self.outbox = store.outbox
        self.chats = store.chats
        self.i18n = create_i18n()  # alerts are rendered in each chat's language
        self._languages: dict[int, str | None] = {}  # of the chats of claimed rows
        self.bot = bot
        self.chat_interval = chat_interval
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.store_retry = STORE_RETRY_SECONDS
        self.stats = SenderStats()
        self._pace = pace or Pace(rate)
        self._slots = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self.lease = lease
        self.owner = owner or new_owner()
        self._batch = max(4 * concurrency, 16)  # rows claimed at once
        self._queue: collections.deque[OutboxRow] = collections.deque()  # claimed, not started
        self._exhausted = False  # the last claim found fewer rows than it asked for
        self._to_mark: list[tuple[tuple[int, int], asyncio.Future[None]]] = []
        self._marking = False
        self._send_failed = False
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
        released = await self.outbox.release_expired()
        if released:
            log.warning("Re-queued %s alerts whose sender stopped before marking them", released)
        keeper = asyncio.create_task(self._keep_leases(), name="alerts-leases")
        try:
            await self._loop(until_empty)
        finally:
            keeper.cancel()
            if self._tasks:
                await asyncio.wait(self._tasks)
            if self._queue:  # claimed but never started: back to the queue at once
                await self.outbox.unclaim([row.id for row in self._queue], self.owner)
                self._queue.clear()

    async def _loop(self, until_empty: bool) -> None:
        """Claim and send until stopped. A database that fails (an outage, a restart) is
        logged once per outage and retried every few seconds: it never stops delivery."""
        failing = False
        while not self._stopping:
            try:
                if await self._round(until_empty):
                    return
            except Exception as error:
                if not failing:
                    log.warning("Alert delivery paused, the outbox cannot be read: %s", error)
                failing = True
                await self._sleep(self.store_retry)
                continue
            if failing:
                log.warning("Alert delivery resumed: the outbox can be read again")
                failing = False

    async def _round(self, until_empty: bool) -> bool:
        """Claim what is due, start one send or wait; True when the loop should end."""
        if self._send_failed:  # the database may be gone: queued rows return by their lease
            self._send_failed = False
            self._queue.clear()
            await self.outbox.next_due_time()  # raises while the database is unreachable
        woken = self._wake.is_set()
        self._wake.clear()
        if len(self._queue) < self._concurrency and (
            woken or not self._exhausted or not self._queue
        ):
            wanted = self._batch - len(self._queue)
            rows = await self.outbox.claim(wanted, owner=self.owner, lease=self.lease)
            self._exhausted = len(rows) < wanted
            if rows:  # one query for the batch, not one per message
                self._languages.update(await self.chats.languages(r.chat_id for r in rows))
            self._queue.extend(rows)
        if self._queue:
            await self._slots.acquire()
            if self._stopping:
                self._slots.release()
                return True
            await self._pace.wait()
            task = asyncio.create_task(self._deliver(self._queue.popleft()))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return False
        next_due = await self.outbox.next_due_time()
        if until_empty and not self._tasks and next_due is None:
            return True
        wait = 1.0 if next_due is None else min(1.0, next_due - self.outbox.now())
        if wait <= 0 and not self._tasks:  # due yet not claimable: a lapsed lease?
            await self.outbox.release_expired()
        await self._sleep(max(wait, 0.02))
        return False

    async def _keep_leases(self) -> None:
        """Renew the claims of rows this sender holds while it runs."""
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                if self._queue or self._tasks:
                    await self.outbox.renew(self.owner, self.lease)
            except Exception:
                log.exception("Renewing the outbox claims failed; trying again")

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _deliver(self, row: OutboxRow) -> None:
        try:
            await self._send(row)
        except Exception:  # a bug must not stop the queue; the row stays for a retry
            log.exception("Unexpected error sending outbox row %s", row.id)
            self._send_failed = True  # stop sending what is queued until the loop has looked
            # the database may be what failed: then the row's lease brings it back
            with contextlib.suppress(Exception):
                await self.outbox.retry_later(
                    row.id, self.outbox.now() + 60, "internal error", counts=True
                )
        finally:
            self._slots.release()
            self.wake()

    async def _mark_sent(self, row_id: int, message_id: int) -> None:
        """Mark a row sent; requests that finish while a mark is being written are marked
        together in the next transaction."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._to_mark.append(((row_id, message_id), done))
        if not self._marking:
            self._marking = True
            try:
                while self._to_mark:
                    batch, self._to_mark = self._to_mark, []
                    try:
                        await self.outbox.mark_sent_many(
                            [sent for sent, _ in batch], chat_gap=self.chat_interval
                        )
                    except Exception as error:
                        for _, waiter in batch:
                            waiter.set_exception(error)
                    else:
                        for _, waiter in batch:
                            waiter.set_result(None)
            finally:
                self._marking = False
        await done

    async def _send(self, row: OutboxRow) -> None:
        with speaking(self.i18n, self._languages.pop(row.chat_id, None)):
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
            ALERTS_SENT.labels(result="rate_limited").inc()
            self._pace.pause(error.retry_after)
            await self.outbox.retry_later(
                row.id, self.outbox.now() + error.retry_after, error.message, counts=False
            )
        except TelegramMigrateToChat as error:
            self.stats.migrated += 1
            ALERTS_SENT.labels(result="migrated").inc()
            log.info("Chat %s became %s; following it", row.chat_id, error.migrate_to_chat_id)
            await self.chats.migrate(row.chat_id, error.migrate_to_chat_id)
        except TelegramForbiddenError as error:
            await self._deactivate(row, "blocked", error.message)
        except TelegramBadRequest as error:
            if any(reason in error.message.lower() for reason in _GONE):
                await self._deactivate(row, "gone", error.message)
            else:  # the request itself is wrong: retrying cannot help
                self.stats.failed += 1
                ALERTS_SENT.labels(result="failed").inc()
                self.stats.errors.append(error.message)
                log.error("Alert %s to chat %s refused: %s", row.id, row.chat_id, error.message)
                await self.outbox.mark_failed(row.id, error.message)
        except (TelegramServerError, TelegramNetworkError, TelegramNotFound) as error:
            await self._transient(row, str(error))
        else:
            await self._mark_sent(row.id, message.message_id)
            self.stats.sent += 1
            ALERTS_SENT.labels(result="sent").inc()

    async def _transient(self, row: OutboxRow, reason: str) -> None:
        attempts = row.attempts  # this one included: the claim counted it
        if attempts >= self.max_attempts:
            self.stats.failed += 1
            ALERTS_SENT.labels(result="failed").inc()
            log.error("Giving up on alert %s after %s attempts: %s", row.id, attempts, reason)
            await self.outbox.mark_failed(row.id, reason)
            return
        self.stats.retried += 1
        ALERTS_SENT.labels(result="retried").inc()
        delay = min(self.backoff * 2 ** (attempts - 1), 300.0)
        await self.outbox.retry_later(row.id, self.outbox.now() + delay, reason, counts=True)

    async def _deactivate(self, row: OutboxRow, status: str, reason: str) -> None:
        log.info("Chat %s deactivated (%s): %s", row.chat_id, status, reason)
        await self.chats.deactivate(row.chat_id, status, reason)
        self.stats.deactivated += 1
        ALERTS_SENT.labels(result="deactivated").inc()
