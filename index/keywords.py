"""The keyword index, one per backend behind one small interface.

- SQLite: an FTS5 table (``passages_fts``: headline and body columns, Porter stemming),
  ranked by FTS5's BM25 with the headline weighted as the recipe says.
- PostgreSQL: ``passage_words``, one ``tsvector`` per passage (english configuration; the
  headline's words weighted A, the body's B) with a GIN index, ranked by ``ts_rank`` with
  the same headline and body weights, normalised by the passage's length.

Both take the question's words (already lower-cased, stop words gone) and match passages
holding any of them. From ``PRUNE_FROM`` passages on, a word held by more than
``COMMON_SHARE`` of them ("new", "said" in news) is left out of the match: scoring every
passage that holds one is what makes a keyword query slow (FTS5's BM25 costs about 7 µs a
passage; a common word brings tens of thousands), while its weight in the score is small.
FTS5 then ranks by the remaining words; PostgreSQL still ranks by all of them. How many
passages hold a word is counted up to that share and remembered for ``COUNT_SECONDS``.
When every word is that common, all of them are matched.

Neither stems Russian or Azerbaijani, so those words are stemmed before the backend sees
them, in passages and questions alike (``index.languages.keyword_text`` and
``keyword_forms``). Each backend runs its SQL with its driver's own parameter style.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from sqlalchemy import Connection

from index.languages import keyword_forms, keyword_text, text_language
from index.models import SearchFilters

__all__ = ["Fts5Keywords", "KeywordIndex", "TsvectorKeywords", "WordCounts", "keyword_index"]

PRUNE_FROM = 20_000  # passages; below this every keyword query is exact, and fast anyway
COMMON_SHARE = 0.05  # a word in more passages than this share is left out of the match
COUNT_SECONDS = 600.0  # how long a word's passage count is reused


class KeywordIndex(Protocol):
    def add(self, db: Connection, rows: Sequence[tuple[int, str, str]]) -> None:
        """Index passages given as (passage id, headline, body)."""

    def remove(self, db: Connection, ids: Sequence[int]) -> None:
        """Forget passages (before their rows are deleted)."""

    def search(
        self,
        db: Connection,
        words: Sequence[str],
        limit: int,
        filters: SearchFilters | None,
        weights: tuple[float, float],
        total: int = 0,
    ) -> list[tuple[int, float]]:
        """(passage id, score: higher is better) of the best passages holding any word
        (any word but the common ones, when ``total``, the passages in the index, is at
        least ``PRUNE_FROM``)."""

    def words_found(self, db: Connection, words: Sequence[str], passage_id: int) -> int:
        """How many of the words (stemmed as the index stems them) the passage holds."""

    def vocabulary(self, db: Connection) -> list[tuple[str, int]]:
        """Every stemmed word of the index with the number of passages holding it."""


def keyword_index(dialect: str) -> KeywordIndex:
    return Fts5Keywords() if dialect == "sqlite" else TsvectorKeywords()


class WordCounts:
    """How many passages hold each word, counted up to a cap (``count(word, cap)``) and
    remembered for ``COUNT_SECONDS``: a count a little out of date only moves the line
    between common and rare words. Thread-safe."""

    def __init__(self, seconds: float = COUNT_SECONDS) -> None:
        self.seconds = seconds
        self._known: dict[str, tuple[int, float]] = {}  # word -> (count, when counted)
        self._lock = threading.Lock()

    def rare(self, words: Sequence[str], total: int, count: Callable[[str, int], int]) -> list[str]:
        """The words held by at most ``COMMON_SHARE`` of ``total`` passages (all of them
        below ``PRUNE_FROM`` passages, or when every word is common)."""
        if total < PRUNE_FROM or len(words) < 2:
            return list(words)
        cap = int(COMMON_SHARE * total)
        now = time.monotonic()
        rare = []
        for word in words:
            with self._lock:
                known = self._known.get(word)
            if known is None or now - known[1] > self.seconds:
                known = (count(word, cap), now)
                with self._lock:
                    if len(self._known) > 100_000:  # a bound on memory: start over
                        self._known.clear()
                    self._known[word] = known
            if known[0] <= cap:
                rare.append(word)
        return rare or list(words)


class Fts5Keywords:
    """SQLite FTS5, BM25 ranking."""

    def __init__(self) -> None:
        self.counts = WordCounts()

    def add(self, db: Connection, rows: Sequence[tuple[int, str, str]]) -> None:
        db.exec_driver_sql(
            "INSERT INTO passages_fts (rowid, title, body) VALUES (?, ?, ?)", stemmed(rows)
        )

    def remove(self, db: Connection, ids: Sequence[int]) -> None:
        if ids:
            db.exec_driver_sql("DELETE FROM passages_fts WHERE rowid = ?", [(i,) for i in ids])

    def search(
        self,
        db: Connection,
        words: Sequence[str],
        limit: int,
        filters: SearchFilters | None,
        weights: tuple[float, float],
        total: int = 0,
    ) -> list[tuple[int, float]]:
        where, args = filter_clause(filters, "sqlite")
        words = self.counts.rare(words, total, lambda word, cap: self._count(db, word, cap))
        sql = (
            f"SELECT f.rowid, -bm25(passages_fts, {float(weights[0])}, {float(weights[1])}) "
            "AS score FROM passages_fts f"
        )
        if where:
            sql += " JOIN passages p ON p.id = f.rowid JOIN articles a ON a.id = p.article_id"
        sql += " WHERE passages_fts MATCH ?" + (f" AND {where}" if where else "")
        sql += " ORDER BY score DESC LIMIT ?"
        rows = db.exec_driver_sql(sql, (match_expression(_all_forms(words)), *args, limit)).all()
        return [(int(r[0]), float(r[1])) for r in rows]

    def _count(self, db: Connection, word: str, cap: int) -> int:
        """Passages holding the word, counted up to ``cap + 1``."""
        row = db.exec_driver_sql(
            "SELECT count(*) FROM (SELECT 1 FROM passages_fts WHERE passages_fts MATCH ? LIMIT ?)",
            (match_expression(_all_forms([word])), cap + 1),
        ).first()
        return int(row[0]) if row else 0

    def words_found(self, db: Connection, words: Sequence[str], passage_id: int) -> int:
        return sum(
            1
            for forms in keyword_forms(words)
            if db.exec_driver_sql(
                "SELECT 1 FROM passages_fts WHERE passages_fts MATCH ? AND rowid = ?",
                (match_expression(forms), passage_id),
            ).first()
        )

    def vocabulary(self, db: Connection) -> list[tuple[str, int]]:
        # The view is per connection, in the temp schema.
        db.exec_driver_sql(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.passages_vocab "
            "USING fts5vocab(main, passages_fts, row)"
        )
        rows = db.exec_driver_sql("SELECT term, doc FROM passages_vocab")
        return [(str(term), int(count)) for term, count in rows]


class TsvectorKeywords:
    """PostgreSQL ``tsvector`` + GIN, ``ts_rank`` with headline (A) and body (B) weights."""

    NORMALISATION = 1  # divide by 1 + log(passage length), as BM25 discounts long passages

    def __init__(self) -> None:
        self.counts = WordCounts()

    def add(self, db: Connection, rows: Sequence[tuple[int, str, str]]) -> None:
        db.exec_driver_sql(
            "INSERT INTO passage_words (passage_id, document) VALUES (%s, "
            "setweight(to_tsvector('english', %s), 'A') || "
            "setweight(to_tsvector('english', %s), 'B'))",
            stemmed(rows),
        )

    def remove(self, db: Connection, ids: Sequence[int]) -> None:
        """Nothing to do: the rows go with their passages (ON DELETE CASCADE)."""

    def search(
        self,
        db: Connection,
        words: Sequence[str],
        limit: int,
        filters: SearchFilters | None,
        weights: tuple[float, float],
        total: int = 0,
    ) -> list[tuple[int, float]]:
        where, args = filter_clause(filters, "postgresql")
        rare = _all_forms(self.counts.rare(words, total, lambda w, cap: self._count(db, w, cap)))
        words = _all_forms(words)
        # Matched by the rare words (the GIN index finds them), ranked by all the words.
        # ts_rank's weights are {D, C, B, A}; only A (headline) and B (body) are used
        sql = (
            "SELECT w.passage_id, ts_rank(%s::float4[], w.document, q.q, %s) AS score "
            f"FROM (SELECT {_any_word(words)} AS q, {_any_word(rare)} AS m) q, passage_words w"
        )
        if where:
            sql += " JOIN passages p ON p.id = w.passage_id JOIN articles a ON a.id = p.article_id"
        sql += " WHERE w.document @@ q.m" + (f" AND {where}" if where else "")
        sql += " ORDER BY score DESC LIMIT %s"
        top = max(weights) or 1.0  # ts_rank takes weights in 0..1; only their ratio counts
        ranking = [0.0, 0.0, weights[1] / top, weights[0] / top]
        arguments = (ranking, self.NORMALISATION, *words, *rare, *args, limit)
        rows = db.exec_driver_sql(sql, arguments).all()
        return [(int(r[0]), float(r[1])) for r in rows]

    def _count(self, db: Connection, word: str, cap: int) -> int:
        """Passages holding the word, counted up to ``cap + 1``."""
        forms = _all_forms([word])
        row = db.exec_driver_sql(
            "SELECT count(*) FROM (SELECT 1 FROM passage_words "
            f"WHERE document @@ ({_any_word(forms)}) LIMIT %s) x",
            (*forms, cap + 1),
        ).first()
        return int(row[0]) if row else 0

    def words_found(self, db: Connection, words: Sequence[str], passage_id: int) -> int:
        if not words:
            return 0
        forms = keyword_forms(words)
        found = " + ".join(f"(document @@ ({_any_word(f)}))::int" for f in forms)
        row = db.exec_driver_sql(
            f"SELECT {found} FROM passage_words WHERE passage_id = %s",
            (*(form for f in forms for form in f), passage_id),
        ).first()
        return int(row[0]) if row else 0

    def vocabulary(self, db: Connection) -> list[tuple[str, int]]:
        rows = db.exec_driver_sql(
            "SELECT word, ndoc FROM ts_stat('SELECT document FROM passage_words')"
        )
        return [(str(term), int(count)) for term, count in rows]


def stemmed(rows: Sequence[tuple[int, str, str]]) -> list[tuple[int, str, str]]:
    """(passage id, headline, body) with Russian and Azerbaijani words stemmed, the
    language told from headline and body together."""
    result = []
    for passage_id, title, body in rows:
        language = text_language(f"{title}\n{body}")
        result.append((passage_id, keyword_text(title, language), keyword_text(body, language)))
    return result


def _all_forms(words: Sequence[str]) -> list[str]:
    """Every form of every word to look for (`keyword_forms`), each once."""
    return list(dict.fromkeys(form for forms in keyword_forms(words) for form in forms))


def _any_word(words: Sequence[str]) -> str:
    """A tsquery expression matching any of the words (one parameter per word)."""
    return " || ".join("plainto_tsquery('english', %s)" for _ in words) or "''::tsquery"


def match_word(word: str) -> str:
    """One word as an FTS5 string (quoted, so no word acts as an operator)."""
    return '"' + word.replace('"', '""') + '"'


def match_expression(words: Sequence[str]) -> str:
    """An FTS5 MATCH expression for passages containing any of the words."""
    return " OR ".join(match_word(word) for word in words)


def filter_clause(filters: SearchFilters | None, dialect: str) -> tuple[str, list[object]]:
    """SQL conditions on the ``articles a`` table for outlet and date filters, in the
    driver's parameter style (``?`` for SQLite, ``%s`` for psycopg)."""
    if filters is None:
        return "", []
    mark = "?" if dialect == "sqlite" else "%s"
    conditions: list[str] = []
    args: list[object] = []
    if filters.outlets:
        marks = ",".join(mark for _ in filters.outlets)
        if dialect == "sqlite":
            conditions.append(f"a.outlet COLLATE NOCASE IN ({marks})")
            args += list(filters.outlets)
        else:
            conditions.append(f"lower(a.outlet) IN ({marks})")
            args += [outlet.lower() for outlet in filters.outlets]
    if filters.since:
        conditions.append(f"a.published >= {mark}")
        args.append(filters.since.isoformat())
    if filters.until:
        conditions.append(f"a.published <= {mark}")
        args.append(filters.until.isoformat())
    return " AND ".join(conditions), args
