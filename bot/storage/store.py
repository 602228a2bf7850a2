"""``BotStore``: the bot's repositories over one database, handed to whatever needs them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import URL

from bot.storage.chats import ChatRepository
from bot.storage.database import Database, database_url
from bot.storage.feeds import FeedRepository
from bot.storage.jobs import JobRepository
from bot.storage.outbox import OutboxRepository
from bot.storage.prompts import PromptRepository
from bot.storage.stories import StoryRepository
from bot.storage.subscriptions import SubscriptionRepository

__all__ = ["BotStore"]


class BotStore:
    """``store = BotStore.from_settings(settings)``; ``await store.open()`` connects and
    migrates (the first query does it too); ``await store.close()``."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.chats = ChatRepository(database)
        self.feeds = FeedRepository(database)
        self.stories = StoryRepository(database)
        self.subscriptions = SubscriptionRepository(database)
        self.outbox = OutboxRepository(database)
        self.prompts = PromptRepository(database)
        self.jobs = JobRepository(database)

    @classmethod
    def from_url(cls, url: URL | str) -> BotStore:
        return cls(Database(url))

    @classmethod
    def from_settings(cls, data_dir: Path, url: SecretStr | str | None) -> BotStore:
        """The store DATABASE_URL names, or ``data_dir/bot.sqlite3`` when it is unset;
        a malformed URL raises `StorageError`."""
        raw = url.get_secret_value() if isinstance(url, SecretStr) else url
        return cls(Database(database_url(data_dir, raw)))

    @property
    def clock(self) -> Callable[[], float]:
        """The time every repository stamps rows with (tests move it forward)."""
        return self.database.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self.database.clock = clock

    async def open(self) -> None:
        await self.database.open()

    async def close(self) -> None:
        await self.database.close()
