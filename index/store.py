"""SQLite, the source of truth: articles, passages (with their vectors) and a keyword index.

The FAISS index is derived from the vectors kept here and can always be rebuilt from them.
Schema upgrades run in place, in a transaction, from the version recorded in ``meta``.

A damaged database is never written to: opening runs SQLite's ``quick_check``, ``check``
runs the full ``integrity_check``, and once either finds a problem (or SQLite reports
corruption during a write) every write raises ``DamagedDatabaseError``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote

import numpy as np

from index.errors import DamagedDatabaseError, StorageError
from index.models import Article, ArticleInfo, Passage, SearchFilters

SCHEMA_VERSION = 1
_DAMAGE_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
CHECK_ROWS = 20  # problems listed at most by one integrity check


def _schema_v1(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE articles (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            text TEXT NOT NULL,
            url TEXT,
            outlet TEXT,
            author TEXT,
            published TEXT,
            source TEXT,
            content_hash TEXT NOT NULL,
            ingested_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX articles_url ON articles(url);
        CREATE INDEX articles_published ON articles(published);
        CREATE INDEX articles_outlet ON articles(outlet COLLATE NOCASE);
        CREATE TABLE passages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            start INTEGER NOT NULL,
            end INTEGER NOT NULL,
            text TEXT NOT NULL,
            sentences TEXT NOT NULL,
            vector BLOB NOT NULL,
            sentence_vectors BLOB NOT NULL
        );
        CREATE INDEX passages_article ON passages(article_id);
        CREATE VIRTUAL TABLE passages_fts USING fts5(
            title, body, tokenize = 'porter unicode61 remove_diacritics 2'
        );
        """,
    )


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Run ``;``-separated statements inside the caller's transaction (``executescript``
    would commit it)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


# MIGRATIONS[n] upgrades a database at version n to n + 1.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_schema_v1]


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


class Store:
    """Thread-safe access to the database: one connection per thread, WAL journal."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        """Open (or create) the database; raises ``DamagedDatabaseError`` when SQLite's
        ``quick_check`` finds it damaged, and closes it again. ``read_only`` opens an
        existing database for inspection only: no check on opening, no upgrade, no writes."""
        self.path = path
        self.read_only = read_only
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.damage: str | None = None  # the first problem found; set, every write is refused
        if read_only:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            problems = self.check(full=False)
            if problems:
                raise DamagedDatabaseError(path, problems[0])
            self.migrate()
        except BaseException:
            self.close()
            raise

    @property
    def db(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                f"file:{quote(str(self.path))}?mode={'ro' if self.read_only else 'rwc'}",
                uri=True,
                isolation_level=None,
                timeout=30,
                check_same_thread=False,
            )  # each thread uses only its own; close() may run on another
            try:
                if not self.read_only:
                    connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA foreign_keys=ON")
                connection.execute("PRAGMA synchronous=NORMAL")
            except BaseException:  # not a database: the first statement says so
                connection.close()
                raise
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; refused with ``DamagedDatabaseError`` on a damaged database
        (and the database counts as damaged once SQLite reports corruption inside one)."""
        if self.damage:
            raise DamagedDatabaseError(self.path, self.damage)
        try:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.DatabaseError as error:
            if error.sqlite_errorcode not in _DAMAGE_CODES:
                raise
            self.damage = str(error)
            raise DamagedDatabaseError(self.path, self.damage) from None

    def check(self, *, full: bool = True) -> list[str]:
        """Problems SQLite's ``integrity_check`` (or the faster ``quick_check``) finds, at
        most ``CHECK_ROWS``; empty when the database is sound. A problem marks it damaged."""
        pragma = "integrity_check" if full else "quick_check"
        try:
            rows = self.db.execute(f"PRAGMA {pragma}({CHECK_ROWS})").fetchall()
            problems = [str(row[0]) for row in rows if row[0] != "ok"]
        except sqlite3.DatabaseError as error:
            if error.sqlite_errorcode not in _DAMAGE_CODES:
                raise
            problems = [str(error)]
        if problems:
            self.damage = problems[0]
        return problems

    def backup(self, destination: Path) -> None:
        """A consistent copy of the database (SQLite's online backup API, so writers may go
        on meanwhile), written aside and renamed into place, as one self-contained file."""
        if self.damage:
            raise DamagedDatabaseError(self.path, self.damage)
        aside = destination.with_name(destination.name + ".tmp")
        aside.unlink(missing_ok=True)
        copy = sqlite3.connect(aside, isolation_level=None)
        try:
            self.db.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # no -wal file beside the copy
        finally:
            copy.close()
        with open(aside, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(aside, destination)

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()

    # -- schema ---------------------------------------------------------------------------

    def migrate(self) -> None:
        with self.transaction() as db:
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StorageError(
                    f"{self.path} has schema version {version}, newer than this program's "
                    f"{SCHEMA_VERSION}: upgrade the program"
                )
            for upgrade in MIGRATIONS[version:]:
                upgrade(db)
            self._set_meta(db, "schema_version", str(SCHEMA_VERSION))

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._set_meta(self.db, key, value)

    @staticmethod
    def _set_meta(db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- writing --------------------------------------------------------------------------

    def content_hash(self, article_id: str) -> str | None:
        row = self.db.execute(
            "SELECT content_hash FROM articles WHERE id = ?", (article_id,)
        ).fetchone()
        return row[0] if row else None

    def replace_article(
        self,
        article: Article,
        content_hash: str,
        passages: Sequence[Passage],
        vectors: np.ndarray,
        sentence_vectors: Sequence[np.ndarray],
    ) -> tuple[list[int], list[int]]:
        """Insert or replace an article and all its passages in one transaction.
        Returns (removed passage ids, new passage ids)."""
        now = _now()
        with self.transaction() as db:
            removed = self._delete(db, article.id, keep_article=True)
            db.execute(
                """INSERT INTO articles (id, title, text, url, outlet, author, published,
                       source, content_hash, ingested_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(id) DO UPDATE SET title=excluded.title, text=excluded.text,
                       url=excluded.url, outlet=excluded.outlet, author=excluded.author,
                       published=excluded.published, source=excluded.source,
                       content_hash=excluded.content_hash, updated_at=excluded.updated_at""",
                (
                    article.id,
                    article.title,
                    article.text,
                    article.url,
                    article.outlet,
                    article.author,
                    article.published.isoformat() if article.published else None,
                    article.source,
                    content_hash,
                    now,
                    now,
                ),
            )
            new_ids = []
            for passage, vector, sentence_vectors_ in zip(
                passages, vectors, sentence_vectors, strict=True
            ):
                cursor = db.execute(
                    """INSERT INTO passages (article_id, position, start, end, text, sentences,
                           vector, sentence_vectors) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        article.id,
                        passage.position,
                        passage.start,
                        passage.end,
                        passage.text,
                        json.dumps(passage.sentences),
                        vector.astype(np.float32).tobytes(),
                        sentence_vectors_.astype(np.float16).tobytes(),
                    ),
                )
                passage_id = int(cursor.lastrowid or 0)
                db.execute(
                    "INSERT INTO passages_fts (rowid, title, body) VALUES (?, ?, ?)",
                    (passage_id, article.title, passage.text),
                )
                new_ids.append(passage_id)
        return removed, new_ids

    def delete_article(self, article_id: str) -> list[int]:
        """Delete an article and its passages; returns the removed passage ids."""
        with self.transaction() as db:
            return self._delete(db, article_id, keep_article=False)

    @staticmethod
    def _delete(db: sqlite3.Connection, article_id: str, *, keep_article: bool) -> list[int]:
        ids = [
            row[0]
            for row in db.execute("SELECT id FROM passages WHERE article_id = ?", (article_id,))
        ]
        db.executemany("DELETE FROM passages_fts WHERE rowid = ?", [(i,) for i in ids])
        db.execute("DELETE FROM passages WHERE article_id = ?", (article_id,))
        if not keep_article:
            db.execute("DELETE FROM articles WHERE id = ?", (article_id,))
        return ids

    def replace_vectors(self, rows: Iterator[tuple[int, np.ndarray, np.ndarray]]) -> None:
        """Overwrite passage and sentence vectors (after a re-embedding), one transaction."""
        with self.transaction() as db:
            db.executemany(
                "UPDATE passages SET vector = ?, sentence_vectors = ? WHERE id = ?",
                (
                    (v.astype(np.float32).tobytes(), s.astype(np.float16).tobytes(), i)
                    for i, v, s in rows
                ),
            )

    # -- reading --------------------------------------------------------------------------

    def article(self, article_id: str) -> Article | None:
        row = self.db.execute(
            "SELECT id, title, text, url, outlet, author, published, source FROM articles "
            "WHERE id = ?",
            (article_id,),
        ).fetchone()
        if row is None:
            return None
        article_id, title, text, url, outlet, author, published, source = row
        return Article(article_id, title, text, url, outlet, author, _date(published), source)

    def find_article_id(self, id_or_url: str) -> str | None:
        """An article id from an id, an id prefix (8+ characters) or the article's URL."""
        from index.formats import article_id_for_url

        if "://" in id_or_url:
            id_or_url = article_id_for_url(id_or_url)
        db = self.db
        row = db.execute("SELECT id FROM articles WHERE id = ?", (id_or_url,)).fetchone()
        if row is None and len(id_or_url) >= 8:
            rows = db.execute(
                "SELECT id FROM articles WHERE id LIKE ? LIMIT 2", (id_or_url + "%",)
            ).fetchall()
            row = rows[0] if len(rows) == 1 else None
        return str(row[0]) if row else None

    def article_info(self, article_id: str) -> ArticleInfo | None:
        infos = self._infos("WHERE a.id = ?", (article_id,))
        return infos[0] if infos else None

    def latest(self, limit: int) -> list[ArticleInfo]:
        return self._infos(
            "ORDER BY COALESCE(a.published, substr(a.ingested_at, 1, 10)) DESC, "
            "a.ingested_at DESC LIMIT ?",
            (limit,),
        )

    def _infos(self, clause: str, args: tuple[object, ...]) -> list[ArticleInfo]:
        rows = self.db.execute(
            "SELECT a.id, a.title, a.url, a.outlet, a.author, a.published, a.ingested_at, "
            "(SELECT COUNT(*) FROM passages p WHERE p.article_id = a.id) FROM articles a " + clause,
            args,
        ).fetchall()
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
        return [
            (outlet, count)
            for outlet, count in self.db.execute(
                "SELECT COALESCE(outlet, 'unknown outlet'), COUNT(*) AS n FROM articles "
                "GROUP BY 1 ORDER BY n DESC, 1"
            )
        ]

    def counts(self) -> Counts:
        db = self.db
        articles, outlets, last = db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT outlet), MAX(updated_at) FROM articles"
        ).fetchone()
        passages, id_sum = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(id), 0) FROM passages"
        ).fetchone()
        return Counts(
            articles, outlets, passages, id_sum, datetime.fromisoformat(last) if last else None
        )

    def passage_ids(self) -> list[int]:
        return [row[0] for row in self.db.execute("SELECT id FROM passages ORDER BY id")]

    def iter_vectors(self, batch: int = 5000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) in batches, for rebuilding the FAISS index without re-embedding."""
        last = 0
        while True:
            rows = self.db.execute(
                "SELECT id, vector FROM passages WHERE id > ? ORDER BY id LIMIT ?", (last, batch)
            ).fetchall()
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
        while True:
            rows = self.db.execute(
                "SELECT p.id, a.title, p.text, p.sentences FROM passages p "
                "JOIN articles a ON a.id = p.article_id WHERE p.id > ? ORDER BY p.id LIMIT ?",
                (last, batch),
            ).fetchall()
            if not rows:
                return
            yield [(r[0], r[1], r[2], [tuple(s) for s in json.loads(r[3])]) for r in rows]
            last = rows[-1][0]

    def passages(self, ids: Sequence[int]) -> dict[int, PassageRow]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            "SELECT p.id, p.article_id, a.title, a.outlet, a.author, a.published, a.url, "
            "p.text, p.sentences, p.sentence_vectors FROM passages p "
            f"JOIN articles a ON a.id = p.article_id WHERE p.id IN ({marks})",
            list(ids),
        ).fetchall()
        result = {}
        for r in rows:
            spans = [tuple(s) for s in json.loads(r[8])]
            vectors = np.frombuffer(r[9], dtype=np.float16).reshape(len(spans), -1)
            result[r[0]] = PassageRow(
                id=r[0],
                article_id=r[1],
                title=r[2],
                outlet=r[3],
                author=r[4],
                published=_date(r[5]),
                url=r[6],
                text=r[7],
                sentences=spans,  # type: ignore[arg-type]
                sentence_vectors=vectors.astype(np.float32),
            )
        return result

    def article_passage_ids(self, article_id: str) -> list[int]:
        """An article's passage ids in reading order."""
        return [
            row[0]
            for row in self.db.execute(
                "SELECT id FROM passages WHERE article_id = ? ORDER BY position", (article_id,)
            )
        ]

    def keyword_search(
        self,
        match: str,
        limit: int,
        filters: SearchFilters | None,
        weights: tuple[float, float],
    ) -> list[tuple[int, float]]:
        """(passage id, BM25 score, higher is better) for an FTS5 MATCH expression."""
        where, args = filter_clause(filters)
        sql = (
            f"SELECT f.rowid, -bm25(passages_fts, {weights[0]}, {weights[1]}) AS score "
            "FROM passages_fts f"
        )
        if where:
            sql += " JOIN passages p ON p.id = f.rowid JOIN articles a ON a.id = p.article_id"
        sql += " WHERE passages_fts MATCH ?" + (f" AND {where}" if where else "")
        sql += " ORDER BY score DESC LIMIT ?"
        rows = self.db.execute(sql, [match, *args, limit]).fetchall()
        return [(int(r[0]), float(r[1])) for r in rows]

    def words_found(self, words: Sequence[str], passage_id: int) -> int:
        """How many of the words (stemmed as the keyword index stems) the passage contains."""
        return sum(
            1
            for word in words
            if self.db.execute(
                "SELECT 1 FROM passages_fts WHERE passages_fts MATCH ? AND rowid = ?",
                (match_word(word), passage_id),
            ).fetchone()
        )

    def vocabulary(self) -> list[tuple[str, int]]:
        """Every word of the keyword index (Porter-stemmed, as FTS5 keeps it) with the number
        of passages holding it. The view is per connection, in the temp schema."""
        self.db.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.passages_vocab "
            "USING fts5vocab(main, passages_fts, row)"
        )
        rows = self.db.execute("SELECT term, doc FROM passages_vocab")
        return [(str(term), int(count)) for term, count in rows]

    def allowed_ids(self, filters: SearchFilters) -> np.ndarray:
        where, args = filter_clause(filters)
        rows = self.db.execute(
            "SELECT p.id FROM passages p JOIN articles a ON a.id = p.article_id WHERE " + where,
            args,
        ).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)


def match_word(word: str) -> str:
    """One word as an FTS5 string (quoted, so no word acts as an operator)."""
    return '"' + word.replace('"', '""') + '"'


def match_expression(words: Sequence[str]) -> str:
    """An FTS5 MATCH expression for passages containing any of the words."""
    return " OR ".join(match_word(word) for word in words)


def filter_clause(filters: SearchFilters | None) -> tuple[str, list[object]]:
    """SQL conditions on the ``articles a`` table for outlet and date filters."""
    if filters is None:
        return "", []
    conditions: list[str] = []
    args: list[object] = []
    if filters.outlets:
        conditions.append(
            "a.outlet COLLATE NOCASE IN (" + ",".join("?" * len(filters.outlets)) + ")"
        )
        args += list(filters.outlets)
    if filters.since:
        conditions.append("a.published >= ?")
        args.append(filters.since.isoformat())
    if filters.until:
        conditions.append("a.published <= ?")
        args.append(filters.until.isoformat())
    return " AND ".join(conditions), args


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
