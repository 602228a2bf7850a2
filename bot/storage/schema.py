"""The bot's tables, declared once for both backends (SQLite file, PostgreSQL schema).

Tables carry no schema name: on PostgreSQL the engine maps them into ``newsbot_bot``
(``schema_translate_map``); on SQLite the file ``DATA_DIR/bot.sqlite3`` is the schema.
Migrations live in ``bot/migrations``; the first revision creates exactly these tables.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    false,
    func,
    text,
)

__all__ = [
    "ask_prompts",
    "chats",
    "feed_entries",
    "feeds",
    "jobs",
    "metadata",
    "outbox",
    "stories",
    "subscriptions",
]

metadata = MetaData()

# INTEGER PRIMARY KEY on SQLite (the rowid, as before), BIGINT elsewhere: Telegram chat ids
# and message ids do not fit in 32 bits.
RowId = BigInteger().with_variant(Integer(), "sqlite")

chats = Table(
    "chats",
    metadata,
    Column("chat_id", RowId, primary_key=True, autoincrement=False),
    Column("type", Text, nullable=False, server_default="private"),
    Column("title", Text),
    Column("status", Text, nullable=False, server_default="active"),  # blocked gone migrated
    Column("migrated_to", BigInteger),
    Column("mode", Text, nullable=False, server_default="instant"),  # or digest
    Column("digest_hour", Integer, nullable=False, server_default=text("8")),  # local hour
    Column("quiet_start", Integer),  # local hours; NULL: no quiet hours
    Column("quiet_end", Integer),
    Column("tz_minutes", Integer, nullable=False, server_default=text("0")),  # local - UTC
    Column("language", Text),  # chosen with /language; NULL: the user's Telegram language
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

feeds = Table(
    "feeds",
    metadata,
    Column("id", RowId, primary_key=True),
    Column("url", Text, nullable=False, unique=True),
    Column("title", Text),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("min_interval", Float, nullable=False, server_default=text("0")),  # TTL asked
    Column("next_poll_at", Float, nullable=False, server_default=text("0")),
    Column("polls", Integer, nullable=False, server_default=text("0")),  # successful ones
    Column("last_success_at", Float),
    Column("last_error", Text),
    Column("last_error_at", Float),
    Column("failures", Integer, nullable=False, server_default=text("0")),  # in a row
    Column("paused", Boolean, nullable=False, server_default=false()),
    Column("articles", Integer, nullable=False, server_default=text("0")),
    Column("preset", Boolean, nullable=False, server_default=false()),
    Column("created_at", Float, nullable=False),
    # One worker polls a feed at a time: it holds the feed until claimed_until (a lease;
    # a worker that dies mid-poll lets it go when that passes)
    Column("claimed_by", Text),
    Column("claimed_until", Float),
)

feed_entries = Table(
    "feed_entries",
    metadata,
    Column(
        "feed_id",
        BigInteger,
        ForeignKey("feeds.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("entry_key", Text, primary_key=True),
    Column("article_id", Text),
    Column("seen_at", Float, nullable=False),
)

stories = Table(
    "stories",
    metadata,
    Column("article_id", Text, primary_key=True),
    Column("url", Text),
    Column("content_hash", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("outlet", Text),
    Column("feed_id", BigInteger),
    Column("duplicate_of", Text),
    Column("signature", LargeBinary),  # MinHash, uint32
    Column("seen_at", Float, nullable=False),
    Index("stories_hash", "content_hash"),
    Index("stories_seen", "seen_at"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", RowId, primary_key=True),
    Column("chat_id", BigInteger, nullable=False),
    Column("thread_id", BigInteger, nullable=False, server_default=text("0")),
    Column("topic", Text, nullable=False, server_default=""),
    Column("outlet", Text, nullable=False, server_default=""),
    Column("vector", LargeBinary),  # the topic's embedding, float32
    Column("muted", Boolean, nullable=False, server_default=false()),
    Column("created_by", BigInteger),
    Column("created_at", Float, nullable=False),
)
# Topic and outlet compare case-insensitively (ASCII on SQLite, like COLLATE NOCASE before)
Index(
    "subscriptions_once",
    subscriptions.c.chat_id,
    subscriptions.c.thread_id,
    func.lower(subscriptions.c.topic),
    func.lower(subscriptions.c.outlet),
    unique=True,
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", RowId, primary_key=True),
    Column("chat_id", BigInteger, nullable=False),
    Column("thread_id", BigInteger, nullable=False, server_default=text("0")),
    Column("kind", Text, nullable=False),  # alert | digest | notice
    Column("article_id", Text),
    Column("subscription_id", BigInteger),
    Column("payload", Text, nullable=False),  # JSON
    # held | pending | sending | sent | digested | dropped | failed
    Column("state", Text, nullable=False),
    Column("not_before", Float, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Column("message_id", BigInteger),
    Column("created_at", Float, nullable=False),
    Column("sent_at", Float),
    # The worker sending the row (host:pid:nonce) and until when the row holds its chat:
    # while ``sending``, the claim's lease (renewed while the worker lives; once it passes,
    # the row goes back to the queue); once ``sent``, the end of the chat's gap
    # (ALERT_CHAT_INTERVAL), so no worker sends that chat its next row before then.
    Column("claimed_by", Text),
    Column("claimed_until", Float),
)
Index(
    "outbox_once",
    outbox.c.chat_id,
    outbox.c.thread_id,
    outbox.c.article_id,
    unique=True,
    sqlite_where=outbox.c.article_id.is_not(None),
    postgresql_where=outbox.c.article_id.is_not(None),
)
Index("outbox_due", outbox.c.state, outbox.c.not_before)
Index("outbox_chat_busy", outbox.c.chat_id, outbox.c.claimed_until)

jobs = Table(  # work any replica asks for and one worker does (/reindex)
    "jobs",
    metadata,
    Column("id", RowId, primary_key=True),
    Column("kind", Text, nullable=False),  # reindex
    Column("state", Text, nullable=False),  # queued | running | done | failed
    Column("chat_id", BigInteger),  # where the status message is (the admin who asked)
    Column("message_id", BigInteger),  # the status message the worker edits
    Column("language", Text),  # the admin's language, for the status message
    Column("done", Integer, nullable=False, server_default=text("0")),  # progress
    Column("total", Integer, nullable=False, server_default=text("0")),
    Column("result", Text),  # the final status text
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("claimed_by", Text),
    Column("claimed_until", Float),  # the lease: renewed while the worker lives
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
)
# At most one job of a kind queued or running: a second /reindex is told about the first
Index(
    "jobs_once",
    jobs.c.kind,
    unique=True,
    sqlite_where=jobs.c.state.in_(("queued", "running")),
    postgresql_where=jobs.c.state.in_(("queued", "running")),
)

ask_prompts = Table(  # prompts sent by "Ask about this article", to route the reply
    "ask_prompts",
    metadata,
    Column("chat_id", BigInteger, primary_key=True, autoincrement=False),
    Column("message_id", BigInteger, primary_key=True, autoincrement=False),
    Column("article_id", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)
