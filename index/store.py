"""The article store, the source of truth: articles, passages (with their vectors), a
keyword index and ``meta``, on SQLite (``DATA_DIR/articles.sqlite3``) or PostgreSQL
(``DATABASE_URL``). The tables are declared once (``index/schema.py``), opening migrates
them (``index/database.py``), and the keyword index is the backend's own
(``index/keywords.py``: FTS5 or ``tsvector``).

The FAISS index is derived from the vectors kept here and can always be rebuilt from them.
Every write appends an entry to the change log (``index/changes.py``) in its transaction,
so every process can follow the writes of the others.

A damaged SQLite database is never written to: opening runs SQLite's ``quick_check``,
``check`` runs the full ``integrity_check``, and once either finds a problem (or SQLite
reports corruption during a write) every write raises ``DamagedDatabaseError``.
PostgreSQL looks after its own integrity; ``check`` there only connects.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import URL, Connection, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from index.changes import KEEP_DAYS, KEEP_ENTRIES, Change, ChangeLog
from index.database import Database, unwrap
from index.errors import DamagedDatabaseError, StorageError
from index.keywords import keyword_index
from index.models import Article, ArticleInfo, Passage, SearchFilters
from index.schema import SCHEMA_VERSION, articles, changes, meta, passages

__all__ = [
    "SCHEMA_VERSION",
    "ChangeState",
    "Counts",
    "PassageRow",
    "Store",
    "StoredArticle",
    "Written",
]

_DAMAGE_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
CHECK_ROWS = 20  # problems listed at most by one integrity check


@dataclass(frozen=True, slots=True)
class PassageRow:
    """A passage with the metadata of its article, as search needs it."""

    id: int
    article_id: str
    title: str
    outlet: str | None
    author: str | None
    published: date | None
    url: str | None
    text: str
    sentences: list[tuple[int, int]]
    sentence_vectors: np.ndarray


@dataclass(frozen=True, slots=True)
class Counts:
    articles: int
    outlets: int
    passages: int
    id_sum: int  # a cheap checksum of the passage ids, compared with the vector index's
    last_ingest: datetime | None


@dataclass(frozen=True, slots=True)
class Written:
    """What one write did to the passages, and its change log entry's number."""

    removed: list[int]
    added: list[int]
    seq: int


@dataclass(frozen=True, slots=True)
class ChangeState:
    """Where the change log stands: its id, newest entry, and newest pruned entry."""

    log_id: str | None
    head: int
    pruned_to: int


@dataclass(frozen=True, slots=True)
class StoredArticle:
    """An article's row and its passages' rows (vectors as stored bytes), as copied
    between stores without re-embedding. A passage row without an id gets a new one."""

    row: dict[str, Any]
    passages: list[dict[str, Any]]


class Store:
    """Thread-safe access to the database through a connection pool."""

    def __init__(self, location: Path | URL | str, *, read_only: bool = False) -> None:
        """Open (and migrate) the database: a SQLite file's path, or a PostgreSQL URL.
        Raises ``DamagedDatabaseError`` when SQLite's ``quick_check`` finds the file
        damaged, ``DatabaseUnavailableError`` when PostgreSQL cannot be reached, and
        closes it again. ``read_only`` opens an existing SQLite file for inspection
        only: no check on opening, no upgrade, no writes."""
        if isinstance(location, Path):
            location = URL.create("sqlite+pysqlite", database=str(location))
        self.database = Database(location, read_only=read_only)
        self.dialect = self.database.dialect
        self.read_only = read_only
        self.keywords = keyword_index(self.dialect)
        self.changes = ChangeLog(self.dialect)
        self.damage: str | None = None  # the first problem found; set, every write is refused
        if read_only:
            return
        if self.database.path is not None:
            self.database.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            problems = self.check(full=False)
            if problems:
                raise DamagedDatabaseError(self.where, problems[0])
            self.database.migrate()
        except DBAPIError as error:
            self.close()
            if self.dialect == "sqlite":
                raise unwrap(error) from None  # the driver's own error, as callers know it
            raise self.database.unavailable(error) from None
        except BaseException:
            self.close()
            raise

    @property
    def where(self) -> str:
        """The file, or the URL without its password: for messages."""
        return self.database.where

    @property
    def path(self) -> Path | None:
        """The SQLite file (None on PostgreSQL)."""
        return self.database.path

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.database.read() as db:
            yield db

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction; refused with ``DamagedDatabaseError`` on a damaged database
        (and the database counts as damaged once SQLite reports corruption inside one)."""
        if self.damage:
            raise DamagedDatabaseError(self.where, self.damage)
        try:
            with self.database.write() as db:
                yield db
        except DBAPIError as error:
            if _damage_code(error) not in _DAMAGE_CODES:
                raise
            self.damage = str(unwrap(error))
            raise DamagedDatabaseError(self.where, self.damage) from None

    def check(self, *, full: bool = True) -> list[str]:
        """Problems SQLite's ``integrity_check`` (or the faster ``quick_check``) finds, at
        most ``CHECK_ROWS``; empty when the database is sound. A problem marks it damaged.
        On PostgreSQL: connects, and finds nothing."""
        if self.dialect != "sqlite":
            with self.read() as db:
                db.exec_driver_sql("SELECT 1")
            return []
        pragma = "integrity_check" if full else "quick_check"
        try:
            with self.read() as db:
                rows = db.exec_driver_sql(f"PRAGMA {pragma}({CHECK_ROWS})").all()
            problems = [str(row[0]) for row in rows if row[0] != "ok"]
        except DBAPIError as error:
            if _damage_code(error) not in _DAMAGE_CODES:
                raise
            problems = [str(unwrap(error))]
        if problems:
            self.damage = problems[0]
        return problems

    def tables(self) -> set[str]:
        """The names of the tables in the database."""
        with self.read() as db:
            return set(db.dialect.get_table_names(db, schema=self.database.schema))

    def backup(self, destination: Path) -> None:
        """A consistent copy of a SQLite database (SQLite's online backup API, so writers
        may go on meanwhile), written aside and renamed into place, as one file."""
        if self.damage:
            raise DamagedDatabaseError(self.where, self.damage)
        if self.dialect != "sqlite":
            raise StorageError(
                "backup copies the SQLite file; on PostgreSQL use pg_dump --schema=newsbot_index"
            )
        aside = destination.with_name(destination.name + ".tmp")
        aside.unlink(missing_ok=True)
        copy = sqlite3.connect(aside, isolation_level=None)
        source = self.database.engine.raw_connection()
        try:
            source.driver_connection.backup(copy)  # type: ignore[union-attr]
            copy.execute("PRAGMA journal_mode=DELETE")  # no -wal file beside the copy
        finally:
            copy.close()
            source.close()
        with open(aside, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(aside, destination)

    def close(self) -> None:
        self.database.dispose()

    # -- meta -----------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self.read() as db:
            return db.execute(select(meta.c.value).where(meta.c.key == key)).scalar()

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            self._upsert(db, meta, {"key": key, "value": value}, ["key"])

    def _upsert(self, db: Connection, table: Any, row: dict[str, Any], key: list[str]) -> None:
        statement = (postgresql if self.dialect == "postgresql" else sqlite).insert(table)
        changed = {c: statement.excluded[c] for c in row if c not in key}
        db.execute(statement.values(row).on_conflict_do_update(index_elements=key, set_=changed))

    # -- writing --------------------------------------------------------------------------

    def content_hash(self, article_id: str) -> str | None:
        with self.read() as db:
            return db.execute(
                select(articles.c.content_hash).where(articles.c.id == article_id)
            ).scalar()

    def replace_article(
        self,
        article: Article,
        content_hash: str,
        passages_: Sequence[Passage],
        vectors: np.ndarray,
        sentence_vectors: Sequence[np.ndarray],
    ) -> Written:
        """Insert or replace an article and all its passages in one transaction."""
        now = _now()
        row = {
            "id": article.id,
            "title": article.title,
            "text": article.text,
            "url": article.url,
            "outlet": article.outlet,
            "author": article.author,
            "published": article.published.isoformat() if article.published else None,
            "source": article.source,
            "content_hash": content_hash,
            "ingested_at": now,
            "updated_at": now,
        }
        rows = [
            {
                "position": passage.position,
                "start": passage.start,
                "end": passage.end,
                "text": passage.text,
                "sentences": json.dumps(passage.sentences),
                "vector": vector.astype(np.float32).tobytes(),
                "sentence_vectors": sentence_vectors_.astype(np.float16).tobytes(),
            }
            for passage, vector, sentence_vectors_ in zip(
                passages_, vectors, sentence_vectors, strict=True
            )
        ]
        with self.transaction() as db:
            removed, added = self._put(db, [StoredArticle(row, rows)], keep_ingested_at=True)
            return Written(removed, added, self.changes.append(db, added, removed))

    def put_articles(self, stored: Sequence[StoredArticle]) -> list[int]:
        """Insert or replace whole articles, rows as given (vectors included), in one
        transaction; returns the new passage ids."""
        if not stored:
            return []
        with self.transaction() as db:
            removed, added = self._put(db, stored, keep_ingested_at=False)
            self.changes.append(db, added, removed)
            return added

    def _put(
        self, db: Connection, stored: Sequence[StoredArticle], *, keep_ingested_at: bool
    ) -> tuple[list[int], list[int]]:
        """Articles written whole in a few statements (each one batched over all of them):
        (removed passage ids, new passage ids). The article rows are written first: on
        PostgreSQL that waits for another process writing the same article until it commits
        (in id order, so two writers never wait for each other), and the passages deleted
        next are then the ones it wrote, never left beside these."""
        stored = sorted(stored, key=lambda a: str(a.row["id"]))
        excluded = {"id", "ingested_at"} if keep_ingested_at else {"id"}
        for columns in {tuple(a.row) for a in stored}:  # one upsert per set of columns
            statement = (postgresql if self.dialect == "postgresql" else sqlite).insert(articles)
            db.execute(
                statement.on_conflict_do_update(
                    index_elements=["id"],
                    set_={c: statement.excluded[c] for c in columns if c not in excluded},
                ),
                [a.row for a in stored if tuple(a.row) == columns],
            )
        removed = self._delete(db, [a.row["id"] for a in stored], keep_article=True)
        rows = [{**p, "article_id": a.row["id"]} for a in stored for p in a.passages]
        if not rows:
            return removed, []
        new_ids = list(
            db.execute(
                passages.insert().returning(passages.c.id, sort_by_parameter_order=True), rows
            ).scalars()
        )
        titles = [a.row["title"] for a in stored for _ in a.passages]
        self.keywords.add(
            db,
            [(i, t, p["text"]) for i, t, p in zip(new_ids, titles, rows, strict=True)],
        )
        return removed, new_ids

    def delete_article(self, article_id: str) -> Written:
        """Delete an article and its passages."""
        with self.transaction() as db:
            removed = self._delete(db, [article_id], keep_article=False)
            return Written(removed, [], self.changes.append(db, removed=removed))

    def _delete(self, db: Connection, article_ids: list[str], *, keep_article: bool) -> list[int]:
        owned = passages.c.article_id.in_(article_ids)
        ids = list(db.execute(select(passages.c.id).where(owned)).scalars())
        self.keywords.remove(db, ids)
        if ids:
            db.execute(delete(passages).where(owned))
        if not keep_article:
            db.execute(delete(articles).where(articles.c.id.in_(article_ids)))
        return ids

    def replace_vectors(
        self, rows: Iterator[tuple[int, np.ndarray, np.ndarray]], *, last: bool = False
    ) -> int | None:
        """Overwrite passage and sentence vectors (after a re-embedding), one transaction;
        ``last``: the re-embedding's last batch, which appends the ``reindex`` entry to the
        change log (returns its number)."""
        values = [
            {
                "passage_id": i,
                "v": v.astype(np.float32).tobytes(),
                "s": s.astype(np.float16).tobytes(),
            }
            for i, v, s in rows
        ]
        if not values and not last:
            return None
        with self.transaction() as db:
            if values:
                db.execute(
                    update(passages)
                    .where(passages.c.id == bindparam("passage_id"))
                    .values(vector=bindparam("v"), sentence_vectors=bindparam("s")),
                    values,
                )
            return self.changes.append(db, kind="reindex") if last else None

    # -- the change log -------------------------------------------------------------------

    def changes_after(self, seq: int, limit: int) -> tuple[list[Change], int]:
        """(the first ``limit`` change log entries after ``seq``, the newest pruned entry)."""
        with self.database.engine.connect() as db:
            if self.dialect == "postgresql":  # one statement: no transaction around it
                db = db.execution_options(isolation_level="AUTOCOMMIT")
            return self.changes.after(db, seq, limit)

    def change_state(self) -> ChangeState:
        with self.read() as db:
            return ChangeState(
                self.changes.log_id(db), self.changes.head(db), self.changes.pruned_to(db)
            )

    def pending_changes(self, seq: int) -> tuple[int, int]:
        """(how many change log entries come after ``seq``, the newest pruned entry)."""
        with self.read() as db:
            return self.changes.pending(db, seq), self.changes.pruned_to(db)

    def prune_changes(
        self, *, older_than: timedelta = timedelta(days=KEEP_DAYS), keep: int = KEEP_ENTRIES
    ) -> int:
        """Delete the change log entries older than ``older_than`` and all but the newest
        ``keep`` (never the newest); returns how many."""
        with self.transaction() as db:
            return self.changes.prune(db, older_than=older_than, keep=keep)

    def vectors(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of those of ``ids`` that are stored, in id order."""
        found: list[tuple[int, bytes]] = []
        query = select(passages.c.id, passages.c.vector).where(
            passages.c.id.in_(bindparam("ids", expanding=True))
        )
        ordered = sorted(int(i) for i in ids)
        with self.read() as db:
            for start in range(0, len(ordered), 5000):
                found += db.execute(query, {"ids": ordered[start : start + 5000]}).all()
        found.sort()
        if not found:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        vectors = np.frombuffer(b"".join(bytes(v) for _, v in found), dtype=np.float32)
        return np.array([i for i, _ in found], dtype=np.int64), vectors.reshape(len(found), -1)

    # -- reading --------------------------------------------------------------------------

    def article(self, article_id: str) -> Article | None:
        with self.read() as db:
            row = db.execute(
                select(
                    articles.c.id,
                    articles.c.title,
                    articles.c.text,
                    articles.c.url,
                    articles.c.outlet,
                    articles.c.author,
                    articles.c.published,
                    articles.c.source,
                ).where(articles.c.id == article_id)
            ).first()
        if row is None:
            return None
        article_id, title, text, url, outlet, author, published, source = row
        return Article(article_id, title, text, url, outlet, author, _date(published), source)

    def find_article_id(self, id_or_url: str) -> str | None:
        """An article id from an id, an id prefix (8+ characters) or the article's URL."""
        from index.formats import article_id_for_url

        if "://" in id_or_url:
            id_or_url = article_id_for_url(id_or_url)
        with self.read() as db:
            found = db.execute(select(articles.c.id).where(articles.c.id == id_or_url)).scalar()
            if found is None and len(id_or_url) >= 8:
                prefixed = db.execute(
                    select(articles.c.id)
                    .where(articles.c.id.startswith(id_or_url, autoescape=True))
                    .limit(2)
                ).scalars()
                matches = list(prefixed)
                found = matches[0] if len(matches) == 1 else None
        return str(found) if found else None

    def article_info(self, article_id: str) -> ArticleInfo | None:
        infos = self._infos(_info_query().where(articles.c.id == article_id))
        return infos[0] if infos else None

    def latest(self, limit: int) -> list[ArticleInfo]:
        day = func.coalesce(articles.c.published, func.substr(articles.c.ingested_at, 1, 10))
        return self._infos(
            _info_query().order_by(day.desc(), articles.c.ingested_at.desc()).limit(limit)
        )

    def _infos(self, query: Any) -> list[ArticleInfo]:
        with self.read() as db:
            rows = db.execute(query).all()
        return [
            ArticleInfo(
                id=r[0],
                title=r[1],
                url=r[2],
                outlet=r[3],
                author=r[4],
                published=_date(r[5]),
                ingested_at=datetime.fromisoformat(r[6]),
                passages=r[7],
            )
            for r in rows
        ]

    def sources(self) -> list[tuple[str, int]]:
        outlet = func.coalesce(articles.c.outlet, "unknown outlet").label("outlet")
        count = func.count().label("n")
        with self.read() as db:
            rows = db.execute(
                select(outlet, count).group_by(outlet).order_by(count.desc(), outlet)
            ).all()
        return [(str(name), int(n)) for name, n in rows]

    def counts(self) -> Counts:
        with self.read() as db:
            articles_, outlets, last = db.execute(
                select(
                    func.count(),
                    func.count(articles.c.outlet.distinct()),
                    func.max(articles.c.updated_at),
                )
            ).one()
            passages_, id_sum = db.execute(
                select(func.count(), func.coalesce(func.sum(passages.c.id), 0))
            ).one()
        return Counts(
            int(articles_),
            int(outlets),
            int(passages_),
            int(id_sum),
            datetime.fromisoformat(last) if last else None,
        )

    def passages_at_head(self) -> tuple[int, int, int]:
        """(passages, the sum of their ids, the change log's newest entry) in one statement,
        so one snapshot: the passages as of that entry."""
        head = select(func.coalesce(func.max(changes.c.seq), 0)).scalar_subquery()
        with self.read() as db:
            count, id_sum, seq = db.execute(
                select(func.count(), func.coalesce(func.sum(passages.c.id), 0), head).select_from(
                    passages
                )
            ).one()
        return int(count), int(id_sum), int(seq)

    def passage_ids(self) -> list[int]:
        with self.read() as db:
            return list(db.execute(select(passages.c.id).order_by(passages.c.id)).scalars())

    def iter_vectors(self, batch: int = 5000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) in batches, for rebuilding the FAISS index without re-embedding."""
        last = 0
        query = (
            select(passages.c.id, passages.c.vector)
            .where(passages.c.id > bindparam("last"))
            .order_by(passages.c.id)
            .limit(bindparam("batch"))
        )
        while True:
            with self.read() as db:
                rows = db.execute(query, {"last": last, "batch": batch}).all()
            if not rows:
                return
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
            yield ids, vectors.reshape(len(rows), -1)
            last = rows[-1][0]

    def iter_passages_for_embedding(
        self, batch: int = 512
    ) -> Iterator[list[tuple[int, str, str, list[tuple[int, int]]]]]:
        """(id, article title, passage text, sentence spans) in batches, for re-embedding."""
        last = 0
        query = (
            select(passages.c.id, articles.c.title, passages.c.text, passages.c.sentences)
            .join(articles, articles.c.id == passages.c.article_id)
            .where(passages.c.id > bindparam("last"))
            .order_by(passages.c.id)
            .limit(bindparam("batch"))
        )
        while True:
            with self.read() as db:
                rows = db.execute(query, {"last": last, "batch": batch}).all()
            if not rows:
                return
            yield [(r[0], r[1], r[2], [tuple(s) for s in json.loads(r[3])]) for r in rows]
            last = rows[-1][0]

    def iter_stored_articles(
        self, batch: int = 200, *, with_ids: bool = False
    ) -> Iterator[list[StoredArticle]]:
        """Every article with its passages' rows, ``batch`` articles at a time, by id
        (``with_ids``: the passage rows keep their ids)."""
        last = ""
        columns = [c for c in passages.c if c.name != "article_id" and (with_ids or c.name != "id")]
        while True:
            with self.read() as db:
                rows = [
                    dict(r)
                    for r in db.execute(
                        select(articles)
                        .where(articles.c.id > last)
                        .order_by(articles.c.id)
                        .limit(batch)
                    ).mappings()
                ]
                if not rows:
                    return
                owned: dict[str, list[dict[str, Any]]] = {r["id"]: [] for r in rows}
                for passage in db.execute(
                    select(passages.c.article_id, *columns)
                    .where(passages.c.article_id.in_(list(owned)))
                    .order_by(passages.c.id)
                ).mappings():
                    row = dict(passage)
                    row["vector"] = bytes(row["vector"])
                    row["sentence_vectors"] = bytes(row["sentence_vectors"])
                    owned[row.pop("article_id")].append(row)
            yield [StoredArticle(r, owned[r["id"]]) for r in rows]
            last = rows[-1]["id"]

    def passages(self, ids: Sequence[int]) -> dict[int, PassageRow]:
        if not ids:
            return {}
        # On the hot path of every search: the driver's SQL as is, no statement to compile
        args: tuple[object, ...]
        if self.dialect == "sqlite":
            sql, args = _PASSAGES + "IN (" + ",".join("?" * len(ids)) + ")", tuple(ids)
        else:
            sql, args = _PASSAGES + "= ANY(%s)", ([int(i) for i in ids],)
        with self.read() as db:
            if self.dialect == "sqlite":
                rows = db.exec_driver_sql(sql, args).all()
            else:  # binary results: the vectors' bytes as they are, not as hex text
                cursor = db.connection.driver_connection.cursor(binary=True)  # type: ignore[union-attr]
                rows = cursor.execute(sql, args).fetchall()
        if not rows:
            return {}
        # Decoded all at once, not row by row: one JSON document for every row's spans and
        # one float16 -> float32 conversion for every row's vectors, which each row views.
        spans = json.loads("[" + ",".join(r[8] for r in rows) + "]")
        counts = [len(s) for s in spans]
        packed = np.frombuffer(b"".join(r[9] for r in rows), dtype=np.float16)
        vectors = packed.astype(np.float32).reshape(sum(counts), -1)
        ends = np.cumsum(counts).tolist()
        result = {}
        for r, row_spans, end, count in zip(rows, spans, ends, counts, strict=True):
            result[r[0]] = PassageRow(
                id=r[0],
                article_id=r[1],
                title=r[2],
                outlet=r[3],
                author=r[4],
                published=_date(r[5]),
                url=r[6],
                text=r[7],
                sentences=[(a, b) for a, b in row_spans],
                sentence_vectors=vectors[end - count : end],
            )
        return result

    def article_passage_ids(self, article_id: str) -> list[int]:
        """An article's passage ids in reading order."""
        with self.read() as db:
            return list(
                db.execute(
                    select(passages.c.id)
                    .where(passages.c.article_id == article_id)
                    .order_by(passages.c.position)
                ).scalars()
            )

    def keyword_search(
        self,
        words: Sequence[str],
        limit: int,
        filters: SearchFilters | None,
        weights: tuple[float, float],
        total: int = 0,
    ) -> list[tuple[int, float]]:
        """(passage id, keyword score: higher is better) of passages holding any of the
        words, headline and body weighted as given; with ``total``, the passages in the
        index, words common to many of them are left out of the match (index/keywords.py)."""
        if not words:
            return []
        with self.read() as db:
            return self.keywords.search(db, words, limit, filters, weights, total)

    def words_found(self, words: Sequence[str], passage_id: int) -> int:
        """How many of the words (stemmed as the keyword index stems) the passage contains."""
        with self.read() as db:
            return self.keywords.words_found(db, words, passage_id)

    def vocabulary(self) -> list[tuple[str, int]]:
        """Every word of the keyword index (stemmed as the index keeps it: Porter on SQLite,
        the english snowball stemmer on PostgreSQL) with the number of passages holding it."""
        with self.read() as db:
            return self.keywords.vocabulary(db)

    def keyword_texts(
        self, ids: Sequence[int] | None = None, batch: int = 2000
    ) -> Iterator[list[tuple[int, str, str]]]:
        """(passage id, headline, body) as the keyword index was given them (Russian and
        Azerbaijani words stemmed), in batches by id: every passage's, or those of ``ids``
        still stored."""
        if ids is not None:
            ordered = sorted(int(i) for i in ids)
            for start in range(0, len(ordered), batch):
                with self.read() as db:
                    yield self.keywords.texts(db, 0, batch, ordered[start : start + batch])
            return
        last = 0
        while True:
            with self.read() as db:
                rows = self.keywords.texts(db, last, batch)
            if not rows:
                return
            yield rows
            last = rows[-1][0]

    def allowed_ids(self, filters: SearchFilters) -> np.ndarray:
        from index.keywords import filter_clause

        where, args = filter_clause(filters, self.dialect)
        with self.read() as db:
            rows = db.exec_driver_sql(
                "SELECT p.id FROM passages p JOIN articles a ON a.id = p.article_id WHERE " + where,
                tuple(args),
            ).all()
        return np.array([r[0] for r in rows], dtype=np.int64)


_PASSAGES = (
    "SELECT p.id, p.article_id, a.title, a.outlet, a.author, a.published, a.url, p.text, "
    "p.sentences, p.sentence_vectors FROM passages p JOIN articles a ON a.id = p.article_id "
    "WHERE p.id "
)


def _info_query() -> Any:
    count = select(func.count()).where(passages.c.article_id == articles.c.id).scalar_subquery()
    return select(
        articles.c.id,
        articles.c.title,
        articles.c.url,
        articles.c.outlet,
        articles.c.author,
        articles.c.published,
        articles.c.ingested_at,
        count,
    )


def _damage_code(error: DBAPIError) -> int | None:
    return getattr(unwrap(error), "sqlite_errorcode", None)


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
