"""Chats: who receives alerts, how (instant or digest, quiet hours, time zone), and
what happens when a chat blocks the bot or becomes a supergroup."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import case, delete, exists, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.base import Repository, chunks, insert
from bot.storage.rows import ChatPrefs
from bot.storage.schema import chats, outbox, subscriptions

__all__ = ["PREFERENCES", "ChatRepository", "chat_prefs"]

PREFERENCES = frozenset({"mode", "digest_hour", "quiet_start", "quiet_end", "tz_minutes"})
QUEUED = ("held", "pending", "sending")
_PREFS = (
    chats.c.chat_id,
    chats.c.status,
    chats.c.mode,
    chats.c.digest_hour,
    chats.c.quiet_start,
    chats.c.quiet_end,
    chats.c.tz_minutes,
    chats.c.migrated_to,
)


async def chat_prefs(conn: AsyncConnection, chat_ids: list[int]) -> dict[int, ChatPrefs]:
    """The preferences of the chats that exist among ``chat_ids``."""
    rows = await conn.execute(select(*_PREFS).where(chats.c.chat_id.in_(chat_ids)))
    return {row[0]: ChatPrefs(*row) for row in rows}


class ChatRepository(Repository):
    async def ensure(self, chat_id: int, type_: str = "private", title: str | None = None) -> None:
        """Record a chat (re-activating it if it had blocked the bot and came back)."""
        now = self.now()
        statement = insert(self.db, chats).values(
            chat_id=chat_id, type=type_, title=title, created_at=now, updated_at=now
        )
        statement = statement.on_conflict_do_update(
            index_elements=[chats.c.chat_id],
            set_={
                "type": statement.excluded.type,
                "title": statement.excluded.title,
                "updated_at": statement.excluded.updated_at,
                "status": _reactivated(),
            },
        )
        await self.db.write_one(statement)

    async def get(self, chat_id: int) -> ChatPrefs | None:
        rows = await self.db.rows(select(*_PREFS).where(chats.c.chat_id == chat_id))
        return ChatPrefs(*rows[0]) if rows else None

    async def set_prefs(self, chat_id: int, **changes: Any) -> ChatPrefs:
        """Change delivery preferences (mode, digest_hour, quiet_start, quiet_end, tz_minutes)."""
        if not changes or set(changes) - PREFERENCES:
            raise ValueError(f"unknown preferences: {sorted(set(changes) - PREFERENCES)}")
        await self.db.write_one(
            update(chats).where(chats.c.chat_id == chat_id).values(**changes, updated_at=self.now())
        )
        prefs = await self.get(chat_id)
        assert prefs is not None, "ensure the chat first"
        return prefs

    async def language(self, chat_id: int) -> str | None:
        """The language chosen in the chat with /language, or None."""
        rows = await self.db.rows(select(chats.c.language).where(chats.c.chat_id == chat_id))
        return rows[0][0] if rows else None

    async def languages(self, chat_ids: Iterable[int]) -> dict[int, str | None]:
        """The language chosen in each of these chats (None: none chosen, or unknown)."""
        found: dict[int, str | None] = dict.fromkeys(chat_ids)
        async with self.db.read() as conn:
            for chunk in chunks(found):
                rows = await conn.execute(
                    select(chats.c.chat_id, chats.c.language).where(chats.c.chat_id.in_(chunk))
                )
                found.update((chat_id, language) for chat_id, language in rows)
        return found

    async def set_language(self, chat_id: int, language: str) -> None:
        """Remember the chat's language (recording the chat if it is new)."""
        now = self.now()
        statement = insert(self.db, chats).values(
            chat_id=chat_id, language=language, created_at=now, updated_at=now
        )
        statement = statement.on_conflict_do_update(
            index_elements=[chats.c.chat_id],
            set_={"language": language, "updated_at": now},
        )
        async with self.db.write() as conn:
            await conn.execute(statement)

    async def deactivate(self, chat_id: int, status: str, reason: str) -> int:
        """Stop sending to a chat (``blocked`` or ``gone``); returns alerts dropped."""
        async with self.db.write() as conn:
            await conn.execute(
                update(chats)
                .where(chats.c.chat_id == chat_id)
                .values(status=status, updated_at=self.now())
            )
            dropped = await conn.execute(
                update(outbox)
                .where(outbox.c.chat_id == chat_id, outbox.c.state.in_(QUEUED))
                .values(state="dropped", last_error=reason, claimed_until=None)
            )
            return dropped.rowcount

    async def migrate(self, old_id: int, new_id: int) -> None:
        """A group became a supergroup: move its settings, subscriptions and queued alerts
        (what the new chat already has stays as it is)."""
        now = self.now()
        copied = ["title", "mode", "digest_hour", "quiet_start", "quiet_end", "tz_minutes"]
        copied.append("language")
        settings = select(
            literal(new_id),
            literal("supergroup"),
            *[chats.c[name] for name in copied],
            literal(now),
            literal(now),
        ).where(chats.c.chat_id == old_id)
        async with self.db.write() as conn:
            await conn.execute(
                insert(self.db, chats)
                .from_select(["chat_id", "type", *copied, "created_at", "updated_at"], settings)
                .on_conflict_do_nothing(index_elements=[chats.c.chat_id])
            )
            await conn.execute(
                update(chats)
                .where(chats.c.chat_id == old_id)
                .values(status="migrated", migrated_to=new_id, updated_at=now)
            )
            await _move_subscriptions(conn, old_id, new_id)
            await _move_queue(conn, old_id, new_id)


def _reactivated() -> Any:
    return case((chats.c.status.in_(("blocked", "gone")), "active"), else_=chats.c.status)


async def _move_subscriptions(conn: AsyncConnection, old_id: int, new_id: int) -> None:
    other = subscriptions.alias("other")
    taken = exists().where(
        other.c.chat_id == new_id,
        other.c.thread_id == subscriptions.c.thread_id,
        func.lower(other.c.topic) == func.lower(subscriptions.c.topic),
        func.lower(other.c.outlet) == func.lower(subscriptions.c.outlet),
    )
    await conn.execute(
        update(subscriptions)
        .where(subscriptions.c.chat_id == old_id, ~taken)
        .values(chat_id=new_id)
    )
    await conn.execute(delete(subscriptions).where(subscriptions.c.chat_id == old_id))


async def _move_queue(conn: AsyncConnection, old_id: int, new_id: int) -> None:
    other = outbox.alias("other")
    taken = exists().where(
        other.c.chat_id == new_id,
        other.c.thread_id == outbox.c.thread_id,
        other.c.article_id == outbox.c.article_id,
    )
    await conn.execute(
        update(outbox)
        .where(outbox.c.chat_id == old_id, outbox.c.state.in_(QUEUED), ~taken)
        .values(
            chat_id=new_id,
            state=case((outbox.c.state == "sending", "pending"), else_=outbox.c.state),
            claimed_until=None,
        )
    )
    await conn.execute(
        update(outbox)
        .where(outbox.c.chat_id == old_id, outbox.c.state.in_(QUEUED))
        .values(state="dropped", last_error="chat migrated")
    )
