"""The bot's own SQLite database: chats, feeds, seen entries, subscriptions, the outbox.

Separate from the article index (``DATA_DIR/bot.sqlite3`` beside ``articles.sqlite3``).
The schema version is SQLite's ``user_version``; ``MIGRATIONS[n]`` upgrades version n to
n + 1 in place, inside one transaction. Every method is synchronous and thread-safe (one
connection guarded by a lock): async code calls them through ``asyncio.to_thread``.

The outbox is what makes alerts exactly-once: a row per (chat, thread, article) is written
before anything is sent (a unique index refuses a second one), claimed as ``sending`` just
before the request and marked ``sent`` right after Telegram accepts it. After a crash,
``recover()`` turns ``sending`` rows back into ``pending``: only a message Telegram accepted
in the instant before it was marked can be sent twice.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "SCHEMA_VERSION",
    "ChatPrefs",
    "Delivery",
    "FeedRow",
    "OutboxRow",
    "Storage",
    "StorageError",
    "Story",
    "Subscription",
    "SubscriptionLimitError",
]


class StorageError(Exception):
    """The database is unusable (e.g. written by a newer version of the bot)."""


class SubscriptionLimitError(Exception):
    """The chat already has as many subscriptions as allowed: remove one first."""


_V1 = """
    CREATE TABLE chats (
        chat_id INTEGER PRIMARY KEY,
        type TEXT NOT NULL DEFAULT 'private',
        title TEXT,
        status TEXT NOT NULL DEFAULT 'active',      -- active | blocked | gone | migrated
        migrated_to INTEGER,
        mode TEXT NOT NULL DEFAULT 'instant',       -- instant | digest
        digest_hour INTEGER NOT NULL DEFAULT 8,     -- local hour of the daily digest
        quiet_start INTEGER,                        -- local hours, NULL: no quiet hours
        quiet_end INTEGER,
        tz_minutes INTEGER NOT NULL DEFAULT 0,      -- offset of local time from UTC
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE feeds (
        id INTEGER PRIMARY KEY,
        url TEXT NOT NULL UNIQUE,
        title TEXT,
        etag TEXT,
        last_modified TEXT,
        min_interval REAL NOT NULL DEFAULT 0,       -- asked by the feed (TTL, Cache-Control)
        next_poll_at REAL NOT NULL DEFAULT 0,
        polls INTEGER NOT NULL DEFAULT 0,           -- successful polls
        last_success_at REAL,
        last_error TEXT,
        last_error_at REAL,
        failures INTEGER NOT NULL DEFAULT 0,        -- consecutive
        paused INTEGER NOT NULL DEFAULT 0,
        articles INTEGER NOT NULL DEFAULT 0,
        preset INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE TABLE feed_entries (
        feed_id INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
        entry_key TEXT NOT NULL,
        article_id TEXT,
        seen_at REAL NOT NULL,
        PRIMARY KEY (feed_id, entry_key)
    );
    CREATE TABLE stories (
        article_id TEXT PRIMARY KEY,
        url TEXT,
        content_hash TEXT NOT NULL,
        title TEXT NOT NULL,
        outlet TEXT,
        feed_id INTEGER,
        duplicate_of TEXT,
        signature BLOB,
        seen_at REAL NOT NULL
    );
    CREATE INDEX stories_hash ON stories(content_hash);
    CREATE INDEX stories_seen ON stories(seen_at);
    CREATE TABLE subscriptions (
        id INTEGER PRIMARY KEY,
        chat_id INTEGER NOT NULL,
        thread_id INTEGER NOT NULL DEFAULT 0,
        topic TEXT NOT NULL DEFAULT '',
        outlet TEXT NOT NULL DEFAULT '',
        vector BLOB,
        muted INTEGER NOT NULL DEFAULT 0,
        created_by INTEGER,
        created_at REAL NOT NULL
    );
    CREATE UNIQUE INDEX subscriptions_once ON subscriptions(
        chat_id, thread_id, topic COLLATE NOCASE, outlet COLLATE NOCASE);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        chat_id INTEGER NOT NULL,
        thread_id INTEGER NOT NULL DEFAULT 0,
        kind TEXT NOT NULL,                         -- alert | digest | notice
        article_id TEXT,
        subscription_id INTEGER,
        payload TEXT NOT NULL,
        state TEXT NOT NULL,   -- held | pending | sending | sent | digested | dropped | failed
        not_before REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        message_id INTEGER,
        created_at REAL NOT NULL,
        sent_at REAL
    );
    CREATE UNIQUE INDEX outbox_once ON outbox(chat_id, thread_id, article_id)
        WHERE article_id IS NOT NULL;
    CREATE INDEX outbox_due ON outbox(state, not_before)
"""


def _schema_v1(db: sqlite3.Connection) -> None:
    for statement in _V1.split(";"):  # statements one by one: executescript would commit
        db.execute(statement)


def _schema_v2(db: sqlite3.Connection) -> None:
    """Prompts sent by "Ask about this article", to route the user's reply."""
    db.execute(
        "CREATE TABLE ask_prompts (chat_id INTEGER NOT NULL, message_id INTEGER NOT NULL, "
        "article_id TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (chat_id, message_id))"
    )


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_schema_v1, _schema_v2]
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True, slots=True)
class ChatPrefs:
    """A chat's delivery preferences and state."""

    chat_id: int
    status: str = "active"
    mode: str = "instant"
    digest_hour: int = 8
    quiet_start: int | None = None
    quiet_end: int | None = None
    tz_minutes: int = 0
    migrated_to: int | None = None

    def deliver_at(self, now: float) -> tuple[str, float]:
        """(state, not_before) for an alert created at ``now``: held for the next digest,
        delayed to the end of quiet hours, or pending right away."""
        local = now + self.tz_minutes * 60
        day_start = local - local % 86400
        if self.mode == "digest":
            due = day_start + self.digest_hour * 3600
            if due <= local:
                due += 86400
            return "held", due - self.tz_minutes * 60
        if self.quiet_start is not None and self.quiet_end is not None:
            hour = (local - day_start) / 3600
            start, end = self.quiet_start, self.quiet_end
            inside = start <= hour < end if start < end else (hour >= start or hour < end)
            if start != end and inside:
                due = day_start + end * 3600
                if due <= local:
                    due += 86400
                return "pending", due - self.tz_minutes * 60
        return "pending", now


@dataclass(frozen=True, slots=True)
class FeedRow:
    id: int
    url: str
    title: str | None
    etag: str | None
    last_modified: str | None
    min_interval: float
    next_poll_at: float
    polls: int
    last_success_at: float | None
    last_error: str | None
    last_error_at: float | None
    failures: int
    paused: bool
    articles: int
    preset: bool


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    chat_id: int
    thread_id: int
    topic: str
    outlet: str
    vector: np.ndarray | None
    muted: bool

    def describe(self) -> str:
        """How the subscription reads in lists: every article / about X / from Y."""
        parts = []
        if self.topic:
            parts.append(f"about “{self.topic}”")
        if self.outlet:
            parts.append(f"from {self.outlet}")
        return " ".join(parts) or "every new article"


@dataclass(frozen=True, slots=True)
class Story:
    """An article the feeds brought in, for duplicate detection."""

    article_id: str
    url: str | None
    content_hash: str
    title: str
    outlet: str | None
    duplicate_of: str | None
    signature: np.ndarray | None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    chat_id: int
    thread_id: int
    kind: str
    article_id: str | None
    subscription_id: int | None
    payload: dict[str, Any]
    state: str
    not_before: float
    attempts: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """One alert to enqueue: which chat/thread gets which article, and why."""

    chat_id: int
    thread_id: int
    article_id: str
    subscription_id: int | None
    payload: dict[str, Any]


_FEED_COLUMNS = (
    "id, url, title, etag, last_modified, min_interval, next_poll_at, polls, last_success_at, "
    "last_error, last_error_at, failures, paused, articles, preset"
)
_OUTBOX_COLUMNS = (
    "id, chat_id, thread_id, kind, article_id, subscription_id, payload, state, not_before, "
    "attempts"
)


class Storage:
    """Thread-safe access to ``bot.sqlite3``; open it with ``Storage(path)``."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.clock: Callable[[], float] = time.time  # tests move time forward
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.path, isolation_level=None, timeout=30, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes
        self._db.execute("PRAGMA foreign_keys=ON")
        self.migrate()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def migrate(self) -> None:
        """Bring the schema to ``SCHEMA_VERSION`` in place."""
        with self.transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StorageError(
                    f"{self.path} has schema version {version}, newer than this bot's "
                    f"{SCHEMA_VERSION}: upgrade the bot or point DATA_DIR elsewhere"
                )
            for upgrade in MIGRATIONS[version:]:
                upgrade(db)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @property
    def schema_version(self) -> int:
        return int(self._query("PRAGMA user_version")[0][0])

    # -- chats ----------------------------------------------------------------------------

    def ensure_chat(self, chat_id: int, type_: str = "private", title: str | None = None) -> None:
        """Record a chat (re-activating it if it had blocked the bot and came back)."""
        now = self.clock()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO chats (chat_id, type, title, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(chat_id) DO UPDATE SET type = excluded.type, "
                "title = excluded.title, updated_at = excluded.updated_at, "
                "status = CASE WHEN status IN ('blocked', 'gone') THEN 'active' ELSE status END",
                (chat_id, type_, title, now, now),
            )

    def chat(self, chat_id: int) -> ChatPrefs | None:
        rows = self._query(
            "SELECT chat_id, status, mode, digest_hour, quiet_start, quiet_end, tz_minutes, "
            "migrated_to FROM chats WHERE chat_id = ?",
            (chat_id,),
        )
        return ChatPrefs(*rows[0]) if rows else None

    def set_prefs(self, chat_id: int, **changes: Any) -> ChatPrefs:
        """Change delivery preferences (mode, digest_hour, quiet_start, quiet_end, tz_minutes)."""
        allowed = {"mode", "digest_hour", "quiet_start", "quiet_end", "tz_minutes"}
        if not changes or set(changes) - allowed:
            raise ValueError(f"unknown preferences: {sorted(set(changes) - allowed)}")
        assignments = ", ".join(f"{name} = ?" for name in changes)
        with self.transaction() as db:
            db.execute(
                f"UPDATE chats SET {assignments}, updated_at = ? WHERE chat_id = ?",
                (*changes.values(), self.clock(), chat_id),
            )
        prefs = self.chat(chat_id)
        assert prefs is not None, "ensure_chat first"
        return prefs

    def deactivate_chat(self, chat_id: int, status: str, reason: str) -> int:
        """Stop sending to a chat (``blocked`` or ``gone``); returns alerts dropped."""
        with self.transaction() as db:
            db.execute(
                "UPDATE chats SET status = ?, updated_at = ? WHERE chat_id = ?",
                (status, self.clock(), chat_id),
            )
            return db.execute(
                "UPDATE outbox SET state = 'dropped', last_error = ? "
                "WHERE chat_id = ? AND state IN ('held', 'pending', 'sending')",
                (reason, chat_id),
            ).rowcount

    def migrate_chat(self, old_id: int, new_id: int) -> None:
        """A group became a supergroup: move its settings, subscriptions and queued alerts."""
        now = self.clock()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO chats (chat_id, type, title, mode, digest_hour, quiet_start, "
                "quiet_end, tz_minutes, created_at, updated_at) SELECT ?, 'supergroup', title, "
                "mode, digest_hour, quiet_start, quiet_end, tz_minutes, ?, ? FROM chats "
                "WHERE chat_id = ? ON CONFLICT(chat_id) DO NOTHING",
                (new_id, now, now, old_id),
            )
            db.execute(
                "UPDATE chats SET status = 'migrated', migrated_to = ?, updated_at = ? "
                "WHERE chat_id = ?",
                (new_id, now, old_id),
            )
            db.execute(
                "UPDATE OR IGNORE subscriptions SET chat_id = ? WHERE chat_id = ?", (new_id, old_id)
            )
            db.execute("DELETE FROM subscriptions WHERE chat_id = ?", (old_id,))
            db.execute(
                "UPDATE OR IGNORE outbox SET chat_id = ?, state = CASE WHEN state = 'sending' "
                "THEN 'pending' ELSE state END WHERE chat_id = ? AND state IN "
                "('held', 'pending', 'sending')",
                (new_id, old_id),
            )
            db.execute(
                "UPDATE outbox SET state = 'dropped', last_error = 'chat migrated' "
                "WHERE chat_id = ? AND state IN ('held', 'pending', 'sending')",
                (old_id,),
            )

    # -- feeds ----------------------------------------------------------------------------

    def add_feed(self, url: str, *, preset: bool = False) -> tuple[FeedRow, bool]:
        """(feed, created); an existing paused feed is resumed."""
        with self.transaction() as db:
            created = (
                db.execute(
                    "INSERT OR IGNORE INTO feeds (url, preset, created_at) VALUES (?, ?, ?)",
                    (url, int(preset), self.clock()),
                ).rowcount
                == 1
            )
            if not created:
                db.execute(
                    "UPDATE feeds SET paused = 0, failures = 0, next_poll_at = 0 WHERE url = ?",
                    (url,),
                )
        feed = self.feed_by_url(url)
        assert feed is not None
        return feed, created

    def remove_feed(self, url: str) -> bool:
        with self.transaction() as db:
            return db.execute("DELETE FROM feeds WHERE url = ?", (url,)).rowcount == 1

    def feed_by_url(self, url: str) -> FeedRow | None:
        rows = self._query(f"SELECT {_FEED_COLUMNS} FROM feeds WHERE url = ?", (url,))
        return FeedRow(*rows[0]) if rows else None

    def feed(self, feed_id: int) -> FeedRow | None:
        rows = self._query(f"SELECT {_FEED_COLUMNS} FROM feeds WHERE id = ?", (feed_id,))
        return FeedRow(*rows[0]) if rows else None

    def feeds(self) -> list[FeedRow]:
        return [FeedRow(*r) for r in self._query(f"SELECT {_FEED_COLUMNS} FROM feeds ORDER BY id")]

    def due_feeds(self, now: float) -> list[FeedRow]:
        return [
            FeedRow(*r)
            for r in self._query(
                f"SELECT {_FEED_COLUMNS} FROM feeds WHERE paused = 0 AND next_poll_at <= ? "
                "ORDER BY next_poll_at",
                (now,),
            )
        ]

    def update_feed(self, feed_id: int, **changes: Any) -> None:
        assignments = ", ".join(f"{name} = ?" for name in changes)
        with self.transaction() as db:
            db.execute(f"UPDATE feeds SET {assignments} WHERE id = ?", (*changes.values(), feed_id))

    def seen_entries(self, feed_id: int, keys: Iterable[str]) -> set[str]:
        keys = list(keys)
        seen: set[str] = set()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            seen.update(
                r[0]
                for r in self._query(
                    "SELECT entry_key FROM feed_entries WHERE feed_id = ? "
                    f"AND entry_key IN ({marks})",
                    (feed_id, *chunk),
                )
            )
        return seen

    # -- stories (dedupe) -----------------------------------------------------------------

    def story_by_id_or_hash(self, article_id: str, content_hash: str) -> Story | None:
        rows = self._query(
            "SELECT article_id, url, content_hash, title, outlet, duplicate_of, signature "
            "FROM stories WHERE article_id = ? OR content_hash = ? LIMIT 1",
            (article_id, content_hash),
        )
        return _story(rows[0]) if rows else None

    def recent_signatures(self, since: float) -> tuple[list[str], np.ndarray | None]:
        """Article ids and MinHash signatures of original stories seen since ``since``."""
        rows = self._query(
            "SELECT article_id, signature FROM stories WHERE seen_at >= ? AND "
            "duplicate_of IS NULL AND signature IS NOT NULL ORDER BY seen_at",
            (since,),
        )
        if not rows:
            return [], None
        return [r[0] for r in rows], np.vstack([np.frombuffer(r[1], dtype=np.uint32) for r in rows])

    def record_poll(
        self,
        feed_id: int,
        entries: Sequence[tuple[str, str | None]],
        stories: Sequence[Story],
        deliveries: Sequence[Delivery],
        feed_changes: dict[str, Any],
    ) -> int:
        """In one transaction: mark entries seen, record stories, enqueue alerts (delivery
        time from each chat's preferences), update the feed. Returns alerts enqueued."""
        now = self.clock()
        enqueued = 0
        with self.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO feed_entries (feed_id, entry_key, article_id, seen_at) "
                "VALUES (?, ?, ?, ?)",
                [(feed_id, key, article_id, now) for key, article_id in entries],
            )
            db.executemany(
                "INSERT OR IGNORE INTO stories (article_id, url, content_hash, title, outlet, "
                "feed_id, duplicate_of, signature, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        s.article_id,
                        s.url,
                        s.content_hash,
                        s.title,
                        s.outlet,
                        feed_id,
                        s.duplicate_of,
                        None if s.signature is None else s.signature.tobytes(),
                        now,
                    )
                    for s in stories
                ],
            )
            enqueued = self._enqueue(db, deliveries, now)
            if feed_changes:
                assignments = ", ".join(f"{name} = ?" for name in feed_changes)
                db.execute(
                    f"UPDATE feeds SET {assignments}, articles = articles + ? WHERE id = ?",
                    (*feed_changes.values(), sum(s.duplicate_of is None for s in stories), feed_id),
                )
        return enqueued

    def link_duplicate(self, original_id: str, other: dict[str, Any]) -> int:
        """Mention another outlet's copy of a story in its alerts still queued."""
        with self.transaction() as db:
            rows = db.execute(
                "SELECT id, payload FROM outbox WHERE article_id = ? AND kind = 'alert' "
                "AND state IN ('held', 'pending')",
                (original_id,),
            ).fetchall()
            for row_id, raw in rows:
                payload = json.loads(raw)
                payload["also"] = [*payload.get("also", []), other]
                db.execute(
                    "UPDATE outbox SET payload = ? WHERE id = ?", (json.dumps(payload), row_id)
                )
        return len(rows)

    # -- subscriptions --------------------------------------------------------------------

    def subscribe(
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
        with self.transaction() as db:
            if limit is not None and not self._has_subscription(
                db, chat_id, thread_id, topic, outlet
            ):
                count = db.execute(
                    "SELECT COUNT(*) FROM subscriptions WHERE chat_id = ?", (chat_id,)
                ).fetchone()[0]
                if count >= limit:
                    raise SubscriptionLimitError(f"chat {chat_id} has {count} subscriptions")
            created = (
                db.execute(
                    "INSERT OR IGNORE INTO subscriptions (chat_id, thread_id, topic, outlet, "
                    "vector, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        chat_id,
                        thread_id,
                        topic,
                        outlet,
                        None if vector is None else np.asarray(vector, np.float32).tobytes(),
                        created_by,
                        self.clock(),
                    ),
                ).rowcount
                == 1
            )
            row = db.execute(
                "SELECT id, muted FROM subscriptions WHERE chat_id = ? AND thread_id = ? AND "
                "topic = ? COLLATE NOCASE AND outlet = ? COLLATE NOCASE",
                (chat_id, thread_id, topic, outlet),
            ).fetchone()
            if row[1]:
                db.execute("UPDATE subscriptions SET muted = 0 WHERE id = ?", (row[0],))
                created = True
        sub = self.subscription(row[0])
        assert sub is not None
        return sub, created

    @staticmethod
    def _has_subscription(
        db: sqlite3.Connection, chat_id: int, thread_id: int, topic: str, outlet: str
    ) -> bool:
        row = db.execute(
            "SELECT 1 FROM subscriptions WHERE chat_id = ? AND thread_id = ? AND "
            "topic = ? COLLATE NOCASE AND outlet = ? COLLATE NOCASE",
            (chat_id, thread_id, topic, outlet),
        ).fetchone()
        return row is not None

    def subscription(self, sub_id: int) -> Subscription | None:
        rows = self._query(
            "SELECT id, chat_id, thread_id, topic, outlet, vector, muted FROM subscriptions "
            "WHERE id = ?",
            (sub_id,),
        )
        return _subscription(rows[0]) if rows else None

    def subscriptions(self, chat_id: int | None = None) -> list[Subscription]:
        """A chat's subscriptions, or (``None``) every active chat's unmuted ones."""
        if chat_id is not None:
            sql = (
                "SELECT id, chat_id, thread_id, topic, outlet, vector, muted FROM subscriptions "
                "WHERE chat_id = ? ORDER BY id"
            )
            return [_subscription(r) for r in self._query(sql, (chat_id,))]
        sql = (
            "SELECT s.id, s.chat_id, s.thread_id, s.topic, s.outlet, s.vector, s.muted "
            "FROM subscriptions s JOIN chats c ON c.chat_id = s.chat_id "
            "WHERE s.muted = 0 AND c.status = 'active' ORDER BY s.id"
        )
        return [_subscription(r) for r in self._query(sql)]

    def unsubscribe(self, chat_id: int, sub_id: int | None = None) -> int:
        """Remove one subscription of a chat, or all of them; returns how many."""
        with self.transaction() as db:
            if sub_id is None:
                return db.execute(
                    "DELETE FROM subscriptions WHERE chat_id = ?", (chat_id,)
                ).rowcount
            return db.execute(
                "DELETE FROM subscriptions WHERE chat_id = ? AND id = ?", (chat_id, sub_id)
            ).rowcount

    def mute(self, chat_id: int, sub_id: int) -> Subscription | None:
        with self.transaction() as db:
            db.execute(
                "UPDATE subscriptions SET muted = 1 WHERE chat_id = ? AND id = ?", (chat_id, sub_id)
            )
        sub = self.subscription(sub_id)
        return sub if sub is not None and sub.chat_id == chat_id else None

    def subscriber_count(self) -> int:
        return int(
            self._query(
                "SELECT COUNT(DISTINCT s.chat_id) FROM subscriptions s JOIN chats c "
                "ON c.chat_id = s.chat_id WHERE c.status = 'active'"
            )[0][0]
        )

    # -- outbox ---------------------------------------------------------------------------

    def enqueue(self, deliveries: Sequence[Delivery]) -> int:
        """Record alerts (once per chat, thread and article); returns how many are new."""
        with self.transaction() as db:
            return self._enqueue(db, deliveries, self.clock())

    def _enqueue(self, db: sqlite3.Connection, deliveries: Sequence[Delivery], now: float) -> int:
        if not deliveries:
            return 0
        prefs: dict[int, ChatPrefs] = {}
        rows = []
        for d in deliveries:
            if d.chat_id not in prefs:
                found = db.execute(
                    "SELECT chat_id, status, mode, digest_hour, quiet_start, quiet_end, "
                    "tz_minutes, migrated_to FROM chats WHERE chat_id = ?",
                    (d.chat_id,),
                ).fetchone()
                prefs[d.chat_id] = ChatPrefs(*found) if found else ChatPrefs(d.chat_id)
            chat = prefs[d.chat_id]
            if chat.status != "active":
                continue
            state, not_before = chat.deliver_at(now)
            rows.append(
                (
                    d.chat_id,
                    d.thread_id,
                    "alert",
                    d.article_id,
                    d.subscription_id,
                    json.dumps(d.payload),
                    state,
                    not_before,
                    now,
                )
            )
        before = db.total_changes
        db.executemany(
            "INSERT OR IGNORE INTO outbox (chat_id, thread_id, kind, article_id, "
            "subscription_id, payload, state, not_before, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        return db.total_changes - before

    def enqueue_notice(self, chat_id: int, text: str) -> None:
        """A plain message (e.g. to admins) sent through the outbox like alerts."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO outbox (chat_id, kind, payload, state, not_before, created_at) "
                "VALUES (?, 'notice', ?, 'pending', ?, ?)",
                (chat_id, json.dumps({"text": text}), self.clock(), self.clock()),
            )

    def recover(self) -> int:
        """After a restart: alerts claimed but not marked sent go back to the queue."""
        with self.transaction() as db:
            return db.execute(
                "UPDATE outbox SET state = 'pending' WHERE state = 'sending'"
            ).rowcount

    def due(self, now: float, limit: int) -> list[OutboxRow]:
        """The oldest pending row of each chat whose time has come, oldest first (a chat
        with a long queue does not hold up the others)."""
        sql = (
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE id IN (SELECT MIN(id) FROM outbox "
            "WHERE state = 'pending' AND not_before <= ? GROUP BY chat_id) ORDER BY id LIMIT ?"
        )
        return [_outbox(r) for r in self._query(sql, (now, limit))]

    def next_due_time(self) -> float | None:
        row = self._query("SELECT MIN(not_before) FROM outbox WHERE state = 'pending'")[0]
        return row[0]

    def claim(self, row_id: int) -> bool:
        """Mark a row as being sent (just before the request); False if already taken."""
        with self.transaction() as db:
            return (
                db.execute(
                    "UPDATE outbox SET state = 'sending', attempts = attempts + 1 "
                    "WHERE id = ? AND state = 'pending'",
                    (row_id,),
                ).rowcount
                == 1
            )

    def mark_sent(self, row_id: int, message_id: int) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE outbox SET state = 'sent', message_id = ?, sent_at = ? WHERE id = ?",
                (message_id, self.clock(), row_id),
            )

    def retry_later(self, row_id: int, not_before: float, error: str, *, counts: bool) -> None:
        """Back to the queue; ``counts`` False (429) gives the attempt back."""
        with self.transaction() as db:
            db.execute(
                "UPDATE outbox SET state = 'pending', not_before = ?, last_error = ?, "
                "attempts = attempts - ? WHERE id = ?",
                (not_before, error, 0 if counts else 1, row_id),
            )

    def mark_failed(self, row_id: int, error: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE outbox SET state = 'failed', last_error = ? WHERE id = ?", (error, row_id)
            )

    def roll_digests(self, now: float, max_items: int) -> int:
        """Turn each chat's held alerts whose digest time has come into one digest row per
        (chat, thread) in the same transaction; returns digests created."""
        created = 0
        with self.transaction() as db:
            groups = db.execute(
                "SELECT chat_id, thread_id FROM outbox WHERE state = 'held' AND not_before <= ? "
                "GROUP BY chat_id, thread_id",
                (now,),
            ).fetchall()
            for chat_id, thread_id in groups:
                rows = db.execute(
                    "SELECT id, article_id, payload FROM outbox WHERE state = 'held' AND "
                    "not_before <= ? AND chat_id = ? AND thread_id = ? ORDER BY id",
                    (now, chat_id, thread_id),
                ).fetchall()
                items = [json.loads(r[2]) for r in rows]
                payload = {"items": items[:max_items], "more": max(0, len(items) - max_items)}
                db.execute(
                    "INSERT INTO outbox (chat_id, thread_id, kind, payload, state, not_before, "
                    "created_at) VALUES (?, ?, 'digest', ?, 'pending', ?, ?)",
                    (chat_id, thread_id, json.dumps(payload), now, now),
                )
                db.executemany(
                    "UPDATE outbox SET state = 'digested' WHERE id = ?", [(r[0],) for r in rows]
                )
                created += 1
        return created

    def outbox_counts(self) -> dict[str, int]:
        return {
            state: n
            for state, n in self._query("SELECT state, COUNT(*) FROM outbox GROUP BY state")
        }

    def outbox_rows(self, chat_id: int | None = None) -> list[OutboxRow]:
        """Every outbox row (for tests and diagnostics)."""
        if chat_id is None:
            return [
                _outbox(r) for r in self._query(f"SELECT {_OUTBOX_COLUMNS} FROM outbox ORDER BY id")
            ]
        return [
            _outbox(r)
            for r in self._query(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE chat_id = ? ORDER BY id", (chat_id,)
            )
        ]

    # -- ask prompts ----------------------------------------------------------------------

    def add_ask_prompt(self, chat_id: int, message_id: int, article_id: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO ask_prompts VALUES (?, ?, ?, ?)",
                (chat_id, message_id, article_id, self.clock()),
            )

    def ask_prompt(self, chat_id: int, message_id: int) -> str | None:
        rows = self._query(
            "SELECT article_id FROM ask_prompts WHERE chat_id = ? AND message_id = ?",
            (chat_id, message_id),
        )
        return rows[0][0] if rows else None


def _story(r: tuple[Any, ...]) -> Story:
    signature = None if r[6] is None else np.frombuffer(r[6], dtype=np.uint32)
    return Story(r[0], r[1], r[2], r[3], r[4], r[5], signature)


def _subscription(r: tuple[Any, ...]) -> Subscription:
    vector = None if r[5] is None else np.frombuffer(r[5], dtype=np.float32)
    return Subscription(r[0], r[1], r[2], r[3], r[4], vector, bool(r[6]))


def _outbox(r: tuple[Any, ...]) -> OutboxRow:
    return OutboxRow(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7], r[8], r[9])
