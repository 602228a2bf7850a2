"""The outbox: every alert, digest and notice is a row before it is sent.

A row per (chat, thread, article) is written before anything is sent (a unique index
refuses a second one), claimed as ``sending`` just before the request and marked ``sent``
right after Telegram accepts it. After a crash, ``recover()`` turns ``sending`` rows back
into ``pending``: only a message Telegram accepted in the instant before it was marked can
be sent twice. A claim is exclusive: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (several
workers), a conditional UPDATE on SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.base import Repository, chunks, insert
from bot.storage.chats import chat_prefs
from bot.storage.database import Database
from bot.storage.rows import ChatPrefs, Delivery, OutboxRow
from bot.storage.schema import outbox

__all__ = ["OutboxRepository", "enqueue"]

_COLUMNS = tuple(outbox.c[field.name] for field in fields(OutboxRow))


def _row(r: Any) -> OutboxRow:
    return OutboxRow(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), *r[7:])


async def enqueue(
    db: Database, conn: AsyncConnection, deliveries: Sequence[Delivery], now: float
) -> int:
    """Insert alerts (once per chat, thread and article; none to inactive chats), held or
    delayed as each chat's preferences say; returns how many are new."""
    if not deliveries:
        return 0
    prefs: dict[int, ChatPrefs] = {}
    for chunk in chunks({d.chat_id for d in deliveries}):
        prefs.update(await chat_prefs(conn, list(chunk)))
    rows = []
    for d in deliveries:
        chat = prefs.get(d.chat_id) or ChatPrefs(d.chat_id)
        if chat.status != "active":
            continue
        state, not_before = chat.deliver_at(now)
        rows.append(
            {
                "chat_id": d.chat_id,
                "thread_id": d.thread_id,
                "kind": "alert",
                "article_id": d.article_id,
                "subscription_id": d.subscription_id,
                "payload": json.dumps(d.payload),
                "state": state,
                "not_before": not_before,
                "created_at": now,
            }
        )
    if not rows:
        return 0
    statement = insert(db, outbox).on_conflict_do_nothing().returning(outbox.c.id)
    return len((await conn.execute(statement, rows)).all())


class OutboxRepository(Repository):
    async def enqueue(self, deliveries: Sequence[Delivery]) -> int:
        """Record alerts (once per chat, thread and article); returns how many are new."""
        async with self.db.write() as conn:
            return await enqueue(self.db, conn, deliveries, self.now())

    async def enqueue_notice(self, chat_id: int, text: str) -> None:
        """A plain message (e.g. to admins) sent through the outbox like alerts."""
        now = self.now()
        await self.db.write_one(
            outbox.insert().values(
                chat_id=chat_id,
                kind="notice",
                payload=json.dumps({"text": text}),
                state="pending",
                not_before=now,
                created_at=now,
            )
        )

    async def recover(self) -> int:
        """After a restart: alerts claimed but not marked sent go back to the queue."""
        return await self.db.write_one(
            update(outbox).where(outbox.c.state == "sending").values(state="pending")
        )

    async def due(self, now: float, limit: int) -> list[OutboxRow]:
        """The oldest pending row of each chat whose time has come, oldest first (a chat
        with a long queue does not hold up the others)."""
        first_of_chat = (
            select(func.min(outbox.c.id))
            .where(outbox.c.state == "pending", outbox.c.not_before <= now)
            .group_by(outbox.c.chat_id)
        )
        statement = (
            select(*_COLUMNS)
            .where(outbox.c.id.in_(first_of_chat))
            .order_by(outbox.c.id)
            .limit(limit)
        )
        return [_row(r) for r in await self.db.rows(statement)]

    async def next_due_time(self) -> float | None:
        return await self.db.scalar(
            select(func.min(outbox.c.not_before)).where(outbox.c.state == "pending")
        )

    async def claim(self, row_id: int) -> bool:
        """Mark a row as being sent (just before the request); False if already taken."""
        if self.db.dialect == "postgresql":
            which = (
                select(outbox.c.id)
                .where(outbox.c.id == row_id, outbox.c.state == "pending")
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
            condition = outbox.c.id == which
        else:
            condition = (outbox.c.id == row_id) & (outbox.c.state == "pending")
        claimed = await self.db.write_one(
            update(outbox).where(condition).values(state="sending", attempts=outbox.c.attempts + 1)
        )
        return claimed == 1

    async def mark_sent(self, row_id: int, message_id: int) -> None:
        await self._set(row_id, state="sent", message_id=message_id, sent_at=self.now())

    async def retry_later(
        self, row_id: int, not_before: float, error: str, *, counts: bool
    ) -> None:
        """Back to the queue; ``counts`` False (429) gives the attempt back."""
        await self._set(
            row_id,
            state="pending",
            not_before=not_before,
            last_error=error,
            attempts=outbox.c.attempts - (0 if counts else 1),
        )

    async def mark_failed(self, row_id: int, error: str) -> None:
        await self._set(row_id, state="failed", last_error=error)

    async def _set(self, row_id: int, **values: Any) -> None:
        await self.db.write_one(update(outbox).where(outbox.c.id == row_id).values(**values))

    async def roll_digests(self, now: float, max_items: int) -> int:
        """Turn each chat's held alerts whose digest time has come into one digest row per
        (chat, thread) in the same transaction; returns digests created."""
        held = (outbox.c.state == "held") & (outbox.c.not_before <= now)
        created = 0
        async with self.db.write() as conn:
            groups = await conn.execute(
                select(outbox.c.chat_id, outbox.c.thread_id).where(held).distinct()
            )
            for chat_id, thread_id in groups.all():
                rows = (
                    await conn.execute(
                        select(outbox.c.id, outbox.c.payload)
                        .where(held, outbox.c.chat_id == chat_id, outbox.c.thread_id == thread_id)
                        .order_by(outbox.c.id)
                        .with_for_update(skip_locked=True)  # another worker's digest: skipped
                    )
                ).all()
                if not rows:
                    continue
                items = [json.loads(r.payload) for r in rows]
                payload = {"items": items[:max_items], "more": max(0, len(items) - max_items)}
                await conn.execute(
                    outbox.insert().values(
                        chat_id=chat_id,
                        thread_id=thread_id,
                        kind="digest",
                        payload=json.dumps(payload),
                        state="pending",
                        not_before=now,
                        created_at=now,
                    )
                )
                await conn.execute(
                    update(outbox)
                    .where(outbox.c.id.in_([r.id for r in rows]))
                    .values(state="digested")
                )
                created += 1
        return created

    async def counts(self) -> dict[str, int]:
        """Rows per state."""
        rows = await self.db.rows(select(outbox.c.state, func.count()).group_by(outbox.c.state))
        return {state: n for state, n in rows}

    async def rows(self, chat_id: int | None = None) -> list[OutboxRow]:
        """Every outbox row, or a chat's (for tests and diagnostics)."""
        statement = select(*_COLUMNS).order_by(outbox.c.id)
        if chat_id is not None:
            statement = statement.where(outbox.c.chat_id == chat_id)
        return [_row(r) for r in await self.db.rows(statement)]
