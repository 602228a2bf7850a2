"""What every repository shares: the database, its clock, dialect-aware INSERTs."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Select, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from bot.storage.database import Database

__all__ = ["Repository", "chunks", "insert", "new_owner", "picked_once"]

Insert = postgresql.Insert | sqlite.Insert


class Repository:
    """A repository over one concern's tables."""

    def __init__(self, database: Database) -> None:
        self.db = database

    def now(self) -> float:
        return self.db.clock()


def insert(db: Database, table: Table) -> Insert:
    """INSERT with ``on_conflict_do_nothing`` / ``on_conflict_do_update`` for the backend."""
    if db.dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def picked_once(db: Database, which: Select[Any]) -> Any:
    """The ids ``which`` selects, for a claim's ``UPDATE … WHERE id IN (…)``. On PostgreSQL
    they are locked ``FOR UPDATE SKIP LOCKED`` and picked once, in a MATERIALIZED CTE: as a
    plain subquery the planner may rescan it for each row (a nested-loop semi join), each
    rescan skipping the rows the statement has just claimed, so a claim of 16 outbox rows
    took every pending one. SQLite's write lock makes the plain subquery safe."""
    if db.dialect != "postgresql":
        return which.scalar_subquery()
    picked = which.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
    return select(picked.c.id)


def chunks(items: Iterable[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most ``size`` items (bounded IN lists)."""
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def new_owner() -> str:
    """A name for one worker's claims (outbox rows, feeds, jobs): host, process id and a
    random part, so a restarted process that got the same pid is another worker."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
