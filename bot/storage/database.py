"""Opening the bot's database: SQLite under ``DATA_DIR`` or PostgreSQL, migrated on open.

``DATABASE_URL`` unset: ``sqlite+aiosqlite`` on ``DATA_DIR/bot.sqlite3`` (WAL). Set to
``postgresql://…``: ``postgresql+psycopg`` (pooled), tables in the schema ``newsbot_bot``.
Opening runs the Alembic migrations in ``bot/migrations``. A file from the hand-written
scheme before Alembic (``PRAGMA user_version`` 1 or 2) is recognised, stamped at the first
revision and upgraded in place.

Errors (one line each, saying what to do; a URL's password is never shown):
``StorageError`` ─┬─ ``DatabaseUnavailableError``: cannot connect, not a database, bad URL
                  └─ ``SchemaTooNewError``: written by a newer version of the bot
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import URL, Connection, event, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bot.storage import sqlite
from bot.storage.schema import ask_prompts
from index import database as index_database
from index.database import postgres_url

__all__ = [
    "SCHEMA",
    "SQLITE_FILE",
    "Database",
    "DatabaseUnavailableError",
    "SchemaTooNewError",
    "StorageError",
    "database_url",
    "head_revision",
    "sqlite_url",
]

SCHEMA = "newsbot_bot"  # the bot's PostgreSQL schema
SQLITE_FILE = "bot.sqlite3"
MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
FIRST_REVISION = "0001"
# PRAGMA user_version of files made before Alembic, and what Alembic-managed files get:
# a bot from before Alembic refuses them as "newer than this bot" instead of using them.
LEGACY_VERSIONS = (1, 2)
ALEMBIC_USER_VERSION = 100


class StorageError(Exception):
    """The bot's database cannot be used; the message says why and what to do."""


class DatabaseUnavailableError(StorageError):
    """Cannot connect (wrong or unreachable URL), or the file is not a database."""


class SchemaTooNewError(StorageError):
    """The database was migrated by a newer version of the bot."""


def database_url(data_dir: Path, url: str | None) -> URL:
    """The SQLAlchemy URL for DATABASE_URL (``postgresql://`` or ``postgresql+psycopg://``),
    or the SQLite file under ``data_dir`` when it is unset."""
    if not url:
        return sqlite_url(data_dir / SQLITE_FILE)
    try:
        return postgres_url(url)
    except index_database.DatabaseUnavailableError as error:
        raise DatabaseUnavailableError(str(error)) from None


def head_revision() -> str:
    """The newest revision of the bot's schema that this code knows."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "bot/migrations/versions is empty"
    return head


def _alembic_config() -> Config:
    """Alembic's configuration, built in code: no alembic.ini at run time."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def sqlite_url(path: Path) -> URL:
    """The SQLAlchemy URL of a SQLite file."""
    return URL.create("sqlite+aiosqlite", database=str(path))


class Database:
    """An async engine on one backend; ``open()`` migrates (once), ``read()`` and
    ``write()`` give a connection inside a transaction."""

    def __init__(self, url: URL | str, *, schema: str = SCHEMA) -> None:
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        self.schema = schema if self.dialect == "postgresql" else None
        self.clock: Callable[[], float] = time.time  # tests move time forward
        self._opened = False
        self._open_lock = asyncio.Lock()
        self._locks: dict[str, asyncio.Lock] = {}  # `lock` on SQLite
        if self.dialect == "sqlite":
            path = Path(self.url.database or "")
            path.parent.mkdir(parents=True, exist_ok=True)
            engine = _sqlite_engine(self.url, path, "IMMEDIATE")
            autocommit = _sqlite_engine(self.url, path, None)
            # One writer at a time in this process (other processes wait on the file lock)
            self._write_lock: asyncio.Lock | None = asyncio.Lock()
        else:
            engine = _postgresql_engine(self.url, schema)
            # A pool of its own: switching a pooled connection to autocommit and back costs
            # a round trip each time
            autocommit = _postgresql_engine(self.url, schema, isolation_level="AUTOCOMMIT")
            self._write_lock = None
        self.engine: AsyncEngine = engine
        # Single statements, reads too: no BEGIN/COMMIT round trips around them
        self._autocommit = autocommit

    @property
    def where(self) -> str:
        """The database for messages: the SQLite path, or the URL without its password."""
        if self.dialect == "sqlite":
            return str(self.url.database)
        return self.url.set(drivername="postgresql").render_as_string(hide_password=True)

    async def open(self) -> None:
        """Connect and migrate to the newest revision (once); raises `StorageError`."""
        async with self._open_lock:
            if self._opened:
                return
            try:
                async with _migration_lock(), self.engine.begin() as conn:
                    await conn.run_sync(self._migrate)
            except DBAPIError as error:
                raise DatabaseUnavailableError(self._unavailable(error)) from None
            except OSError as error:
                raise DatabaseUnavailableError(self._unavailable(error)) from None
            self._opened = True

    async def close(self) -> None:
        await self.engine.dispose()
        await self._autocommit.dispose()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reading, each statement on its own."""
        await self.open()
        async with self._autocommit.connect() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a write transaction, committed at the end unless it raises."""
        await self.open()
        async with self._writing(), self.engine.begin() as conn:
            yield conn

    async def write_one(self, statement: Any) -> int:
        """Run one writing statement (atomic on its own, no transaction around it, so one
        round trip); returns the rows it changed."""
        await self.open()
        async with self._writing(), self._autocommit.connect() as conn:
            return (await conn.execute(statement)).rowcount

    @asynccontextmanager
    async def lock(self, name: str) -> AsyncIterator[None]:
        """Held by one holder at a time: across every process on PostgreSQL (an advisory
        lock, released with its transaction, so also when a process dies), within this
        process on SQLite."""
        await self.open()
        if self.schema is None:
            async with self._locks.setdefault(name, asyncio.Lock()):
                yield
            return
        async with self.engine.begin() as conn:
            key = {"name": f"{self.schema}:{name}"}
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), key)
            yield

    async def write_rows(self, statement: Any) -> list[Any]:
        """Run one writing statement with RETURNING (atomic on its own, one round trip);
        returns the rows it returned."""
        await self.open()
        async with self._writing(), self._autocommit.connect() as conn:
            return list((await conn.execute(statement)).all())

    def _writing(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return self._write_lock or contextlib.nullcontext()

    async def rows(self, statement: Any) -> list[Any]:
        async with self.read() as conn:
            return list((await conn.execute(statement)).all())

    async def scalar(self, statement: Any) -> Any:
        async with self.read() as conn:
            return (await conn.execute(statement)).scalar()

    # -- migrations -----------------------------------------------------------------------

    def _migrate(self, connection: Connection) -> None:
        if self.dialect == "sqlite":  # DDL too inside one transaction; other processes wait
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        if self.schema is not None:
            # Two processes starting at once: one migrates, the other waits for it (the lock
            # first: two concurrent CREATE SCHEMA IF NOT EXISTS can both try to create it)
            connection.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": self.schema}
            )
            connection.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        config = _alembic_config()
        config.attributes["connection"] = connection
        config.attributes["version_table_schema"] = self.schema
        script = ScriptDirectory.from_config(config)
        context = MigrationContext.configure(connection, opts={"version_table_schema": self.schema})
        current = context.get_current_heads()
        if not current and self.dialect == "sqlite":
            self._adopt_legacy(connection, config)
        for revision in current:
            try:
                known = script.get_revision(revision) is not None
            except CommandError:
                known = False
            if not known:
                raise SchemaTooNewError(
                    f"{self.where} has bot schema revision {revision}, newer than this bot's "
                    f"{script.get_current_head()}: upgrade the bot or use another database"
                )
        command.upgrade(config, "head")
        if self.dialect == "sqlite":
            connection.exec_driver_sql(f"PRAGMA user_version = {ALEMBIC_USER_VERSION}")

    def _adopt_legacy(self, connection: Connection, config: Config) -> None:
        """A file from the hand-written scheme: bring it to today's schema, stamp it."""
        version = connection.exec_driver_sql("PRAGMA user_version").scalar() or 0
        if version == 0:
            return
        if version not in LEGACY_VERSIONS:
            raise SchemaTooNewError(
                f"{self.where} has schema version {version}, newer than this bot's: "
                "upgrade the bot or point DATA_DIR elsewhere"
            )
        if version == 1:  # the one step of the old scheme after version 1
            ask_prompts.create(connection)
        command.stamp(config, FIRST_REVISION)

    def _unavailable(self, error: BaseException) -> str:
        reason = " ".join(str(getattr(error, "orig", None) or error).split())
        if self.url.password:
            reason = reason.replace(str(self.url.password), "***")
        if self.dialect == "sqlite":
            return (
                f"{self.where} is not a usable database ({reason}): point DATA_DIR at a "
                "writable folder, or move the file aside"
            )
        return (
            f"cannot use DATABASE_URL {self.where} ({reason}): check that PostgreSQL is "
            "running there and the URL (host, port, database, user, password)"
        )


_MIGRATION_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _migration_lock() -> asyncio.Lock:
    """Alembic keeps its running context in module globals: one migration at a time in
    this process (other processes are held off by the database's own locks)."""
    loop = asyncio.get_running_loop()
    if loop not in _MIGRATION_LOCKS:
        _MIGRATION_LOCKS[loop] = asyncio.Lock()
    return _MIGRATION_LOCKS[loop]


def _postgresql_engine(url: URL, schema: str, **options: Any) -> AsyncEngine:
    """A pooled psycopg engine whose tables (declared without a schema) live in ``schema``."""
    return create_async_engine(url, pool_size=5, max_overflow=5, **options).execution_options(
        schema_translate_map={None: schema}
    )


def _sqlite_engine(url: URL, path: Path, isolation: str | None) -> AsyncEngine:
    """An engine on the file whose connections begin transactions as ``isolation`` says
    (``IMMEDIATE``, or ``None``: each statement on its own)."""
    engine = create_async_engine(
        url,
        async_creator=partial(sqlite.connect, path, timeout=30, isolation_level=isolation),
        **({} if isolation else {"isolation_level": "AUTOCOMMIT"}),
    )
    _sqlite_transactions(engine)
    return engine


def _sqlite_transactions(engine: AsyncEngine) -> None:
    """WAL, foreign keys, a 30 s busy wait. The driver begins a transaction itself, as
    ``BEGIN IMMEDIATE`` (taking the write lock up front, so two writers never deadlock),
    just before the first INSERT, UPDATE or DELETE; reads run outside transactions. This
    costs no extra round trip to the driver's thread; a write transaction that reads first
    is protected by ``Database``'s lock within the process."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
