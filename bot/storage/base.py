"""What every repository shares: the database, its clock, dialect-aware INSERTs."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

from bot.storage.database import Database

__all__ = ["Repository", "chunks", "insert", "new_owner"]

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


def chunks(items: Iterable[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most ``size`` items (bounded IN lists)."""
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def new_owner() -> str:
    """A name for one worker's claims (outbox rows, feeds, jobs): host, process id and a
    random part, so a restarted process that got the same pid is another worker."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
