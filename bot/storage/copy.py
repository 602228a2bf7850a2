"""Copying the bot's data from one store to another (``python -m bot migrate --to``).

Rows keep their ids; a row the target already has (same key) is left alone, so a second
run copies nothing. A feed the target knows under another id keeps the target's id, and
its entries and stories follow it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.base import insert
from bot.storage.schema import (
    ask_prompts,
    chats,
    feed_entries,
    feeds,
    outbox,
    stories,
    subscriptions,
)

if TYPE_CHECKING:
    from bot.storage.store import BotStore

__all__ = ["TABLES", "copy_bot_data"]

TABLES = (chats, feeds, feed_entries, stories, subscriptions, outbox, ask_prompts)
SERIAL = (feeds, subscriptions, outbox)  # ids from a sequence on PostgreSQL
BATCH = 1000


async def copy_bot_data(source: BotStore, target: BotStore) -> dict[str, int]:
    """Copy every row of ``source`` that ``target`` lacks, in one transaction on the
    target; returns the rows copied per table (all zero the second time)."""
    await source.open()
    await target.open()
    copied: dict[str, int] = {}
    async with target.database.write() as dst:
        feed_ids: dict[int, int] = {}
        for table in TABLES:
            copied[table.name] = 0
            async for rows in _pages(source, table):
                if table in (feed_entries, stories):
                    rows = [_remap(r, feed_ids) for r in rows]
                if not rows:
                    continue
                key = list(table.primary_key.columns)
                statement = insert(target.database, table).on_conflict_do_nothing().returning(*key)
                copied[table.name] += len((await dst.execute(statement, rows)).all())
            if table is feeds:
                feed_ids = await _feed_ids(source, dst)
        if target.database.schema is not None:
            for table in SERIAL:
                name = f'"{target.database.schema}".{table.name}'
                await dst.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"coalesce((SELECT max(id) FROM {name}), 0) + 1, false)"
                    )
                )
    return copied


async def _pages(store: BotStore, table: Table) -> AsyncIterator[list[dict[str, Any]]]:
    """The table's rows as dicts, BATCH at a time, in key order."""
    offset = 0
    order = list(table.primary_key.columns)
    while True:
        async with store.database.read() as conn:
            result = await conn.execute(select(table).order_by(*order).limit(BATCH).offset(offset))
            rows = [dict(r) for r in result.mappings()]
        if not rows:
            return
        yield rows
        offset += len(rows)


async def _feed_ids(source: BotStore, dst: AsyncConnection) -> dict[int, int]:
    """Source feed id -> target feed id, for feeds whose URL the target has another id for."""
    theirs = {url: id_ for id_, url in (await dst.execute(select(feeds.c.id, feeds.c.url))).all()}
    ours = await source.database.rows(select(feeds.c.id, feeds.c.url))
    return {id_: theirs[url] for id_, url in ours if url in theirs and theirs[url] != id_}


def _remap(row: dict[str, Any], feed_ids: dict[int, int]) -> dict[str, Any]:
    feed_id = row.get("feed_id")
    if feed_id in feed_ids:
        return {**row, "feed_id": feed_ids[feed_id]}
    return row
