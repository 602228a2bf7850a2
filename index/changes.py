"""The change log: how every process keeps the same passages in its vector index.

Each write to the article store appends one entry to the table ``changes`` in the same
transaction: the passage ids it added and removed (kind ``passages``), or, with the last
batch of re-embedded vectors, a ``reindex`` entry (every vector changed). Entries are
numbered (``seq``) in commit order, so a follower that reads the entries after the last
one it applied never skips one that committed late: on PostgreSQL a writer takes a
transaction-level advisory lock just before appending (held until its commit), on SQLite
writers are serialised by the database itself. On PostgreSQL the writer also sends
``NOTIFY newsbot_index_changes``, which wakes every follower at its commit.

A follower (``IndexCore.sync``) applies entries idempotently: removed ids are removed,
added ids are removed and added again with the vectors the passages table holds now
(skipped when the passage is gone: a later entry removed it). A ``reindex`` entry makes
it load every vector from the database into a new index and swap it in.

The log is pruned (``prune``: entries older than ``KEEP_DAYS``, and all but the newest
``KEEP_ENTRIES``; never the newest entry); ``meta.changes_pruned_to`` records the last
pruned number, and a follower behind it rebuilds its index from the stored vectors.
``meta.change_log`` names the log (a random id made with the table), so a saved index is
never caught up from another database's log.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, bindparam, delete, func, select, text, true

from index.schema import changes, meta

__all__ = [
    "CHANNEL",
    "KEEP_DAYS",
    "KEEP_ENTRIES",
    "Change",
    "ChangeLog",
    "net_effect",
]

CHANNEL = "newsbot_index_changes"  # NOTIFY channel (PostgreSQL)
KEEP_DAYS = 7
KEEP_ENTRIES = 100_000
PASSAGES = "passages"
REINDEX = "reindex"
_LOCK = "newsbot_index.changes"  # advisory lock key (hashed), taken by every appender
_PRUNE_LOCK = "newsbot_index.changes.prune"  # taken by a pruner: one at a time


@dataclass(frozen=True, slots=True)
class Change:
    """One entry: the passage ids a write added and removed, or a reindex."""

    seq: int
    kind: str
    added: list[int]
    removed: list[int]

    @property
    def reindex(self) -> bool:
        return self.kind == REINDEX


class ChangeLog:
    """The ``changes`` table: appended to inside the store's transactions, read by followers."""

    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgresql"

    def append(
        self,
        db: Connection,
        added: Iterable[int] = (),
        removed: Iterable[int] = (),
        *,
        kind: str = PASSAGES,
    ) -> int:
        """Append an entry in ``db``'s transaction (as its last statement: on PostgreSQL the
        lock taken here serialises appenders until they commit); returns its number."""
        if self.postgres:
            db.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": _LOCK})
        seq = db.execute(
            changes.insert()
            .values(
                kind=kind,
                added=json.dumps([int(i) for i in added]),
                removed=json.dumps([int(i) for i in removed]),
                created_at=_now(),
            )
            .returning(changes.c.seq)
        ).scalar_one()
        if self.postgres:
            db.execute(
                text("SELECT pg_notify(:channel, :seq)"), {"channel": CHANNEL, "seq": str(seq)}
            )
        return int(seq)

    def after(self, db: Connection, seq: int, limit: int) -> tuple[list[Change], int]:
        """(The first ``limit`` entries numbered above ``seq``, in order; the newest pruned
        entry), in one statement: every process runs it every few seconds."""
        rows = db.execute(_AFTER, {"seq": seq, "limit": limit}).all()
        entries = [Change(int(s), k, json.loads(a), json.loads(r)) for _, s, k, a, r in rows if s]
        return entries, int(rows[0][0] or 0)

    def pending(self, db: Connection, seq: int) -> int:
        """How many entries are numbered above ``seq``."""
        return int(db.execute(select(func.count()).where(changes.c.seq > seq)).scalar_one())

    def head(self, db: Connection) -> int:
        """The newest entry's number (0: none yet)."""
        return int(db.execute(select(func.coalesce(func.max(changes.c.seq), 0))).scalar_one())

    def pruned_to(self, db: Connection) -> int:
        """The newest pruned entry's number: a follower behind it cannot catch up by replay."""
        value = db.execute(select(meta.c.value).where(meta.c.key == "changes_pruned_to")).scalar()
        return int(value or 0)

    def log_id(self, db: Connection) -> str | None:
        return db.execute(select(meta.c.value).where(meta.c.key == "change_log")).scalar()

    def prune(
        self,
        db: Connection,
        *,
        older_than: timedelta = timedelta(days=KEEP_DAYS),
        keep: int = KEEP_ENTRIES,
    ) -> int:
        """Delete the entries older than ``older_than`` and all but the newest ``keep``
        (the newest entry always stays); returns how many were deleted. Appenders go on
        meanwhile: an entry not yet committed is numbered above every one seen here."""
        if (
            self.postgres
            and not db.execute(
                text("SELECT pg_try_advisory_xact_lock(hashtext(:key))"), {"key": _PRUNE_LOCK}
            ).scalar_one()
        ):
            return 0  # another process is pruning
        head = self.head(db)
        cutoff = (datetime.now(UTC) - older_than).isoformat(timespec="seconds")
        old = db.execute(
            select(func.coalesce(func.max(changes.c.seq), 0)).where(changes.c.created_at < cutoff)
        ).scalar_one()
        cut = min(max(int(old), head - keep), head - 1)
        if cut <= self.pruned_to(db):
            return 0
        deleted = db.execute(delete(changes).where(changes.c.seq <= cut)).rowcount
        db.execute(delete(meta).where(meta.c.key == "changes_pruned_to"))
        db.execute(meta.insert().values(key="changes_pruned_to", value=str(cut)))
        return int(deleted or 0)


def _after() -> Select[Any]:
    pruned = (
        select(func.max(meta.c.value).label("pruned_to"))
        .where(meta.c.key == "changes_pruned_to")
        .subquery()
    )
    entries = (
        select(changes.c.seq, changes.c.kind, changes.c.added, changes.c.removed)
        .where(changes.c.seq > bindparam("seq"))
        .order_by(changes.c.seq)
        .limit(bindparam("limit"))
        .subquery()
    )
    return (  # one row (the pruned mark, no entry) when there is no entry
        select(pruned.c.pruned_to, entries)
        .select_from(pruned.outerjoin(entries, true()))
        .order_by(entries.c.seq)
    )


_AFTER = _after()


def net_effect(entries: Sequence[Change]) -> tuple[set[int], set[int]]:
    """(ids to remove, ids to add back from the stored vectors) for passage entries applied
    in order. Passage ids are never reused, so an id added and later removed is only removed,
    and re-adding is idempotent (remove first, then add what the database still holds)."""
    removed: set[int] = set()
    added: set[int] = set()
    for entry in entries:
        removed.update(entry.removed)
        added.update(entry.added)
    added -= removed
    return removed | added, added


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
