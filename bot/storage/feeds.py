"""Feeds: the polled URLs with their schedule, conditional-GET validators and health, and
the entries each feed has already shown. A worker claims a feed before polling it (a lease),
so each feed is polled by one worker at a time however many there are."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import fields
from typing import Any

from sqlalchemy import ColumnElement, Select, case, delete, func, select, update

from bot.storage.base import Repository, chunks, insert, picked_once
from bot.storage.rows import FeedRow
from bot.storage.schema import feed_entries, feeds

__all__ = ["FEED_COLUMNS", "FeedRepository"]

FEED_COLUMNS = tuple(feeds.c[field.name] for field in fields(FeedRow))


def _free(now: float) -> ColumnElement[bool]:
    """Nobody is polling the feed (or their lease has passed)."""
    return feeds.c.claimed_until.is_(None) | (feeds.c.claimed_until <= now)


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

    async def claim_due(
        self, *, owner: str, lease: float, skip: Collection[int] = ()
    ) -> FeedRow | None:
        """Take the most overdue feed nobody is polling (not one of ``skip``) for ``owner``
        until ``lease`` seconds from now; None when no feed is due. Each feed goes to one
        worker at a time (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the write lock on
        SQLite); a worker that dies mid-poll lets it go when the lease passes."""
        now = self.now()
        which = (
            select(feeds.c.id)
            .where(feeds.c.paused.is_(False), feeds.c.next_poll_at <= now, _free(now))
            .order_by(feeds.c.next_poll_at)
            .limit(1)
        )
        if skip:
            which = which.where(feeds.c.id.not_in(list(skip)))
        return await self._claim(which, owner, lease, now)

    async def claim(self, feed_id: int, *, owner: str, lease: float) -> FeedRow | None:
        """Take one feed (due or not) unless another worker is polling it."""
        now = self.now()
        which = select(feeds.c.id).where(feeds.c.id == feed_id, _free(now))
        return await self._claim(which, owner, lease, now)

    async def _claim(
        self, which: Select[Any], owner: str, lease: float, now: float
    ) -> FeedRow | None:
        rows = await self.db.write_rows(
            update(feeds)
            .where(feeds.c.id.in_(picked_once(self.db, which)))
            .values(claimed_by=owner, claimed_until=now + lease)
            .returning(*FEED_COLUMNS)
        )
        return FeedRow(*rows[0]) if rows else None

    async def release(self, feed_id: int, owner: str) -> None:
        """``owner`` is done polling the feed."""
        await self.db.write_one(
            update(feeds)
            .where(feeds.c.id == feed_id, feeds.c.claimed_by == owner)
            .values(claimed_by=None, claimed_until=None)
        )

    async def renew(self, owner: str, lease: float) -> int:
        """Extend ``owner``'s claims (it is still polling)."""
        return await self.db.write_one(
            update(feeds)
            .where(feeds.c.claimed_by == owner, feeds.c.claimed_until.is_not(None))
            .values(claimed_until=self.now() + lease)
        )

    async def next_poll_time(self) -> float | None:
        """When an unpaused feed next falls due (or its poller's lease ends, if later)."""
        claimed = func.coalesce(feeds.c.claimed_until, 0.0)
        ready = case((claimed > feeds.c.next_poll_at, claimed), else_=feeds.c.next_poll_at)
        return await self.db.scalar(select(func.min(ready)).where(feeds.c.paused.is_(False)))

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
