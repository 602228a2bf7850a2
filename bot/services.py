"""What handlers depend on, listed once. Each field reaches handlers through the dispatcher's
workflow data under its own name (a handler parameter ``index: ArticleIndex`` gets the index)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from aiogram.utils.i18n import I18n

from bot.alerts.service import AlertsService
from bot.i18n import ChatLanguages, MemoryLanguages, create_i18n
from bot.jobs import JobRunner
from bot.query_state import MemoryQueryStore, QueryStore
from bot.rate_limit import MemoryRateLimiter, RateLimiter
from bot.settings import BotSettings
from bot.shared_state import SharedState
from index import ArticleIndex

__all__ = ["BlockedChats", "BlockedHook", "Role", "Services", "SubscriberCount"]

log = logging.getLogger(__name__)

BlockedHook = Callable[[int], Awaitable[None]]
"""Called with a chat id when Telegram says the bot may no longer write there (403)."""
SubscriberCount = Callable[[], Awaitable[int]]
"""Returns how many chats are subscribed to something, for /stats."""
Role = Literal["all", "web", "worker"]
"""``all``: one process does everything; ``web``: answers updates only; ``worker``: feeds,
alert delivery, digests and jobs only."""


class BlockedChats:
    """The default ``on_blocked`` hook: log the chat and remember it for this process."""

    def __init__(self) -> None:
        self.chat_ids: set[int] = set()

    async def __call__(self, chat_id: int) -> None:
        if chat_id not in self.chat_ids:
            log.info("Chat %s blocked the bot or removed it; not writing there again", chat_id)
        self.chat_ids.add(chat_id)


@dataclass(eq=False)
class Services:
    """The bot's dependencies and its process-wide state."""

    settings: BotSettings
    index: ArticleIndex
    queries: QueryStore
    shared: SharedState | None = None  # Redis (REDIS_URL): state every replica sees
    on_blocked: BlockedHook = field(default_factory=BlockedChats)
    count_subscribers: SubscriberCount | None = None  # wired by the subscriptions feature
    alerts: AlertsService | None = None  # feeds, subscriptions and alert delivery
    languages: ChatLanguages = field(default_factory=MemoryLanguages)  # chosen by /language
    i18n: I18n = field(default_factory=create_i18n)  # the catalogues of bot/locales
    started_at: float = field(default_factory=time.monotonic)
    reindex_task: asyncio.Task[None] | None = None  # /reindex without ``jobs``: run here
    jobs: JobRunner | None = None  # /reindex as a job in the bot's database (with alerts)
    role: Role = "all"  # what this process does besides answering (``python -m bot ROLE``)
    background: set[asyncio.Task[Any]] = field(default_factory=set)

    @classmethod
    def create(
        cls,
        settings: BotSettings,
        index: ArticleIndex,
        *,
        shared: SharedState | None = None,
        **hooks: Any,
    ) -> Services:
        """Services with a query store sized by the settings: in Redis when REDIS_URL is set
        (``shared``, else a client made from the settings), else in this process."""
        shared = shared or SharedState.from_settings(settings)
        queries: QueryStore
        if shared is not None:
            queries = shared.queries(settings.query_ttl)
        else:
            queries = MemoryQueryStore(ttl=settings.query_ttl)
        return cls(settings, index, queries, shared, **hooks)

    def rate_limiter(self, scope: str, limit: int) -> RateLimiter:
        """``limit`` events per user per RATE_WINDOW: across replicas in Redis, else here."""
        if self.shared is not None:
            return self.shared.rate_limiter(scope, limit, self.settings.rate_window)
        return MemoryRateLimiter(limit, self.settings.rate_window)

    @property
    def uptime(self) -> float:
        """Seconds since the services were created."""
        return time.monotonic() - self.started_at

    @property
    def reindexing(self) -> bool:
        """A reindex started by this process (without ``jobs``) is running."""
        return self.reindex_task is not None and not self.reindex_task.done()

    async def reindex_active(self) -> bool:
        """A reindex is queued or running: anywhere (``jobs``), else in this process."""
        if self.jobs is not None:
            return await self.jobs.reindexing()
        return self.reindexing

    def spawn(self, coroutine: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        """Run background work, keeping a reference until it ends."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coroutine)
        task.set_name(name)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    def workflow_data(self) -> dict[str, Any]:
        """Each field under its own name, plus ``services`` itself."""
        data = {item.name: getattr(self, item.name) for item in fields(self)}
        return {**data, "services": self}
