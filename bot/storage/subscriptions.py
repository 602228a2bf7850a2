"""Subscriptions: a chat (thread) wants every new article, a topic, an outlet or both."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import delete, distinct, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.base import Repository, insert
from bot.storage.rows import Subscription
from bot.storage.schema import chats, subscriptions

__all__ = ["SubscriptionLimitError", "SubscriptionRepository"]

_COLUMNS = (
    subscriptions.c.id,
    subscriptions.c.chat_id,
    subscriptions.c.thread_id,
    subscriptions.c.topic,
    subscriptions.c.outlet,
    subscriptions.c.vector,
    subscriptions.c.muted,
)


class SubscriptionLimitError(Exception):
    """The chat already has as many subscriptions as allowed: remove one first."""


def _subscription(r: Any) -> Subscription:
    vector = None if r[5] is None else np.frombuffer(r[5], dtype=np.float32)
    return Subscription(r[0], r[1], r[2], r[3], r[4], vector, bool(r[6]))


def _same(chat_id: int, thread_id: int, topic: str, outlet: str) -> Any:
    """The subscription these words make (topic and outlet compared without case)."""
    return (
        (subscriptions.c.chat_id == chat_id)
        & (subscriptions.c.thread_id == thread_id)
        & (func.lower(subscriptions.c.topic) == func.lower(topic))
        & (func.lower(subscriptions.c.outlet) == func.lower(outlet))
    )


class SubscriptionRepository(Repository):
    async def subscribe(
        self,
        chat_id: int,
        thread_id: int,
        topic: str,
        outlet: str,
        vector: np.ndarray | None,
        created_by: int | None,
        limit: int | None = None,
    ) -> tuple[Subscription, bool]:
        """(subscription, created); subscribing again to a muted one un-mutes it. A new one
        beyond ``limit`` subscriptions of the chat raises `SubscriptionLimitError`."""
        same = _same(chat_id, thread_id, topic, outlet)
        async with self.db.write() as conn:
            if limit is not None:
                await _check_limit(conn, chat_id, same, limit)
            inserted = await conn.execute(
                insert(self.db, subscriptions)
                .values(
                    chat_id=chat_id,
                    thread_id=thread_id,
                    topic=topic,
                    outlet=outlet,
                    vector=None if vector is None else np.asarray(vector, np.float32).tobytes(),
                    created_by=created_by,
                    created_at=self.now(),
                )
                .on_conflict_do_nothing()
                .returning(subscriptions.c.id)
            )
            created = inserted.first() is not None
            sub_id, muted = (
                await conn.execute(select(subscriptions.c.id, subscriptions.c.muted).where(same))
            ).one()
            if muted:
                await conn.execute(
                    update(subscriptions).where(subscriptions.c.id == sub_id).values(muted=False)
                )
                created = True
        sub = await self.get(sub_id)
        assert sub is not None
        return sub, created

    async def get(self, sub_id: int) -> Subscription | None:
        rows = await self.db.rows(select(*_COLUMNS).where(subscriptions.c.id == sub_id))
        return _subscription(rows[0]) if rows else None

    async def of_chat(self, chat_id: int) -> list[Subscription]:
        """A chat's subscriptions, muted ones included, oldest first."""
        statement = (
            select(*_COLUMNS).where(subscriptions.c.chat_id == chat_id).order_by(subscriptions.c.id)
        )
        return [_subscription(r) for r in await self.db.rows(statement)]

    async def active(self) -> list[Subscription]:
        """Every active chat's unmuted subscriptions (what a new article is matched with)."""
        statement = (
            select(*_COLUMNS)
            .join(chats, chats.c.chat_id == subscriptions.c.chat_id)
            .where(subscriptions.c.muted.is_(False), chats.c.status == "active")
            .order_by(subscriptions.c.id)
        )
        return [_subscription(r) for r in await self.db.rows(statement)]

    async def unsubscribe(self, chat_id: int, sub_id: int | None = None) -> int:
        """Remove one subscription of a chat, or all of them; returns how many."""
        statement = delete(subscriptions).where(subscriptions.c.chat_id == chat_id)
        if sub_id is not None:
            statement = statement.where(subscriptions.c.id == sub_id)
        return await self.db.write_one(statement)

    async def mute(self, chat_id: int, sub_id: int) -> Subscription | None:
        """Mute one of the chat's subscriptions; None if the chat has no such one."""
        await self.db.write_one(
            update(subscriptions)
            .where(subscriptions.c.chat_id == chat_id, subscriptions.c.id == sub_id)
            .values(muted=True)
        )
        sub = await self.get(sub_id)
        return sub if sub is not None and sub.chat_id == chat_id else None

    async def subscriber_count(self) -> int:
        """Active chats subscribed to something."""
        count = await self.db.scalar(
            select(func.count(distinct(subscriptions.c.chat_id)))
            .select_from(subscriptions.join(chats, chats.c.chat_id == subscriptions.c.chat_id))
            .where(chats.c.status == "active")
        )
        return int(count or 0)


async def _check_limit(conn: AsyncConnection, chat_id: int, same: Any, limit: int) -> None:
    """Refuse a new subscription beyond ``limit`` (the chat's row is locked on PostgreSQL,
    so two concurrent /subscribe cannot both take the last place)."""
    await conn.execute(select(chats.c.chat_id).where(chats.c.chat_id == chat_id).with_for_update())
    if (await conn.execute(select(subscriptions.c.id).where(same))).first() is not None:
        return
    count = (
        await conn.execute(select(func.count()).where(subscriptions.c.chat_id == chat_id))
    ).scalar_one()
    if count >= limit:
        raise SubscriptionLimitError(f"chat {chat_id} has {count} subscriptions")
