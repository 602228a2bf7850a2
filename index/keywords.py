"""The keyword index, one per backend behind one small interface.

- SQLite: an FTS5 table (``passages_fts``: headline and body columns, Porter stemming),
  ranked by FTS5's BM25 with the headline weighted as the recipe says.
- PostgreSQL: ``passage_words``, one ``tsvector`` per passage (english configuration; the
  headline's words weighted A, the body's B) with a GIN index, ranked by ``ts_rank`` with
  the same headline and body weights, normalised by the passage's length.

Both take the question's words (already lower-cased, stop words gone) and match passages
holding any of them, best first. Up to ``PRUNE_FROM`` passages each query scores every
passage holding any word. From there on that is what makes it slow (FTS5's BM25 costs about
7 µs a passage, PostgreSQL's ``ts_rank`` more, and one common word such as "new" brings tens
of thousands), so a query first scores only the passages holding at least two of the words,
which the FTS5 and GIN indexes find without reading the others, with the same scores the
plain query gives (on SQLite the expression is built so that BM25 counts every word once).
A passage holding a single word can still belong in the top: SQLite also searches the words
whose highest possible BM25 contribution, idf * (k1 + 1), beats the lowest score of the top;
PostgreSQL adds the passages holding any rare word when fewer than ``limit`` hold two. A rare
word is held by at most ``COMMON_SHARE`` of the passages (counted up to that share and
remembered for ``COUNT_SECONDS``). What is lost are passages holding a single common word,
the lowest scores of all.

Neither stems Russian or Azerbaijani, so those words are stemmed before the backend sees
them, in passages and questions alike (``index.languages.keyword_text`` and
``keyword_forms``). Each backend runs its SQL with its driver's own parameter style.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from sqlalchemy import Connection

from index.languages import keyword_forms, keyword_text, needs_stems, text_language
from index.models import SearchFilters

__all__ = ["Fts5Keywords", "KeywordIndex", "TsvectorKeywords", "WordCounts", "keyword_index"]

PRUNE_FROM = 20_000  # passages; below this every keyword query is the plain one, fast anyway
COMMON_SHARE = 0.05  # a word held by more passages than this share is common
COUNT_SECONDS = 600.0  # how long a word's passage count is reused
MAX_PRUNED_WORDS = 8  # the two-word expression grows with the square of the words
K1 = 1.2  # FTS5's BM25 k1: one word adds at most idf * (k1 + 1) to a passage's score


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
        """(passage id, score: higher is better) of the best passages holding any word;
        ``total``, the passages in the index, at least ``PRUNE_FROM``: the two-word search
        of the module docstring."""

    def words_found(self, db: Connection, words: Sequence[str], passage_id: int) -> int:
        """How many of the words (stemmed as the index stems them) the passage holds."""

    def vocabulary(self, db: Connection) -> list[tuple[str, int]]:
        """Every stemmed word of the index with the number of passages holding it."""

    def texts(
        self, db: Connection, after: int, limit: int, ids: Sequence[int] | None = None
    ) -> list[tuple[int, str, str]]:
        """(passage id, headline, body) as the index was given them (`stemmed`): of the
        first ``limit`` passages numbered above ``after``, by id, or of those of ``ids``."""


def keyword_index(dialect: str) -> KeywordIndex:
    return Fts5Keywords() if dialect == "sqlite" else TsvectorKeywords()


class WordCounts:
    """How many passages hold each word, counted up to a cap (``count(word, cap)``) and
    remembered for ``COUNT_SECONDS``: a count a little out of date only moves the line
    between common and rare words. Thread-safe."""

    def __init__(self, seconds: float = COUNT_SECONDS) -> None:
        self.seconds = seconds
        # (word, cap in thousands) -> (count, when counted)
        self._known: dict[tuple[str, int], tuple[int, float]] = {}
        self._lock = threading.Lock()

    def held(self, words: Sequence[str], cap: int, count: Callable[[str], int]) -> dict[str, int]:
        """Per word, the passages holding it, or more than ``cap`` (``count(word)`` counts
        up to ``cap + 1``)."""
        now = time.monotonic()
        result = {}
        for word in words:
            with self._lock:
                known = self._known.get((word, cap // 1000))
            if known is None or now - known[1] > self.seconds:
                known = (min(count(word), cap + 1), now)
                with self._lock:
                    if len(self._known) > 100_000:  # a bound on memory: start over
                        self._known.clear()
                    self._known[(word, cap // 1000)] = known
            result[word] = known[0]
        return result

    def rare(self, words: Sequence[str], total: int, count: Callable[[str, int], int]) -> list[str]:
        """The words held by at most ``COMMON_SHARE`` of ``total`` passages."""
        cap = int(COMMON_SHARE * total)
        held = self.held(words, cap, lambda word: count(word, cap))
        return [word for word in words if held[word] <= cap]


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
        sql = (
            f"SELECT f.rowid, -bm25(passages_fts, {float(weights[0])}, {float(weights[1])}) "
            "AS score FROM passages_fts f"
        )
        if where:
            sql += " JOIN passages p ON p.id = f.rowid JOIN articles a ON a.id = p.article_id"
        sql += " WHERE passages_fts MATCH ?" + (f" AND {where}" if where else "")
        sql += " ORDER BY score DESC LIMIT ?"

        def best(expression: str) -> list[tuple[int, float]]:
            rows = db.exec_driver_sql(sql, (expression, *args, limit)).all()
            return [(int(r[0]), float(r[1])) for r in rows]

        if total <= 0 or total < PRUNE_FROM or not 2 <= len(words) <= MAX_PRUNED_WORDS:
            return best(match_expression(_all_forms(words)))
        found = dict(best(_two_or_more([_fts5_group(f) for f in keyword_forms(words)])))
        # Passages holding one word: of the words that could still reach the top
        floor = min(found.values()) if len(found) == limit else -math.inf
        cap = int(COMMON_SHARE * total)
        held = self.counts.held(words, cap, lambda word: self._count(db, word, cap))
        single = [w for w in words if held[w] <= cap and _most(held[w], total) > floor]
        if single:
            for passage, score in best(match_expression(_all_forms(single))):
                found[passage] = max(score, found.get(passage, score))  # a part of its score
        return sorted(found.items(), key=lambda item: item[1], reverse=True)[:limit]

    def _count(self, db: Connection, word: str, cap: int) -> int:
        """Passages holding the word, counted up to ``cap + 1``."""
        row = db.exec_driver_sql(
            "SELECT count(*) FROM (SELECT 1 FROM passages_fts WHERE passages_fts MATCH ? LIMIT ?)",
            (match_expression(_all_forms([word])), cap + 1),
        ).first()  # about 0.2 µs a passage
        return int(row[0]) if row else 0

    def words_found(self, db: Connection, words: Sequence[str], passage_id: int) -> int:
        forms = keyword_forms(words)
        if not forms:
            return 0
        # One statement for all the words: a query each cost a round trip through the driver.
        found = " + ".join(
            ["EXISTS (SELECT 1 FROM passages_fts WHERE passages_fts MATCH ? AND rowid = ?)"]
            * len(forms)
        )
        args = tuple(arg for f in forms for arg in (match_expression(f), passage_id))
        row = db.exec_driver_sql(f"SELECT {found}", args).first()
        return int(row[0]) if row else 0

    def vocabulary(self, db: Connection) -> list[tuple[str, int]]:
        # The view is per connection, in the temp schema.
        db.exec_driver_sql(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.passages_vocab "
            "USING fts5vocab(main, passages_fts, row)"
        )
        rows = db.exec_driver_sql("SELECT term, doc FROM passages_vocab")
        return [(str(term), int(count)) for term, count in rows]

    def texts(
        self, db: Connection, after: int, limit: int, ids: Sequence[int] | None = None
    ) -> list[tuple[int, str, str]]:
        sql = "SELECT rowid, title, body FROM passages_fts WHERE rowid "  # as stored: stemmed
        if ids is None:
            rows = db.exec_driver_sql(sql + "> ? ORDER BY rowid LIMIT ?", (after, limit))
        else:
            rows = db.exec_driver_sql(sql + f"IN ({','.join('?' * len(ids))})", tuple(ids))
        return [(int(i), str(title), str(body)) for i, title, body in rows]


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
        forms = _all_forms(words)
        # Ranked by all the words whichever passages a query matches; ts_rank's weights are
        # {D, C, B, A}, and only A (headline) and B (body) are used
        top = max(weights) or 1.0  # ts_rank takes weights in 0..1; only their ratio counts
        ranking = [0.0, 0.0, weights[1] / top, weights[0] / top]

        def best(match: str, match_args: Sequence[str]) -> list[tuple[int, float]]:
            sql = (
                "SELECT w.passage_id, ts_rank(%s::float4[], w.document, q.q, %s) AS score "
                f"FROM (SELECT {_any_word(forms)} AS q, {match} AS m) q, passage_words w"
            )
            if where:
                sql += (
                    " JOIN passages p ON p.id = w.passage_id JOIN articles a ON a.id = p.article_id"
                )
            sql += " WHERE w.document @@ q.m" + (f" AND {where}" if where else "")
            sql += " ORDER BY score DESC LIMIT %s"
            arguments = (ranking, self.NORMALISATION, *forms, *match_args, *args, limit)
            return [(int(r[0]), float(r[1])) for r in db.exec_driver_sql(sql, arguments).all()]

        if total <= 0 or total < PRUNE_FROM or not 2 <= len(words) <= MAX_PRUNED_WORDS:
            return best(_any_word(forms), forms)
        groups = keyword_forms(words)
        parts = [
            f"(({_any_word(group)}) && ({' || '.join(_any_word(g) for g in groups[i + 1 :])}))"
            for i, group in enumerate(groups[:-1])
        ]
        two = [form for i, group in enumerate(groups[:-1]) for g in groups[i:] for form in g]
        found = dict(best(" || ".join(parts), two))
        if len(found) < limit:  # and the passages holding one rare word
            rare = _all_forms(self.counts.rare(words, total, lambda w, c: self._count(db, w, c)))
            if rare:
                found |= dict(best(_any_word(rare), rare))
        return sorted(found.items(), key=lambda item: item[1], reverse=True)[:limit]

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

    def texts(
        self, db: Connection, after: int, limit: int, ids: Sequence[int] | None = None
    ) -> list[tuple[int, str, str]]:
        # passage_words keeps lexemes, not text: the text is read and prepared again
        sql = "SELECT p.id, a.title, p.text FROM passages p JOIN articles a ON a.id = p.article_id"
        if ids is None:
            sql += " WHERE p.id > %s ORDER BY p.id LIMIT %s"
            rows = db.exec_driver_sql(sql, (after, limit))
        else:
            rows = db.exec_driver_sql(sql + " WHERE p.id = ANY(%s)", ([int(i) for i in ids],))
        return stemmed([(int(i), str(title), str(body)) for i, title, body in rows])


def stemmed(rows: Sequence[tuple[int, str, str]]) -> list[tuple[int, str, str]]:
    """(passage id, headline, body) with Russian and Azerbaijani words stemmed, the
    language told from headline and body together."""
    result = []
    for passage_id, title, body in rows:
        text = f"{title}\n{body}"
        if not needs_stems(text):
            result.append((passage_id, title, body))
            continue
        language = text_language(text)
        result.append((passage_id, keyword_text(title, language), keyword_text(body, language)))
    return result


def _all_forms(words: Sequence[str]) -> list[str]:
    """Every form of every word to look for (`keyword_forms`), each once."""
    return list(dict.fromkeys(form for forms in keyword_forms(words) for form in forms))


def _two_or_more(groups: Sequence[str]) -> str:
    """An FTS5 expression for passages holding at least two of the groups (a word's forms).
    A passage matches exactly one of its branches, the one of the first group it holds, and
    that branch names every group it holds once, so BM25 (which scores the words of the
    branches that match) counts each word once: the plain query's score."""
    branches = []
    for i, group in enumerate(groups[:-1]):
        branch = f"({group} AND ({' OR '.join(groups[i + 1 :])}))"
        if i:
            branch = f"({branch} NOT ({' OR '.join(groups[:i])}))"
        branches.append(branch)
    return " OR ".join(branches)


def _fts5_group(forms: Sequence[str]) -> str:
    return match_word(forms[0]) if len(forms) == 1 else f"({match_expression(forms)})"


def _most(passages: int, total: int) -> float:
    """The most one word held by ``passages`` of ``total`` adds to a BM25 score."""
    idf = math.log((total - passages + 0.5) / (passages + 0.5))
    return (K1 + 1) * max(idf, 1e-6)


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
