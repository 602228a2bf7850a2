"""Opening the article store's database: SQLite under ``DATA_DIR`` or PostgreSQL, migrated
on open.

``DATABASE_URL`` unset: the file ``DATA_DIR/articles.sqlite3`` (pysqlite, WAL). Set to
``postgresql://…``: ``postgresql+psycopg`` with a connection pool, tables in the schema
``newsbot_index``. Either way a synchronous engine: the index runs whole operations in
worker threads, next to FAISS and the model. Opening runs the Alembic migrations in
``index/migrations``; a file of the hand-written scheme before Alembic (``meta`` key
``schema_version`` = 1) is recognised, stamped at the first revision and upgraded in place.
A database already at the newest revision is recognised by one query, without importing
Alembic (a third of a second of every command's start).

Closing waits for the queries under way (searches in worker threads) to finish, then
closes the connections; a query begun after that raises ``DatabaseClosedError``.

Errors (``index.errors.StorageError``, one line, the URL's password never shown):
``DatabaseUnavailableError`` (wrong or unreachable URL), ``SchemaTooNewError`` and
``DatabaseClosedError``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import QueuePool

from index.errors import StorageError
from index.schema import SCHEMA

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

__all__ = [
    "SQLITE_FILE",
    "Database",
    "DatabaseClosedError",
    "DatabaseUnavailableError",
    "SchemaTooNewError",
    "database_url",
    "head_revision",
]

SQLITE_FILE = "articles.sqlite3"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
FIRST_REVISION = "0001"
LEGACY_VERSION = 1  # meta.schema_version of files from the hand-written scheme
POOL_SIZE = 8  # worker threads that query at once without opening a connection
CLOSE_WAIT_SECONDS = 30.0  # closing waits this long at most for the queries under way
log = logging.getLogger(__name__)


class DatabaseUnavailableError(StorageError):
    """Cannot connect: a wrong or unreachable DATABASE_URL."""


class SchemaTooNewError(StorageError):
    """The database was migrated by a newer version of the program."""


class DatabaseClosedError(StorageError):
    """A query was begun after the database was closed (the program is shutting down)."""


def database_url(data_dir: Path, url: str | None) -> URL:
    """The SQLAlchemy URL for DATABASE_URL (``postgresql://`` or ``postgresql+psycopg://``),
    or the SQLite file under ``data_dir`` when it is unset."""
    if not url:
        return URL.create("sqlite+pysqlite", database=str(data_dir / SQLITE_FILE))
    return postgres_url(url)


def postgres_url(url: str) -> URL:
    """DATABASE_URL as a psycopg 3 SQLAlchemy URL; one line naming the fix when it is not
    a PostgreSQL URL (the bot's store uses it too)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseUnavailableError(
            "DATABASE_URL is not a URL: use postgresql://user:password@host:5432/dbname, "
            "or unset it for SQLite under DATA_DIR"
        ) from None
    if parsed.drivername not in ("postgresql", "postgresql+psycopg", "postgres"):
        raise DatabaseUnavailableError(
            f"DATABASE_URL has the scheme {parsed.drivername!r}: use postgresql://…, "
            "or unset it for SQLite under DATA_DIR"
        )
    return parsed.set(drivername="postgresql+psycopg")


def head_revision() -> str:
    """The newest schema revision this program knows."""
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(_config()).get_current_head())


def newest_revision_file() -> str | None:
    """The revision the newest migration file names: its file name starts with its revision
    id, and ids sort in order (``0001_…``, ``0002_…``; a test checks that this is Alembic's
    head). Read from the folder, so it costs no Alembic import."""
    names = sorted(p.name for p in (MIGRATIONS / "versions").glob("[0-9]*.py"))
    return names[-1].split("_", 1)[0] if names else None


class Database:
    """A pooled synchronous engine on one backend: ``read()`` and ``write()`` give a
    connection inside a transaction (SQLite writers take the write lock up front)."""

    def __init__(self, url: URL | str, *, read_only: bool = False) -> None:
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        self.read_only = read_only
        self.schema = SCHEMA if self.dialect == "postgresql" else None
        self.path = Path(self.url.database or "") if self.dialect == "sqlite" else None
        self._gate = threading.Condition()  # counts the connections in use, for dispose
        self._in_use = 0
        self._closed = False
        if self.path is not None:
            self.engine = _sqlite_engine(self.path, read_only=read_only)
        else:
            self.engine = create_engine(
                self.url,
                pool_size=POOL_SIZE,
                max_overflow=16,
                pool_pre_ping=True,
                connect_args={"options": f"-c search_path={SCHEMA}", "connect_timeout": 10},
            ).execution_options(schema_translate_map={None: SCHEMA})

    @property
    def where(self) -> str:
        """The file, or the URL without its password: for messages."""
        if self.path is not None:
            return str(self.path)
        return self.url.set(drivername="postgresql").render_as_string(hide_password=True)

    def migrate(self) -> None:
        """Bring the schema to the newest revision; raises ``SchemaTooNewError``,
        ``DatabaseUnavailableError``."""
        if self._recorded_revisions() == [newest_revision_file()]:
            return  # up to date: no Alembic import, no lock
        from alembic import command
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        with self.write() as connection:
            if self.schema is not None:
                # Two processes starting at once: one migrates, the other waits for it (the lock
                # first: two concurrent CREATE SCHEMA IF NOT EXISTS can both try to create it)
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": self.schema}
                )
                connection.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            config = _config(connection, self.schema)
            script = ScriptDirectory.from_config(config)
            context = MigrationContext.configure(
                connection, opts={"version_table_schema": self.schema}
            )
            current = context.get_current_heads()
            if not current and self.dialect == "sqlite":
                self._adopt_legacy(connection, config)
            for revision in current:
                if not _known(script, revision):
                    raise SchemaTooNewError(
                        f"{self.where} has index schema revision {revision}, newer than this "
                        f"program's {script.get_current_head()}: upgrade the program"
                    )
            command.upgrade(config, "head")

    def _recorded_revisions(self) -> list[str] | None:
        """The revisions in Alembic's version table, in one query; None when there is no
        such table yet (a new database, or one from before Alembic)."""
        table = "alembic_version" if self.schema is None else f'"{self.schema}".alembic_version'
        with self.read() as connection:
            exists = (
                connection.exec_driver_sql(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
                ).first()
                if self.schema is None
                else connection.exec_driver_sql(
                    "SELECT to_regclass(%s)", (f"{self.schema}.alembic_version",)
                ).scalar()
            )
            if not exists:
                return None
            rows = connection.exec_driver_sql(f"SELECT version_num FROM {table}").all()
        return sorted(str(row[0]) for row in rows)

    def _adopt_legacy(self, connection: Connection, config: Config) -> None:
        """A file from the hand-written scheme: stamp it at the revision it matches."""
        from alembic import command

        tables = {
            name
            for (name,) in connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        }
        if "meta" not in tables:
            return  # a new file
        row = connection.exec_driver_sql(
            "SELECT value FROM meta WHERE key = 'schema_version'"
        ).first()
        version = int(row[0]) if row else 0
        if version > LEGACY_VERSION:
            raise SchemaTooNewError(
                f"{self.where} has schema version {version}, newer than this program's: "
                "upgrade the program"
            )
        if version == 0:  # the old scheme had made only the meta table
            connection.exec_driver_sql("DROP TABLE meta")
            return
        command.stamp(config, FIRST_REVISION)

    def revision(self) -> str | None:
        """The schema revision recorded in the database (None: not migrated by Alembic)."""
        from alembic.runtime.migration import MigrationContext

        with self.read() as connection:
            context = MigrationContext.configure(
                connection, opts={"version_table_schema": self.schema}
            )
            return context.get_current_revision()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A pooled connection (its transaction rolled back at the end)."""
        with self._in_use_while(), self.engine.connect() as connection:
            yield connection

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection in a write transaction, committed at the end unless it raises."""
        with self._in_use_while(), self.engine.connect() as connection:
            connection = connection.execution_options(sqlite_immediate=True)
            with connection.begin():
                yield connection

    @contextmanager
    def _in_use_while(self) -> Iterator[None]:
        """Counts a connection in use; refused once the database is closed."""
        with self._gate:
            if self._closed:
                raise DatabaseClosedError(f"{self.where} is closed: the index is shutting down")
            self._in_use += 1
        try:
            yield
        finally:
            with self._gate:
                self._in_use -= 1
                if not self._in_use:
                    self._gate.notify_all()

    def unavailable(self, error: BaseException) -> DatabaseUnavailableError:
        """The error for a connection that failed, in one line without the password."""
        reason = " ".join(str(getattr(error, "orig", None) or error).split())
        if self.url.password:
            reason = reason.replace(str(self.url.password), "***")
        return DatabaseUnavailableError(
            f"cannot use DATABASE_URL {self.where} ({reason}): check that PostgreSQL is "
            "running there and the URL (host, port, database, user, password)"
        )

    def dispose(self, wait: float = CLOSE_WAIT_SECONDS) -> None:
        """Close: refuse new queries, wait up to ``wait`` seconds for those under way (a
        search in a worker thread) to finish, then close the pooled connections."""
        with self._gate:
            self._closed = True
            finished = self._gate.wait_for(lambda: not self._in_use, wait)
            if not finished:
                log.warning(
                    "Closing %s with %d queries still running after %g s",
                    self.where,
                    self._in_use,
                    wait,
                )
        self.engine.dispose()


def _config(connection: Connection | None = None, schema: str | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    config.attributes["version_table_schema"] = schema
    return config


def _known(script: ScriptDirectory, revision: str) -> bool:
    from alembic.util import CommandError

    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


def _sqlite_engine(path: Path, *, read_only: bool) -> Engine:
    """pysqlite on one file: WAL, foreign keys, a 30 s busy wait; transactions begin
    explicitly, ``IMMEDIATE`` for writers (so two writers never deadlock)."""
    uri = f"file:{quote(str(path))}?mode={'ro' if read_only else 'rwc'}"

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(
            uri, uri=True, isolation_level=None, timeout=30, check_same_thread=False
        )  # pooled: used by one thread at a time, closed by any
        try:
            if not read_only:
                connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA synchronous=NORMAL")
        except BaseException:  # not a database: the first statement says so
            connection.close()
            raise
        return connection

    engine = create_engine(
        "sqlite+pysqlite://",
        creator=connect,
        poolclass=QueuePool,
        pool_size=POOL_SIZE,
        max_overflow=16,
    )

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def unwrap(error: BaseException) -> BaseException:
    """The driver's exception inside SQLAlchemy's wrapper."""
    if isinstance(error, DBAPIError) and error.orig is not None:
        return error.orig
    return error
