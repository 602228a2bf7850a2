"""Feeds: the polled URLs with their schedule, conditional-GET validators and health, and
the entries each feed has already shown."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from typing import Any

from sqlalchemy import delete, select, update

from bot.storage.base import Repository, chunks, insert
from bot.storage.rows import FeedRow
from bot.storage.schema import feed_entries, feeds

__all__ = ["FEED_COLUMNS", "FeedRepository"]

FEED_COLUMNS = tuple(feeds.c[field.name] for field in fields(FeedRow))


class FeedRepository(Repository):
    async def add(self, url: str, *, preset: bool = False) -> tuple[FeedRow, bool]:
        """(feed, created); an existing paused feed is resumed."""
        async with self.db.write() as conn:
            inserted = await conn.execute(
                insert(self.db, feeds)
                .values(url=url, preset=preset, created_at=self.now())
                .on_conflict_do_nothing(index_elements=[feeds.c.url])
                .returning(feeds.c.id)
            )
            created = inserted.first() is not None
            if not created:
                await conn.execute(
                    update(feeds)
                    .where(feeds.c.url == url)
                    .values(paused=False, failures=0, next_poll_at=0)
                )
        feed = await self.by_url(url)
        assert feed is not None
        return feed, created

    async def remove(self, url: str) -> bool:
        return await self.db.write_one(delete(feeds).where(feeds.c.url == url)) == 1

    async def by_url(self, url: str) -> FeedRow | None:
        rows = await self.db.rows(select(*FEED_COLUMNS).where(feeds.c.url == url))
        return FeedRow(*rows[0]) if rows else None

    async def get(self, feed_id: int) -> FeedRow | None:
        rows = await self.db.rows(select(*FEED_COLUMNS).where(feeds.c.id == feed_id))
        return FeedRow(*rows[0]) if rows else None

    async def all(self) -> list[FeedRow]:
        return [FeedRow(*r) for r in await self.db.rows(select(*FEED_COLUMNS).order_by(feeds.c.id))]

    async def due(self, now: float) -> list[FeedRow]:
        """Unpaused feeds whose next poll time has come, the most overdue first."""
        statement = (
            select(*FEED_COLUMNS)
            .where(feeds.c.paused.is_(False), feeds.c.next_poll_at <= now)
            .order_by(feeds.c.next_poll_at)
        )
        return [FeedRow(*r) for r in await self.db.rows(statement)]

    async def update(self, feed_id: int, **changes: Any) -> None:
        unknown = set(changes) - set(feeds.c.keys())
        if unknown:
            raise ValueError(f"unknown feed columns: {sorted(unknown)}")
        await self.db.write_one(update(feeds).where(feeds.c.id == feed_id).values(**changes))

    async def seen_entries(self, feed_id: int, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` this feed has shown before."""
        seen: set[str] = set()
        async with self.db.read() as conn:
            for chunk in chunks(keys):
                rows = await conn.execute(
                    select(feed_entries.c.entry_key).where(
                        feed_entries.c.feed_id == feed_id, feed_entries.c.entry_key.in_(chunk)
                    )
                )
                seen.update(rows.scalars())
        return seen
