"""Opening the bot's database: Alembic migrations on both backends, files from the
hand-written scheme before Alembic upgraded in place, newer databases and bad URLs refused
in one line, and outbox claims exclusive between processes on PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.storage import (
    BotStore,
    ChatPrefs,
    DatabaseUnavailableError,
    Delivery,
    SchemaTooNewError,
    StorageError,
)
from bot.storage.database import ALEMBIC_USER_VERSION, database_url, head_revision, sqlite_url

# The schema as bot/storage.py created it before Alembic (PRAGMA user_version 1, then 2),
# copied here so that today's data folders stay tested after that code is gone.
OLD_V1 = """
    CREATE TABLE chats (
        chat_id INTEGER PRIMARY KEY,
        type TEXT NOT NULL DEFAULT 'private',
        title TEXT,
        status TEXT NOT NULL DEFAULT 'active',
        migrated_to INTEGER,
        mode TEXT NOT NULL DEFAULT 'instant',
        digest_hour INTEGER NOT NULL DEFAULT 8,
        quiet_start INTEGER,
        quiet_end INTEGER,
        tz_minutes INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE feeds (
        id INTEGER PRIMARY KEY,
        url TEXT NOT NULL UNIQUE,
        title TEXT,
        etag TEXT,
        last_modified TEXT,
        min_interval REAL NOT NULL DEFAULT 0,
        next_poll_at REAL NOT NULL DEFAULT 0,
        polls INTEGER NOT NULL DEFAULT 0,
        last_success_at REAL,
        last_error TEXT,
        last_error_at REAL,
        failures INTEGER NOT NULL DEFAULT 0,
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
        kind TEXT NOT NULL,
        article_id TEXT,
        subscription_id INTEGER,
        payload TEXT NOT NULL,
        state TEXT NOT NULL,
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
OLD_V2 = (
    "CREATE TABLE ask_prompts (chat_id INTEGER NOT NULL, message_id INTEGER NOT NULL, "
    "article_id TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (chat_id, message_id))"
)
OLD_ROWS = [
    "INSERT INTO chats (chat_id, type, mode, digest_hour, created_at, updated_at) "
    "VALUES (-1001234567890, 'supergroup', 'digest', 7, 1, 1)",
    "INSERT INTO chats (chat_id, created_at, updated_at) VALUES (5, 1, 1)",
    "INSERT INTO feeds (id, url, paused, polls, articles, created_at) "
    "VALUES (3, 'https://a.test/rss', 1, 4, 9, 1)",
    "INSERT INTO feed_entries VALUES (3, 'entry-1', 'a1', 1)",
    "INSERT INTO stories VALUES ('a1', NULL, 'h1', 'Volcano', 'Daily', 3, NULL, NULL, 1)",
    "INSERT INTO subscriptions (id, chat_id, topic, muted, created_at) "
    "VALUES (11, 5, 'Volcano', 0, 1)",
    "INSERT INTO outbox (id, chat_id, kind, article_id, subscription_id, payload, state, "
    "not_before, created_at) VALUES (21, 5, 'alert', 'a1', 11, '{\"title\": \"Volcano\"}', "
    "'pending', 0, 1)",
]


def old_database(path: Path, version: int) -> None:
    """A bot.sqlite3 as the bot before Alembic left it, at ``version``, with rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    for statement in OLD_V1.split(";"):
        db.execute(statement)
    if version >= 2:
        db.execute(OLD_V2)
        db.execute("INSERT INTO ask_prompts VALUES (5, 77, 'a1', 1)")
    for statement in OLD_ROWS:
        db.execute(statement)
    db.execute(f"PRAGMA user_version = {version}")
    db.close()


@pytest.mark.parametrize("version", [1, 2])
async def test_a_database_from_before_alembic_is_upgraded_in_place(
    tmp_path: Path, version: int
) -> None:
    """Its rows are all there and usable; the old rules still hold (one alert per chat and
    article, subscriptions without case); an old bot would now refuse the file."""
    path = tmp_path / "bot.sqlite3"
    old_database(path, version)
    store = BotStore.from_url(sqlite_url(path))
    await store.open()

    group = await store.chats.get(-1001234567890)
    assert group == ChatPrefs(-1001234567890, mode="digest", digest_hour=7)
    [feed] = await store.feeds.all()
    assert (feed.id, feed.paused, feed.polls, feed.articles) == (3, True, 4, 9)
    assert await store.feeds.seen_entries(3, ["entry-1", "entry-2"]) == {"entry-1"}
    story = await store.stories.by_id_or_hash("a1", "x")
    assert story is not None and story.title == "Volcano"
    [sub] = await store.subscriptions.active()
    assert (sub.id, sub.topic, sub.muted) == (11, "Volcano", False)
    _, created = await store.subscriptions.subscribe(5, 0, "VOLCANO", "", None, 1)
    assert not created
    [row] = await store.outbox.due(10, 10)
    assert (row.id, row.payload, row.subscription_id) == (21, {"title": "Volcano"}, 11)
    assert await store.outbox.enqueue([Delivery(5, 0, "a1", 11, {})]) == 0
    assert await store.prompts.article(5, 77) == ("a1" if version == 2 else None)
    await store.prompts.add(5, 78, "a1")
    await store.close()

    db = sqlite3.connect(path)
    assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(head_revision(),)]
    assert db.execute("PRAGMA user_version").fetchone() == (ALEMBIC_USER_VERSION,)
    db.close()
    again = BotStore.from_url(sqlite_url(path))  # opening again changes nothing
    assert await again.prompts.article(5, 78) == "a1"
    await again.close()


async def test_a_newer_pre_alembic_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 3")
    db.close()
    store = BotStore.from_url(sqlite_url(path))
    with pytest.raises(SchemaTooNewError, match="schema version 3, newer than this bot"):
        await store.open()
    await store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(sqlite_url(tmp_path / "bot.sqlite3"))
    return str(database_url(tmp_path, request.getfixturevalue("postgres_url")))


async def test_an_empty_database_is_migrated_to_the_newest_revision(url: str) -> None:
    """Every table is made; opening again (another process) leaves it as it is."""
    store = BotStore.from_url(url)
    await store.chats.ensure(5)  # the first query opens and migrates
    await store.close()
    store = BotStore.from_url(url)
    await store.open()
    assert await store.chats.get(5) == ChatPrefs(5)
    schema = store.database.schema
    table = f"{schema}.alembic_version" if schema else "alembic_version"
    async with store.database.read() as conn:
        version = (await conn.execute(text(f"SELECT version_num FROM {table}"))).all()
    assert version == [(head_revision(),)]
    await store.close()


async def test_a_database_migrated_by_a_newer_bot_is_refused(url: str) -> None:
    store = BotStore.from_url(url)
    await store.open()
    schema = store.database.schema
    table = f"{schema}.alembic_version" if schema else "alembic_version"
    async with store.database.write() as conn:
        await conn.execute(text(f"UPDATE {table} SET version_num = '9999_future'"))
    await store.close()
    store = BotStore.from_url(url)
    with pytest.raises(SchemaTooNewError) as refused:
        await store.open()
    expected = f"revision 9999_future, newer than this bot's {head_revision()}: upgrade the bot"
    assert expected in str(refused.value)
    assert "\n" not in str(refused.value)
    await store.close()


async def test_two_processes_opening_a_fresh_database_at_once_both_work(url: str) -> None:
    stores = [BotStore.from_url(url) for _ in range(3)]
    await asyncio.gather(*(s.open() for s in stores))
    await stores[0].chats.ensure(5)
    assert [await s.chats.get(5) for s in stores] == [ChatPrefs(5)] * 3
    for s in stores:
        await s.close()


# -- bad URLs and files ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("mysql://u:p@h/db", "DATABASE_URL has the scheme 'mysql': use postgresql://"),
        ("not a url", "DATABASE_URL is not a URL"),
    ],
)
def test_a_malformed_database_url_is_one_line(value: str, message: str) -> None:
    with pytest.raises(StorageError, match=message):
        BotStore.from_settings(Path("data"), value)


async def test_an_unreachable_postgresql_is_one_line_without_the_password() -> None:
    store = BotStore.from_settings(Path("data"), "postgresql://bot:s3cret@127.0.0.1:1/news")
    with pytest.raises(DatabaseUnavailableError) as refused:
        await store.open()
    message = str(refused.value)
    assert message.startswith("cannot use DATABASE_URL postgresql://bot:***@127.0.0.1:1/news (")
    assert "check that PostgreSQL is running there" in message
    assert "s3cret" not in message and "\n" not in message
    await store.close()


async def test_a_file_that_is_not_a_database_is_one_line_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    path.write_bytes(b"not a database\n" * 500)
    store = BotStore.from_url(sqlite_url(path))
    with pytest.raises(DatabaseUnavailableError, match=r"is not a usable database .*file is not"):
        await store.open()
    await store.close()
    assert path.read_bytes() == b"not a database\n" * 500


# -- claims between processes --------------------------------------------------------------


@pytest.fixture
def two_workers(postgres_url: str, tmp_path: Path) -> Iterator[tuple[BotStore, BotStore]]:
    url = database_url(tmp_path, postgres_url)
    yield BotStore.from_url(url), BotStore.from_url(url)


async def test_two_workers_never_claim_the_same_row_on_postgresql(
    two_workers: tuple[BotStore, BotStore],
) -> None:
    """Two stores with their own connection pools (as two processes would have) race to
    claim every due row: each row goes to exactly one of them."""
    first, second = two_workers
    await first.outbox.enqueue([Delivery(chat, 0, "a", None, {}) for chat in range(400)])

    async def claim_all(store: BotStore, name: str) -> list[int]:
        mine: list[int] = []
        while rows := await store.outbox.claim(16, owner=name, lease=60):
            mine += [r.id for r in rows]
        return mine

    while (await first.outbox.counts()).get("pending"):  # one may find the rest locked
        mine, theirs = await asyncio.gather(claim_all(first, "w1"), claim_all(second, "w2"))
        assert set(mine).isdisjoint(theirs)
    rows = await first.outbox.rows()
    assert {r.claimed_by for r in rows} == {"w1", "w2"}  # both took part
    assert await first.outbox.counts() == {"sending": 400}
    assert {r.attempts for r in rows} == {1}
    await first.close()
    await second.close()
