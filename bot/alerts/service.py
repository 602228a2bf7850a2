"""The integration point of feeds, subscriptions and alerts.

alerts = AlertsService(AlertSettings(), index, admin_ids=settings.admin_ids)
dp["alerts"] = alerts
dp.include_routers(*bot.handlers.alerts.create_routers())  # before the catch-all
await alerts.start(bot)                      # database, poller, sender, digest scheduler
...
await alerts.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
from aiogram import Bot

from bot.alerts.sender import OutboxSender, Pace
from bot.alerts.settings import AlertSettings
from bot.feeds.fetch import Fetcher
from bot.feeds.poller import FeedPoller, PollReport
from bot.storage import BotStore, ChatPrefs, FeedRow, Subscription
from index import ArticleIndex
from index.fetch import FetchPolicy

__all__ = ["SUBSCRIPTIONS_PER_CHAT", "AlertsService", "SubscribeResult"]

log = logging.getLogger(__name__)
DIGEST_CHECK_SECONDS = 30.0
SUBSCRIPTIONS_PER_CHAT = 20  # keeps /subscriptions within one message and its buttons


@dataclass(frozen=True, slots=True)
class SubscribeResult:
    subscription: Subscription
    created: bool
    known_outlet: bool  # False: no article from that outlet yet (a typo?)


class AlertsService:
    """Feeds, subscriptions and the alert outbox, over the bot's own database."""

    def __init__(
        self,
        settings: AlertSettings,
        index: ArticleIndex,
        *,
        admin_ids: Collection[int] = (),
        store: BotStore | None = None,
        pace: Pace | None = None,
    ) -> None:
        """``pace``: the alert sender's global pace (default: ALERT_RATE in this process)."""
        self.settings = settings
        self.pace = pace
        self.index = index
        self.admin_ids = frozenset(admin_ids)
        self.store = store or BotStore.from_settings(settings.data_dir, settings.database_url)
        self.fetcher = Fetcher(FetchPolicy.from_settings(settings))
        self.poller = FeedPoller(
            self.store,
            index,
            self.fetcher,
            settings,
            on_alerts=self._wake_sender,
            notify_admins=self.notify_admins,
        )
        self.sender: OutboxSender | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._digest_wake = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, bot: Bot, *, poll_feeds: bool = True) -> None:
        """Open the database, seed the ``FEEDS`` presets and start the background tasks."""
        await self.store.open()
        for url in self.settings.feeds:
            await self.store.feeds.add(url, preset=True)
        self.sender = OutboxSender(
            self.store,
            bot,
            rate=self.settings.alert_rate,
            chat_interval=self.settings.alert_chat_interval,
            concurrency=self.settings.alert_concurrency,
            max_attempts=self.settings.alert_max_attempts,
            pace=self.pace,
            lease=self.settings.alert_claim_lease,
        )
        self._tasks = [
            asyncio.create_task(self.sender.run(), name="alerts-sender"),
            asyncio.create_task(self._digests(), name="alerts-digests"),
        ]
        if poll_feeds:
            self._tasks.append(asyncio.create_task(self.poller.run(), name="feeds-poller"))

    async def stop(self) -> None:
        """Stop polling, let alerts in flight finish, close the database."""
        self.poller.stop()
        if self.sender is not None:
            await self.sender.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.fetcher.close()
        await self.store.close()

    def _wake_sender(self) -> None:
        if self.sender is not None:
            self.sender.wake()

    async def _digests(self) -> None:
        while True:
            try:
                await self.roll_digests()
            except Exception:
                log.exception("Digest scheduling failed; trying again shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._digest_wake.wait(), DIGEST_CHECK_SECONDS)
            self._digest_wake.clear()

    async def roll_digests(self) -> int:
        """Turn held alerts whose digest hour has come into digest messages."""
        created = await self.store.outbox.roll_digests(
            self.store.clock(), self.settings.alert_digest_items
        )
        if created:
            self._wake_sender()
        return created

    # -- feeds ----------------------------------------------------------------------------

    async def feeds(self) -> list[FeedRow]:
        return await self.store.feeds.all()

    async def add_feed(self, url: str) -> tuple[FeedRow, bool, PollReport]:
        """Add (or resume) a feed and poll it at once (in this process, whatever its role;
        after the poll of a worker that got to it first, if one did); the poll says whether
        it works."""
        feed, created = await self.store.feeds.add(url)
        report = await self.poller.poll_one(feed.id)
        if report is None:  # removed meanwhile, or another worker's poll is stuck
            report = PollReport(url, "error", error="the feed is busy or gone")
        refreshed = await self.store.feeds.get(feed.id)
        self.poller.wake()
        return refreshed or feed, created, report

    async def remove_feed(self, url: str) -> bool:
        return await self.store.feeds.remove(url)

    async def poll_now(self) -> list[PollReport]:
        """Poll every feed that is due (tests and admins)."""
        return await self.poller.poll_due()

    async def notify_admins(self, text: str, values: dict[str, str | int] | None = None) -> None:
        """Queue a notice to every admin: ``text`` is a catalogue text (``N_``) whose
        ``{placeholders}`` ``values`` fill, translated into each admin's language when sent."""
        for admin_id in sorted(self.admin_ids):
            await self.store.outbox.enqueue_notice(admin_id, text, values)
        self._wake_sender()

    # -- chats and subscriptions ----------------------------------------------------------

    async def ensure_chat(self, chat_id: int, type_: str, title: str | None) -> None:
        await self.store.chats.ensure(chat_id, type_, title)

    async def subscribe(
        self, chat_id: int, thread_id: int, topic: str, outlet: str, user_id: int | None
    ) -> SubscribeResult:
        """Subscribe a chat (thread) to a topic, an outlet, both, or everything; a new one
        beyond SUBSCRIPTIONS_PER_CHAT raises `SubscriptionLimitError`."""
        vector = None
        if topic:
            encode = self.index.core.embedder.encode
            vector = (await asyncio.to_thread(encode, [topic]))[0].astype(np.float32)
        known = True
        if outlet:
            sources = await self.index.sources()
            names = {name.casefold(): name for name, _ in sources}
            known = outlet.casefold() in names
            outlet = names.get(outlet.casefold(), outlet)
        sub, created = await self.store.subscriptions.subscribe(
            chat_id, thread_id, topic, outlet, vector, user_id, SUBSCRIPTIONS_PER_CHAT
        )
        return SubscribeResult(sub, created, known)

    async def subscriptions(self, chat_id: int) -> list[Subscription]:
        return await self.store.subscriptions.of_chat(chat_id)

    async def unsubscribe(self, chat_id: int, sub_id: int | None = None) -> int:
        return await self.store.subscriptions.unsubscribe(chat_id, sub_id)

    async def mute(self, chat_id: int, sub_id: int) -> Subscription | None:
        return await self.store.subscriptions.mute(chat_id, sub_id)

    async def prefs(self, chat_id: int) -> ChatPrefs:
        return await self.store.chats.get(chat_id) or ChatPrefs(chat_id)

    async def set_prefs(self, chat_id: int, **changes: object) -> ChatPrefs:
        return await self.store.chats.set_prefs(chat_id, **changes)

    async def count_subscribers(self) -> int:
        """Chats subscribed to something (for /stats)."""
        return await self.store.subscriptions.subscriber_count()

    async def chat_blocked(self, chat_id: int) -> None:
        """Another feature got a 403 for this chat: stop alerting it."""
        await self.store.chats.deactivate(chat_id, "blocked", "403 elsewhere")

    async def ask_prompt(self, chat_id: int, message_id: int) -> str | None:
        return await self.store.prompts.article(chat_id, message_id)

    async def add_ask_prompt(self, chat_id: int, message_id: int, article_id: str) -> None:
        await self.store.prompts.add(chat_id, message_id, article_id)
