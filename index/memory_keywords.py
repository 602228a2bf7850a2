"""The keyword query of a large index, answered from memory (tantivy) instead of the database.

From ``PRUNE_FROM`` passages the database's keyword query is the slowest part of a question
(FTS5 at 100k passages: p50 16.5 ms, p99 85 ms on a loaded machine; tantivy 0.46 / 4.8 ms;
at 1M 56.7 / 906 ms against 2.2 / 13.9 ms). A long-running process (the bot, the bench)
therefore builds an in-memory tantivy index of every passage's keyword text in a background
thread (``MemoryKeywords.start``) and, once it is built, asks it instead: the same words
(``keyword_forms``), stemmed by an analyser close to FTS5's ``porter unicode61
remove_diacritics 2`` (split on non-alphanumerics, lower-case, fold diacritics, English
Porter2 stems), scored by BM25 with the headline and body weights as boosts. Until it is
built, below ``PRUNE_FROM`` passages, for a filtered search (outlet, dates), after an error,
or with ``KEYWORD_MEMORY=false``, ``search`` returns None and the store's query is used.

It follows the store's change log (``index/changes.py``) as the vector index does: the build
reads the log's newest entry first, then every passage's keyword text, then applies the
entries after it. Before each search, and at ``refresh`` (which the index's owner calls after
each write and sync, so that a question seldom waits for it), when the index's ``version``
changed (the vector index's change counter: it changes whenever the passages do), the
entries since the last one applied are applied: removed ids deleted, added ids deleted and
added again with their text as stored now (none when the passage is gone), so a removed or
replaced passage is never returned. A ``reindex`` entry changes no text. A log pruned past
the last entry applied makes it build again in the background (the store's query
meanwhile).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

from index.changes import net_effect
from index.keywords import PRUNE_FROM
from index.languages import keyword_forms
from index.store import Store

__all__ = ["MemoryKeywords"]

log = logging.getLogger(__name__)
ANALYZER = "keywords"
WRITER_HEAP_BYTES = 100_000_000
CATCH_UP_BATCH = 1000  # change log entries read at a time
RETRY_SECONDS = 300.0  # a build that failed is tried again after this long
STOP_SECONDS = 5.0  # close waits this long at most for the build thread


class MemoryKeywords:
    """The in-memory keyword index of one store. Thread-safe: searches run in parallel
    (tantivy releases the GIL), catching up with the change log takes a lock."""

    def __init__(
        self,
        store: Store,
        version: Callable[[], Hashable],
        size: Callable[[], int],
        threshold: int = PRUNE_FROM,
    ) -> None:
        self._store = store
        self._version_now = version
        self._size = size
        self.threshold = threshold  # passages from which it is used
        self._lock = threading.Lock()  # the writer of the index in use, and the fields below
        self._index: _Tantivy | None = None  # None until built
        self._version: Hashable | None = None  # the version the index was last caught up at
        self._applied = 0  # the last change log entry in the index
        self._building: threading.Thread | None = None
        self._failed_at = -RETRY_SECONDS
        self._stop = threading.Event()
        self._started = False
        self.builds = 0  # indexes built (a test or an operator can read it)
        self.build_seconds = 0.0  # how long the last build took

    @property
    def ready(self) -> bool:
        return self._index is not None

    def start(self) -> None:
        """Allow building (a long-running process), and build now if the index is large."""
        with self._lock:
            self._started = True
            if self._size() >= self.threshold:
                self._build_if_due()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a build under way to end; whether the index is ready."""
        building = self._building
        if building is not None:
            building.join(timeout)
        return self.ready

    def search(
        self, words: Sequence[str], limit: int, weights: tuple[float, float]
    ) -> list[tuple[int, float]] | None:
        """(passage id, BM25 score) of the best ``limit`` passages holding any of the words,
        headline and body weighted as given; None when the store's query is to be used."""
        if not self._started or self._size() < self.threshold:
            return None
        with self._lock:
            index = self._current()
        return None if index is None else index.search(words, limit, weights)

    def refresh(self) -> None:
        """Catch up with the change log now, so that the next search need not (its owner
        calls it after each write and sync, in a worker thread: a catch-up's commit costs
        about 17 ms at 100k passages, which the first question after a write paid)."""
        if self._started and self._size() >= self.threshold:
            with self._lock:
                self._current()

    def _current(self) -> _Tantivy | None:
        """The index, caught up with the change log when the passages changed (under the
        lock); None (a build started when due) when there is none or it cannot catch up."""
        index = self._index
        if index is None:
            self._build_if_due()
            return None
        version = self._version_now()  # read first: a change meanwhile is caught next time
        if version != self._version:
            try:
                caught_up = self._catch_up(index)
            except Exception:  # the store's query answers; the next search tries again
                log.warning("Could not follow the change log in memory", exc_info=True)
                return None
            if not caught_up:
                log.warning("The change log was pruned past the in-memory keyword index")
                self._index = None
                self._build_if_due()
                return None
            self._version = version
        return index

    def close(self) -> None:
        """Stop a build under way (waits ``STOP_SECONDS`` at most) and drop the index."""
        self._stop.set()
        with self._lock:
            self._started = False
            building = self._building
        if building is not None:
            building.join(STOP_SECONDS)
        self._index = None

    def _build_if_due(self) -> None:
        """Start a build in the background, unless one runs or failed lately (under the
        lock)."""
        if (
            not self._started
            or self._building is not None
            or time.monotonic() - self._failed_at < RETRY_SECONDS
        ):
            return
        self._building = threading.Thread(
            target=self._build, name="keywords-in-memory", daemon=True
        )
        self._building.start()

    def _build(self) -> None:
        started = time.perf_counter()
        try:
            head = self._store.change_state().head  # every entry up to it is in what is read
            fresh = _Tantivy()
            for rows in self._store.keyword_texts():
                if self._stop.is_set():
                    return
                fresh.add(rows)
            fresh.commit()
            with self._lock:
                if self._stop.is_set():
                    return
                version = self._version_now()
                self._applied = head
                if self._catch_up(fresh):
                    self._index, self._version = fresh, version
                    self.builds += 1
                    self.build_seconds = time.perf_counter() - started
                    log.info(
                        "Keyword index in memory: %s passages in %.1f s",
                        fresh.count(),
                        self.build_seconds,
                    )
        except Exception:
            log.warning("Could not build the keyword index in memory", exc_info=True)
            self._failed_at = time.monotonic()
        finally:
            self._building = None

    def _catch_up(self, index: _Tantivy) -> bool:
        """Apply the change log entries after the last one applied (under the lock);
        False when the log was pruned past it."""
        changed = False
        try:
            while True:
                entries, pruned_to = self._store.changes_after(self._applied, CATCH_UP_BATCH)
                if self._applied < pruned_to:
                    return False
                if not entries:
                    return True
                remove, add = net_effect(entries)  # a reindex entry names no passage
                changed = True
                index.remove(remove)
                for rows in self._store.keyword_texts(sorted(add)):
                    index.add(rows)
                self._applied = entries[-1].seq
        finally:
            if changed:  # what was applied, even when a later batch failed
                index.commit()


class _Tantivy:
    """One tantivy index in RAM: an integer id (indexed, fast) and the headline and body
    as text with term frequencies (BM25 needs no positions)."""

    def __init__(self) -> None:
        import tantivy

        self._tv = tantivy
        builder = tantivy.SchemaBuilder()
        builder.add_integer_field("id", stored=False, indexed=True, fast=True)
        builder.add_text_field("title", tokenizer_name=ANALYZER, index_option="freq")
        builder.add_text_field("body", tokenizer_name=ANALYZER, index_option="freq")
        self.schema = builder.build()
        self.index = tantivy.Index(self.schema)
        self.analyzer = (
            tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
            .filter(tantivy.Filter.remove_long(40))
            .filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.ascii_fold())
            .filter(tantivy.Filter.stemmer("english"))
            .build()
        )
        self.index.register_tokenizer(ANALYZER, self.analyzer)
        self.index.config_reader(reload_policy="Manual")
        self.writer = self.index.writer(heap_size=WRITER_HEAP_BYTES, num_threads=1)

    def add(self, rows: Iterable[tuple[int, str, str]]) -> None:
        for passage_id, title, body in rows:
            document = self._tv.Document()
            document.add_integer("id", passage_id)
            document.add_text("title", title)
            document.add_text("body", body)
            self.writer.add_document(document)

    def remove(self, ids: Iterable[int]) -> None:
        for passage_id in ids:
            self.writer.delete_documents_by_term("id", passage_id)

    def commit(self) -> None:
        self.writer.commit()
        self.index.reload()

    def count(self) -> int:
        return int(self.index.searcher().num_docs)

    def search(
        self, words: Sequence[str], limit: int, weights: tuple[float, float]
    ) -> list[tuple[int, float]]:
        terms = {
            term: None
            for forms in keyword_forms(words)
            for form in forms
            for term in self.analyzer.analyze(form)
        }
        if not terms:
            return []
        clauses: list[tuple[Any, Any]] = []
        for term in terms:
            for field, weight in (("title", weights[0]), ("body", weights[1])):
                query = self._tv.Query.term_query(self.schema, field, term, index_option="freq")
                if weight != 1.0:
                    query = self._tv.Query.boost_query(query, weight)
                clauses.append((self._tv.Occur.Should, query))
        searcher = self.index.searcher()
        hits = searcher.search(self._tv.Query.boolean_query(clauses), limit, count=False).hits
        if not hits:
            return []
        ids = searcher.fast_field_values("id", [address for _, address in hits])
        return [(int(i or 0), float(score)) for (score, _), i in zip(hits, ids, strict=True)]
