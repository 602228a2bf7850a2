"""The article store's tables, declared once for SQLite and PostgreSQL (SQLAlchemy Core).

The tables carry no schema: on PostgreSQL the engine maps them into ``newsbot_index``
(``schema_translate_map`` and the connection's ``search_path``); on SQLite the file
``DATA_DIR/articles.sqlite3`` plays that part. Migrations live in ``index/migrations``.

The keyword index differs by backend (``index/keywords.py``): SQLite keeps an FTS5 virtual
table ``passages_fts`` (created by the migrations, not declared here); PostgreSQL keeps the
table ``passage_words`` below, a weighted ``tsvector`` per passage with a GIN index.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "articles",
    "changes",
    "meta",
    "metadata",
    "passage_words",
    "passages",
]

SCHEMA = "newsbot_index"  # the PostgreSQL schema of the article store

metadata = MetaData()
# SQLite's INTEGER PRIMARY KEY is the rowid (the FTS5 table's rowid follows it);
# PostgreSQL gets a 64-bit identity.
PassageId = BigInteger().with_variant(Integer(), "sqlite")

meta = Table(
    "meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text),
)

articles = Table(
    "articles",
    metadata,
    Column("id", Text, primary_key=True),
    Column("title", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("url", Text),
    Column("outlet", Text),
    Column("author", Text),
    Column("published", Text),  # ISO date, compared as text
    Column("source", Text),
    Column("content_hash", Text, nullable=False),
    Column("ingested_at", Text, nullable=False),  # ISO timestamps, UTC
    Column("updated_at", Text, nullable=False),
)

passages = Table(
    "passages",
    metadata,
    Column("id", PassageId, primary_key=True, autoincrement=True),
    Column("article_id", Text, ForeignKey("articles.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("start", Integer, nullable=False),
    Column("end", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("sentences", Text, nullable=False),  # JSON list of [start, end] spans
    Column("vector", LargeBinary, nullable=False),  # float32
    Column("sentence_vectors", LargeBinary, nullable=False),  # float16, one row per sentence
    sqlite_autoincrement=True,
)

passage_words = Table(  # PostgreSQL only
    "passage_words",
    metadata,
    Column(
        "passage_id",
        PassageId,
        ForeignKey("passages.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("document", TSVECTOR, nullable=False),  # headline weighted A, body B
)

changes = Table(  # the change log every process follows (index/changes.py)
    "changes",
    metadata,
    Column("seq", PassageId, primary_key=True, autoincrement=True),
    Column("kind", Text, nullable=False),  # "passages" or "reindex"
    Column("added", Text, nullable=False),  # JSON list of passage ids
    Column("removed", Text, nullable=False),  # JSON list of passage ids
    Column("created_at", Text, nullable=False),  # ISO timestamp, UTC
    sqlite_autoincrement=True,
)

SCHEMA_VERSION = "0003"  # the newest migration (index/migrations); a test keeps them equal
