"""The outbox: every alert, digest and notice is a row before it is sent.

A row per (chat, thread, article) is written before anything is sent (a unique index
refuses a second one). A worker claims due rows in batches (one ``UPDATE … RETURNING``:
``sending``, ``claimed_by`` it, ``claimed_until`` a lease it renews while it lives) and
marks them ``sent`` (in batches too) right after Telegram accepts them. Any number of
workers share one outbox:

- a row goes to one worker only: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the database's
  write lock on SQLite;
- a chat is sent one row at a time and nothing within ALERT_CHAT_INTERVAL of the last: a
  claimed row holds its chat until its lease ends, a sent row until its gap ends;
- a worker that dies stops renewing: its rows go back to the queue when the lease passes
  (``release_expired``). Only a message Telegram accepted in the instant before it was
  marked can be sent twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.base import Repository, chunks, insert, picked_once
from bot.storage.chats import chat_prefs
from bot.storage.database import Database
from bot.storage.rows import ChatPrefs, Delivery, OutboxRow
from bot.storage.schema import outbox

__all__ = ["OutboxRepository", "enqueue"]

_COLUMNS = tuple(outbox.c[field.name] for field in fields(OutboxRow))
_held = outbox.alias("held")  # another row of the same chat, holding it


def _row(r: Any) -> OutboxRow:
    return OutboxRow(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), *r[7:])


def _by_id(row: OutboxRow) -> int:
    return row.id


def _claimable(now: float) -> ColumnElement[bool]:
    """Pending and due."""
    return (outbox.c.state == "pending") & (outbox.c.not_before <= now)


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

    async def enqueue_notice(
        self, chat_id: int, text: str, values: dict[str, str | int] | None = None
    ) -> None:
        """A plain message (e.g. to admins) sent through the outbox like alerts; with
        ``values``, ``text`` is a catalogue text translated when it is sent."""
        now = self.now()
        payload: dict[str, object] = {"text": text} | ({"values": values} if values else {})
        await self.db.write_one(
            outbox.insert().values(
                chat_id=chat_id,
                kind="notice",
                payload=json.dumps(payload),
                state="pending",
                not_before=now,
                created_at=now,
            )
        )

    async def release_expired(self) -> int:
        """Rows whose sender stopped (its lease passed without renewal) go back to the
        queue; a row claimed before leases existed counts as expired."""
        now = self.now()
        lapsed = (outbox.c.claimed_until.is_(None)) | (outbox.c.claimed_until <= now)
        return await self.db.write_one(
            update(outbox)
            .where(outbox.c.state == "sending", lapsed)
            .values(state="pending", claimed_by=None, claimed_until=None)
        )

    def _due(self, now: float, limit: int) -> Select[Any]:
        """The ids of the oldest due row of each chat that nobody is sending to and whose
        gap has passed, oldest first (a chat with a long queue does not hold up others)."""
        first_of_chat = (
            select(func.min(outbox.c.id)).where(_claimable(now)).group_by(outbox.c.chat_id)
        )
        busy = (
            select(_held.c.id)
            .where(_held.c.chat_id == outbox.c.chat_id, _held.c.claimed_until > now)
            .exists()
        )
        return (
            select(outbox.c.id)
            # The row's own state again: PostgreSQL re-checks a row's own conditions (not
            # the subquery's) when another worker claimed it after this statement began
            .where(_claimable(now), outbox.c.id.in_(first_of_chat), ~busy)
            .order_by(outbox.c.id)
            .limit(limit)
        )

    async def due(self, now: float, limit: int) -> list[OutboxRow]:
        """What `claim` would take at ``now``, without taking it."""
        statement = select(*_COLUMNS).where(outbox.c.id.in_(self._due(now, limit)))
        return [_row(r) for r in await self.db.rows(statement.order_by(outbox.c.id))]

    async def claim(self, limit: int, *, owner: str, lease: float) -> list[OutboxRow]:
        """Take up to ``limit`` due rows (one per chat) for ``owner`` until ``lease``
        seconds from now, in one statement; each row goes to one worker only
        (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the write lock on SQLite)."""
        now = self.now()
        statement = (
            update(outbox)
            .where(outbox.c.id.in_(picked_once(self.db, self._due(now, limit))), _claimable(now))
            .values(
                state="sending",
                attempts=outbox.c.attempts + 1,
                claimed_by=owner,
                claimed_until=now + lease,
            )
            .returning(*_COLUMNS)
        )
        return sorted((_row(r) for r in await self.db.write_rows(statement)), key=_by_id)

    async def renew(self, owner: str, lease: float) -> int:
        """Extend the lease of every row ``owner`` is sending (it is alive)."""
        return await self.db.write_one(
            update(outbox)
            .where(outbox.c.state == "sending", outbox.c.claimed_by == owner)
            .values(claimed_until=self.now() + lease)
        )

    async def unclaim(self, row_ids: Sequence[int], owner: str) -> int:
        """``owner`` gives back rows it claimed but did not send (it is stopping)."""
        return await self.db.write_one(
            update(outbox)
            .where(
                outbox.c.id.in_(list(row_ids)),
                outbox.c.claimed_by == owner,
                outbox.c.state == "sending",
            )
            .values(state="pending", claimed_until=None, attempts=outbox.c.attempts - 1)
        )

    async def next_due_time(self) -> float | None:
        """When a row may next be claimed: the earliest pending row's time (or its chat's
        gap or claim, if later), or the end of a lease that may lapse."""
        busy_until = (
            select(func.max(_held.c.claimed_until))
            .where(_held.c.chat_id == outbox.c.chat_id)
            .scalar_subquery()
        )
        ready = case((busy_until > outbox.c.not_before, busy_until), else_=outbox.c.not_before)
        pending = await self.db.scalar(select(func.min(ready)).where(outbox.c.state == "pending"))
        lapse = await self.db.scalar(
            select(func.min(func.coalesce(outbox.c.claimed_until, 0.0))).where(
                outbox.c.state == "sending"
            )
        )
        times = [t for t in (pending, lapse) if t is not None]
        return min(times) if times else None

    async def mark_sent(
        self, row_id: int, message_id: int, *, chat_gap: float = 0.0, owner: str | None = None
    ) -> None:
        """Telegram accepted it; the chat gets nothing more for ``chat_gap`` seconds."""
        await self.mark_sent_many([(row_id, message_id)], chat_gap=chat_gap, owner=owner)

    async def mark_sent_many(
        self,
        sent: Sequence[tuple[int, int]],
        *,
        chat_gap: float = 0.0,
        owner: str | None = None,
    ) -> int:
        """Mark several (row id, message id) sent in one statement (one round trip); with
        ``owner``, only rows that are still its claim (returns how many were)."""
        if not sent:
            return 0
        now = self.now()
        message_ids = dict(sent)
        statement = update(outbox).where(outbox.c.id.in_(list(message_ids)))
        if owner is not None:
            statement = statement.where(outbox.c.claimed_by == owner)
        return await self.db.write_one(
            statement.values(
                state="sent",
                message_id=case(message_ids, value=outbox.c.id),
                sent_at=now,
                claimed_until=now + chat_gap,
            )
        )

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
            claimed_until=None,
        )

    async def mark_failed(self, row_id: int, error: str) -> None:
        await self._set(row_id, state="failed", last_error=error, claimed_until=None)

    async def _set(self, row_id: int, **values: Any) -> None:
        await self.db.write_one(update(outbox).where(outbox.c.id == row_id).values(**values))

    async def roll_digests(self, now: float, max_items: int) -> int:
        """Turn each chat's held alerts whose digest time has come into one digest row per
        (chat, thread); returns digests created. Safe to run in several workers at once:
        each held row is flipped to ``digested`` by exactly one of them (the UPDATE that
        takes it returns it), and only the rows a worker took go into its digest."""
        held = (outbox.c.state == "held") & (outbox.c.not_before <= now)
        groups = await self.db.rows(
            select(outbox.c.chat_id, outbox.c.thread_id).where(held).distinct()
        )
        created = 0
        for chat_id, thread_id in groups:
            async with self.db.write() as conn:
                taken = (
                    await conn.execute(
                        update(outbox)
                        .where(held, outbox.c.chat_id == chat_id, outbox.c.thread_id == thread_id)
                        .values(state="digested")
                        .returning(outbox.c.id, outbox.c.payload)
                    )
                ).all()
                if not taken:  # another worker rolled it
                    continue
                items = [json.loads(payload) for _, payload in sorted(taken)]
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
