"""The index itself, synchronous: ingestion, search, removal, rebuilds.

``IndexCore`` owns the article store (SQLite or PostgreSQL, the source of truth), the
FAISS vector index derived from it, and the embedder. It is thread-safe: writers take one
lock, searches take none and keep using the vector index they started with while a
rebuild swaps in a new one.

Several processes may share one database: each write appends to the change log
(``index/changes.py``), and ``sync`` applies the entries other processes wrote, so every
process holds the same passages. The saved vector index records the last entry applied;
opening catches up from there by replay, and rebuilds from the stored vectors (never
re-embedding) only when the log no longer holds every entry since.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import logging
import math
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import numpy as np

from index import formats, parsing_pool
from index.changes import Change, net_effect
from index.chunking import chunk_article
from index.database import SQLITE_FILE, database_url
from index.embedding import (
    Embedder,
    create_embedder,
    normalise,
    passage_vector,
    sentence_inputs,
)
from index.errors import ArticleIndexError, DamagedDatabaseError, InputError
from index.fetch import FetchPolicy, fetch, is_url
from index.keywords import PRUNE_FROM
from index.memory_keywords import MemoryKeywords
from index.models import (
    Article,
    ArticleInfo,
    IndexStats,
    IngestReport,
    Passage,
    SearchFilters,
    SearchResult,
)
from index.search import (
    DEFAULT_MIN_RELEVANCE,
    DEFAULT_RECIPE,
    Recipe,
    rank,
    relevance,
    terms,
    to_hit,
    wants_recent,
)
from index.settings import IndexSettings
from index.spelling import Speller, Spelling
from index.store import ChangeState, PassageRow, Store
from index.vectors import StaleIndexError, VectorIndex, write_snapshot

log = logging.getLogger(__name__)
T = TypeVar("T")
Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` from the worker thread doing the work."""
EMBED_BATCH_PASSAGES = 256
SAVE_INTERVAL_SECONDS = 30.0  # the vector index is written at most this often (and at close)
PLANNERS = 4  # threads that run the model-free half of searches (IndexCore.search)
SYNC_BATCH = 1000  # change log entries read and applied at a time
PRUNE_INTERVAL_SECONDS = 3600.0  # sync prunes the change log at most this often


@dataclass(frozen=True, slots=True)
class ReindexReport:
    articles: int
    passages: int
    seconds: float


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """What ``IndexCore.plan`` found for a question, before its vector is known."""

    question: str
    filters: SearchFilters | None
    allowed: np.ndarray | None  # the passages the filters allow (None: every passage)
    words: list[str]  # content words as typed
    spelling: Spelling
    keyword: dict[int, float]  # the keyword query's top passages and their scores
    rows: dict[int, PassageRow]  # those passages' rows

    @property
    def meant(self) -> str | None:
        """The corrected question, to embed beside the typed one; None without typos."""
        return self.spelling.question(self.question) if self.spelling.fixed else None


class IndexCore:
    """Articles in, ranked passages out. Create with ``IndexCore.open``."""

    def __init__(
        self,
        settings: IndexSettings,
        store: Store,
        vectors: VectorIndex,
        embedder: Embedder,
        recipe: Recipe = DEFAULT_RECIPE,
    ) -> None:
        self.settings = settings
        self.store = store
        self.vectors = vectors
        self.embedder = embedder
        self.recipe = recipe
        self.min_relevance = (
            settings.min_relevance if settings.min_relevance is not None else DEFAULT_MIN_RELEVANCE
        )
        self.min_hit_share = settings.min_hit_share
        self.speller = Speller(store, version=self._vectors_version, size=self._passage_count)
        self._write_lock = threading.RLock()
        self._reindex_lock = threading.Lock()
        self.save_interval = SAVE_INTERVAL_SECONDS
        self._saved_at = -math.inf
        self._dirty = False
        # Following the change log: the last entry applied (every entry up to it is in
        # self.vectors), this process's own entries after it (applied as they were
        # written), and counters a test or an operator can read.
        self._sync_lock = threading.Lock()
        self._log_id: str | None = None
        self._applied = 0
        self._own: set[int] = set()
        self._pruned_at = -math.inf
        self.replayed = 0  # change log entries of other processes applied
        self.rebuilds = 0  # vector indexes built from all stored vectors
        self.keywords_in_memory: MemoryKeywords | None = None  # keep_keywords_in_memory

    def keep_keywords_in_memory(self, threshold: int = PRUNE_FROM) -> None:
        """Answer the keyword query of ``threshold`` passages or more from an in-memory index
        built in the background (index/memory_keywords.py), unless KEYWORD_MEMORY is off:
        for long-running processes, not one-shot commands."""
        if self.settings.keyword_memory and self.keywords_in_memory is None:
            self.keywords_in_memory = MemoryKeywords(
                self.store, self._vectors_version, self._passage_count, threshold
            )
            self.keywords_in_memory.start()

    def _passage_count(self) -> int:
        return self.vectors.count  # read anew: a rebuild swaps self.vectors

    def _vectors_version(self) -> tuple[int, int]:
        """Changes whenever the passages do (in this process or, followed, in another)."""
        vectors = self.vectors
        return id(vectors), vectors.changes

    @property
    def index_path(self) -> Path:
        return index_path(self.settings)

    @classmethod
    def open(cls, settings: IndexSettings, embedder: Embedder | None = None) -> IndexCore:
        """Open the database, then load the saved vector index if it matches the database
        and the model; otherwise rebuild it (re-embedding only if the model changed).
        A damaged database raises ``DamagedDatabaseError`` and is left as it is."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        parsing_pool.configure(timeout=settings.parse_timeout)
        store = open_store(settings)
        try:
            embedder = embedder or create_embedder(settings)
        except BaseException:
            store.close()
            raise
        core = cls(settings, store, VectorIndex(embedder.dimension, embedder.name), embedder)
        core._load_or_rebuild()
        return core

    def _load_or_rebuild(self) -> None:
        counts = self.store.counts()
        stored_model = self.store.get_meta("vectors_model")
        if counts.passages and stored_model != self.embedder.name:
            log.warning(
                "Re-embedding %s passages: they were embedded with %r, the configured model is %r",
                counts.passages,
                stored_model,
                self.embedder.name,
            )
            self._reembed_all(None)
            counts = self.store.counts()
        self.store.set_meta("vectors_model", self.embedder.name)
        state = self.store.change_state()
        self._log_id = state.log_id
        with self._sync_lock:
            try:
                self.vectors, self._applied = self._load_saved(state)
                caught_up = self._follow()
                reason = self._mismatch()
            except StaleIndexError as stale:
                caught_up, reason = 0, str(stale)
            if caught_up and not reason:
                log.info("Caught up with %s change(s) from the change log", caught_up)
            if reason is not None:
                if counts.passages or self.index_path.exists():
                    log.warning("Rebuilding the vector index from the database: %s", reason)
                self._reload()
                self._follow()
        if reason is not None:
            self.save(wait=True)

    def _load_saved(self, state: ChangeState) -> tuple[VectorIndex, int]:
        """The saved vector index and the last change log entry it holds, else raises
        ``StaleIndexError``. One that names this database's change log, at an entry the
        log still holds every entry after, is caught up by replay; any other must hold
        exactly the passages of the database (as before the change log)."""
        with self._index_file(shared=True):
            saved = VectorIndex.load(
                self.index_path, model=self.embedder.name, count=None, id_sum=None
            )
        if saved.followed and saved.followed[0] == state.log_id:
            seq = saved.followed[1]
            if state.pruned_to <= seq <= state.head:
                return saved, seq
            if seq < state.pruned_to:
                log.warning(
                    "The saved vector index applied the change log up to entry %s, but "
                    "entries up to %s were pruned since",
                    seq,
                    state.pruned_to,
                )
        count, id_sum, head = self.store.passages_at_head()
        actual = saved.meta()
        if actual.count != count:
            raise StaleIndexError(f"index holds {actual.count} passages, the database {count}")
        if actual.id_sum != id_sum:
            raise StaleIndexError("index passage ids differ from the database")
        return saved, head

    def _mismatch(self) -> str | None:
        """Why the vector index does not hold the database's passages, when that can be told:
        nobody wrote meanwhile (else None; so is a match)."""
        count, id_sum, head = self.store.passages_at_head()
        if head != self._applied or self._own:
            return None  # written meanwhile: the next sync applies it
        actual = self.vectors.meta()
        if (actual.count, actual.id_sum) == (count, id_sum):
            return None
        return (
            f"after catching up with the change log, the index holds {actual.count} "
            f"passages, the database {count}"
        )

    def _index_from_store(self) -> VectorIndex:
        return vector_index_from_store(self.store, self.embedder.dimension, self.embedder.name)

    # -- following other processes' writes ------------------------------------------------

    def sync(self) -> int:
        """Apply the change log entries other processes wrote since the last one applied
        (this process's own were applied as they were written); a reindex done elsewhere,
        or a log pruned past the last entry applied, loads every stored vector into a new
        index instead (no re-embedding). Prunes the log now and then. Returns how many
        entries of other processes it applied."""
        with self._sync_lock:
            applied = self._follow()
            if time.monotonic() - self._pruned_at >= PRUNE_INTERVAL_SECONDS:
                self._pruned_at = time.monotonic()
                pruned = self.store.prune_changes()
                if pruned:
                    log.info("Pruned %s old change log entries", pruned)
        if applied:
            self._changed()
        return applied

    def sync_lag(self) -> int:
        """How many change log entries are not applied here yet (0: up to date)."""
        applied = self._applied  # read first: a sync meanwhile can only make this larger
        own = len(self._own)
        pending, pruned_to = self.store.pending_changes(applied)
        lag = max(pending - own, 0)
        return max(lag, 1) if pruned_to > applied else lag

    def _follow(self) -> int:
        """``sync`` without pruning and saving; the caller holds the sync lock."""
        done = 0
        while True:
            entries, pruned_to = self.store.changes_after(self._applied, SYNC_BATCH)
            if self._applied < pruned_to:
                log.warning(
                    "Rebuilding the vector index from the stored vectors (no re-embedding): "
                    "the change log was pruned past entry %s, the last this process applied",
                    self._applied,
                )
                self._reload()
                continue
            if not entries:
                return done
            with self._write_lock:
                others = [e for e in entries if e.seq not in self._own]
                reindexed = any(e.reindex for e in others)
                if not reindexed:
                    self._apply(others)
                    self._own.difference_update(e.seq for e in entries)
                    self._applied = entries[-1].seq
            if reindexed:
                log.info("Loading the vectors re-embedded by another process")
                self._reload()
            done += len(others)

    def _apply(self, entries: Sequence[Change]) -> None:
        """Passage entries, idempotently: removed ids removed, added ids removed and added
        again with the vectors stored now (none when the passage is gone since)."""
        if not entries:
            return
        remove, add = net_effect(entries)
        self.vectors.remove(np.array(sorted(remove), dtype=np.int64))
        if add:
            ids, vectors = self.store.vectors(sorted(add))
            self.vectors.add(ids, vectors)
        self.replayed += len(entries)
        self._dirty = True

    def _reload(self) -> None:
        """Swap in a vector index of every stored vector (read aside: searches and writes
        go on meanwhile); the entries written meanwhile are applied by the caller's
        ``_follow``, this process's own included (they went into the old index)."""
        head = self.store.change_state().head  # every entry up to it is in what is read
        fresh = self._index_from_store()
        with self._write_lock:
            self.vectors = fresh
            self._applied = head
            self._own.clear()
            self.rebuilds += 1
            self._dirty = True

    # -- ingestion ------------------------------------------------------------------------

    def ingest(self, sources: Sequence[str], progress: Progress | None = None) -> IngestReport:
        """Ingest files, folders (recursively) and URLs. Each input is all or nothing: one
        that cannot be read or parsed, for whatever reason, gets a one-line reason and the
        batch goes on. Files in folders that are not articles by their name (README, ...)
        are skipped, and copies of an article read before are counted as duplicates."""
        inputs, skipped = _expand(sources)
        report = IngestReport(skipped=skipped)
        read: dict[str, tuple[str, str]] = {}  # article id -> (content hash, name) read first
        pending: list[Article] = []
        pending_chars = 0
        for done, source in enumerate(inputs, start=1):
            try:
                articles = self._read(source)
            except Exception as error:  # any failure is this input's reason
                report.failed.append((source, failure_reason(error)))
            else:
                articles = _drop_copies(articles, read, report.duplicates)
                pending += articles
                pending_chars += sum(len(a.text) for a in articles)
            if pending_chars > EMBED_BATCH_PASSAGES * 600:  # about that many passages
                report.merge(self.add_articles(pending, save=False))
                pending, pending_chars = [], 0
            if progress:
                progress(done, len(inputs))
        report.merge(self.add_articles(pending, save=False))
        if report.added or report.updated:
            self._changed()
        return report

    def ingest_document(self, name: str, data: bytes) -> IngestReport:
        """Ingest one uploaded file's bytes, all or nothing."""
        report = IngestReport()
        try:
            self._check_size(len(data))
            articles = formats.parse(name, data)
        except Exception as error:  # any failure is this input's reason
            report.failed.append((name, failure_reason(error)))
            return report
        return self.add_articles(articles)

    def _read(self, source: str) -> list[Article]:
        if is_url(source):
            page = fetch(source, FetchPolicy.from_settings(self.settings))
            name = "page.html" if "html" in page.content_type else page.url.rsplit("/", 1)[-1]
            return formats.parse(name, page.data, url=page.url)
        path = Path(source)
        try:
            info = path.stat()
        except FileNotFoundError:
            raise InputError("no such file") from None
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"not a regular file ({_file_kind(info.st_mode)})")
        self._check_size(info.st_size)
        with path.open("rb") as handle:  # at most the limit, should the file grow meanwhile
            data = handle.read(self.settings.max_input_bytes + 1)
        self._check_size(len(data))
        return formats.parse(source, data)  # the path as given names it in reports

    def _check_size(self, size: int) -> None:
        if size > self.settings.max_input_bytes:
            raise InputError(
                f"too large ({size:,} bytes; the limit is {self.settings.max_input_bytes:,}, "
                "set by MAX_INPUT_BYTES)"
            )

    def add_articles(self, articles: Sequence[Article], *, save: bool = True) -> IngestReport:
        """Embed and store new or changed articles; unchanged ones are left alone. With
        ``save=False`` the vector index is only marked changed (the caller saves it)."""
        unique, duplicates = _unique(articles)
        report = IngestReport(duplicates=duplicates)
        todo: list[tuple[Article, str, list[Passage]]] = []
        for article in unique:
            digest = _content_hash(article)
            if self.store.content_hash(article.id) == digest:
                report.unchanged.append(article.title)
                continue
            try:
                passages = chunk_article(article, self.settings.passage_chars)
            except Exception as error:  # this article's reason; the rest go on
                report.failed.append((article.source or article.title, failure_reason(error)))
                continue
            if not passages:
                report.failed.append((article.source or article.title, "no text to index"))
                continue
            todo.append((article, digest, passages))
        for batch in _batches(todo, EMBED_BATCH_PASSAGES):
            embedded = self._embed([(a.title, p) for a, _, ps in batch for p in ps])
            offset = 0
            for article, digest, passages in batch:
                vectors, sentences = (
                    embedded[0][offset : offset + len(passages)],
                    embedded[1][offset : offset + len(passages)],
                )
                offset += len(passages)
                with self._write_lock:
                    existed = self.store.content_hash(article.id) is not None
                    written = self.store.replace_article(
                        article, digest, passages, vectors, sentences
                    )
                    self.vectors.remove(written.removed)
                    self.vectors.add(np.array(written.added, dtype=np.int64), vectors)
                    self._own.add(written.seq)
                    self._dirty = True
                (report.updated if existed else report.added).append(article.title)
                report.article_ids.append(article.id)
                report.passages += len(passages)
        if save and (report.added or report.updated):
            self._changed()
        return report

    def _embed(self, items: Sequence[tuple[str, Passage]]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passage vectors and, per passage, its sentence vectors, from one model call over
        the sentences (a passage's vector is the mean of its sentences')."""
        texts: list[str] = []
        bounds = []
        for title, passage in items:
            sentences = sentence_inputs(title, passage.text, passage.sentences)
            bounds.append((len(texts), len(texts) + len(sentences)))
            texts += sentences
        vectors = self.embedder.encode(texts)
        sentence_vectors = [vectors[a:b] for a, b in bounds]
        passage_vectors = np.stack([passage_vector(v) for v in sentence_vectors])
        return passage_vectors, sentence_vectors

    # -- search ---------------------------------------------------------------------------
    #
    # A search is two halves: ``plan`` needs no model (the question's words and their
    # spelling, the keyword query, the keyword candidates' rows) and runs while the question
    # is embedded; ``answer`` takes the plan and the question's vector (the vector index,
    # the remaining rows, ranking, quotes). ``ArticleIndex`` embeds in its micro-batcher
    # and plans in a worker thread at the same time; ``search`` does the same with a
    # thread of its own.

    def search(
        self, question: str, k: int = 3, offset: int = 0, filters: SearchFilters | None = None
    ) -> SearchResult:
        """The best ``k`` hits after ``offset``; ``refused`` when nothing is relevant."""
        question = " ".join(question.split())
        if not question:
            return SearchResult(hits=[], refused=True)
        planning = _planner().submit(self.plan, question, filters)
        try:
            query = self.embedder.encode([question])[0]
        finally:
            plan = planning.result()  # waited for even when embedding failed
        meant = self.embedder.encode([plan.meant])[0] if plan.meant else None
        return self.answer(plan, query, meant, k=k, offset=offset)

    def search_vector(
        self,
        question: str,
        query: np.ndarray,
        *,
        k: int = 3,
        offset: int = 0,
        filters: SearchFilters | None = None,
    ) -> SearchResult:
        """``search`` with the question already embedded (batch evaluation uses this)."""
        plan = self.plan(" ".join(question.split()), filters)
        meant = self.embedder.encode([plan.meant])[0] if plan.meant else None
        return self.answer(plan, query, meant, k=k, offset=offset)

    def plan(self, question: str, filters: SearchFilters | None = None) -> SearchPlan:
        """The half of a search that needs no model (thread-safe): the outlet and date
        filter, the question's words and their spelling, the keyword query and the rows of
        its candidates."""
        allowed = None
        if filters and (filters.outlets or filters.since or filters.until):
            allowed = self.store.allowed_ids(filters)
            if not len(allowed):
                return SearchPlan(question, filters, allowed, [], Spelling(), {}, {})
        words = terms(question)
        # Misspelt words ("peple"): the keyword query gets their corrections too, and the
        # corrected question is embedded beside the typed one (index/spelling.py).
        spelling = self.speller.spell(words)
        keyword: dict[int, float] = {}
        if words:
            recipe = self.recipe
            searched = spelling.keyword_words(words)
            weights = (recipe.title_weight, recipe.body_weight)
            memory = self.keywords_in_memory if allowed is None else None
            found = memory.search(searched, recipe.candidates, weights) if memory else None
            # Passages outside the keyword top-N count as no keyword match: scoring them
            # exactly costs 20 ms at 100k passages and changes R@5 on SQuAD by 0.001.
            keyword = dict(
                found
                if found is not None
                else self.store.keyword_search(
                    searched, recipe.candidates, filters, weights, total=self.vectors.count
                )
            )
        rows = self.store.passages(sorted(keyword))
        return SearchPlan(question, filters, allowed, words, spelling, keyword, rows)

    def answer(
        self,
        plan: SearchPlan,
        query: np.ndarray,
        meant: np.ndarray | None = None,
        *,
        k: int = 3,
        offset: int = 0,
    ) -> SearchResult:
        """The half of a search that needs the question's vector (and ``meant``'s, the
        corrected question's, when ``plan.meant`` names one)."""
        if plan.allowed is not None and not len(plan.allowed):
            return SearchResult(hits=[], refused=True)
        recipe = self.recipe
        if meant is not None:
            query = normalise((query + meant)[None, :])[0]
        # A rebuild may swap self.vectors meanwhile; this search keeps the one it read.
        ids, _ = self.vectors.search(query, recipe.candidates, plan.allowed)
        rows = plan.rows | self.store.passages(sorted(set(ids.tolist()) - plan.rows.keys()))
        filters = plan.filters
        prefer_recent = bool(filters and filters.prefer_recent) or wants_recent(plan.question)
        ranked = rank(
            query,
            rows,
            plan.keyword,
            recipe,
            recent_from=datetime.now(UTC).date() if prefer_recent else None,
            question=plan.question,
        )
        if not ranked:
            return SearchResult(hits=[], refused=True)
        top = ranked[0]
        words = plan.spelling.corrected_words(plan.words)
        found = self.store.words_found(words, top.row.id) if words else 0
        top_relevance = relevance(top, found, len(words), recipe)
        if top_relevance < self.min_relevance:
            return SearchResult(hits=[], refused=True, relevance=top_relevance)
        ranked = [c for c in ranked if c.score >= self.min_hit_share * top.score]
        page = ranked[offset : offset + k]
        return SearchResult(
            hits=[to_hit(c, words, plan.question) for c in page],
            has_more=len(ranked) > offset + k,
            relevance=top_relevance,
        )

    # -- reading and removal --------------------------------------------------------------

    def article(self, article_id: str) -> Article | None:
        return self.store.article(article_id)

    def article_passages(self, article_id: str) -> list[PassageRow]:
        """An article's passages in reading order, with their sentence vectors."""
        ids = self.store.article_passage_ids(article_id)
        rows = self.store.passages(ids)
        return [rows[i] for i in ids if i in rows]

    def latest(self, limit: int = 5) -> list[ArticleInfo]:
        return self.store.latest(limit)

    def sources(self) -> list[tuple[str, int]]:
        return self.store.sources()

    def remove(self, article_id_or_url: str) -> ArticleInfo | None:
        """Remove an article and its passages from the database and the vector index."""
        with self._write_lock:
            article_id = self.store.find_article_id(article_id_or_url.strip())
            info = self.store.article_info(article_id) if article_id else None
            if info is None:
                return None
            written = self.store.delete_article(info.id)
            self.vectors.remove(written.removed)
            self._own.add(written.seq)
            self._changed()
        return info

    def stats(self) -> IndexStats:
        counts = self.store.counts()
        return IndexStats(
            articles=counts.articles,
            passages=counts.passages,
            outlets=counts.outlets,
            vectors=self.vectors.count,
            model=self.embedder.name,
            dimension=self.embedder.dimension,
            index_bytes=self.vectors.nbytes,
            last_ingest=counts.last_ingest,
            built_at=datetime.fromisoformat(self.vectors.built_at),
        )

    # -- rebuilding -----------------------------------------------------------------------

    def reindex(self, progress: Progress | None = None) -> ReindexReport:
        """Re-embed every passage into a new vector index built aside, then swap it in.
        Searches meanwhile use the old index; articles added meanwhile are carried over.
        Other processes following the change log load the new vectors when it is done."""
        if not self._reindex_lock.acquire(blocking=False):
            raise ArticleIndexError("a reindex is already running")
        try:
            started = time.perf_counter()
            problems = self.store.check(full=True)
            if problems:
                raise DamagedDatabaseError(self.store.where, problems[0])
            fresh = self._reembed_all(progress)
            with self._write_lock:
                current = set(self.store.passage_ids())
                built = set(fresh.ids().tolist())
                fresh.remove(np.array(sorted(built - current), dtype=np.int64))
                missing = sorted(current - built)
                if missing:  # ingested during the rebuild (here or elsewhere), current model
                    fresh.add(*self.store.vectors(missing))
                self.vectors = fresh
            self.save()
            counts = self.store.counts()
            return ReindexReport(
                counts.articles,
                fresh.count,
                time.perf_counter() - started,
            )
        finally:
            self._reindex_lock.release()

    def _reembed_all(self, progress: Progress | None) -> VectorIndex:
        """Embed every stored passage again, store the vectors, return a new index of them.
        The last batch stored appends the ``reindex`` entry to the change log."""
        total = self.store.counts().passages
        fresh = VectorIndex(self.embedder.dimension, self.embedder.name, expected=total)
        done = 0
        if progress:
            progress(0, total)
        for rows, last in _with_last(self.store.iter_passages_for_embedding()):
            items = [
                (title, Passage("", 0, 0, len(text), text, tuple(spans)))
                for _, title, text, spans in rows
            ]
            vectors, sentences = self._embed(items)
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            with self._write_lock:
                seq = self.store.replace_vectors(
                    zip(ids.tolist(), vectors, sentences, strict=True), last=last
                )
                if seq is not None:  # this process swaps in its own new index
                    self._own.add(seq)
            fresh.add(ids, vectors)
            done += len(rows)
            if progress:
                progress(done, total)
        return fresh

    def _changed(self) -> None:
        """Persist the vector index after a change: at once when the last save is older than
        ``save_interval``, else at a later change or at ``close``. Rewriting a 150 MB index for
        every article a feed brings would be wasteful, and an index file that lags the
        (already committed) database is simply rebuilt from it on the next start."""
        with self._write_lock:
            self._dirty = True
            due = time.monotonic() - self._saved_at >= self.save_interval
        if due:
            self.save(wait=False)

    def save(self, *, wait: bool = True) -> None:
        """Write the vector index and its metadata now (atomically), with the last change
        log entry applied. Processes sharing DATA_DIR take turns; ``wait=False`` leaves
        the writing to another process that is at it (this one stays marked changed).
        Writers and ``sync`` wait only while the index is copied, not while it is written."""
        with self._index_file(wait=wait) as locked:
            if not locked:
                return
            with self._write_lock:
                followed = (self._log_id, self._applied) if self._log_id else None
                data, meta = self.vectors.snapshot(followed)
                self._dirty, self._saved_at = False, time.monotonic()
            try:
                write_snapshot(self.index_path, data, meta)
            except BaseException:
                self._dirty = True
                raise

    @contextlib.contextmanager
    def _index_file(self, *, shared: bool = False, wait: bool = True) -> Iterator[bool]:
        """A lock on the saved vector index between processes (``flock`` on a file beside
        it): shared to read the index and its metadata as one pair, exclusive to write
        them. Yields False when ``wait`` is False and another process holds it."""
        path = self.index_path.with_name(self.index_path.name + ".lock")
        with open(path, "a+b") as handle:
            flags = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
            try:
                fcntl.flock(handle, flags if wait else flags | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True  # released when the file closes

    def close(self) -> None:
        if self.keywords_in_memory is not None:
            self.keywords_in_memory.close()
        with self._sync_lock:  # a sync running in another thread finishes first
            if self._own:  # this process wrote: saved, the index records the newest entry
                with contextlib.suppress(Exception):
                    self._follow()
        if self._dirty:
            self.save()
        self.store.close()
        parsing_pool.shutdown()  # its child processes, started when a page was parsed


def index_path(settings: IndexSettings) -> Path:
    """The saved vector index, beside the database."""
    return settings.data_dir / "passages.faiss"


def database_path(settings: IndexSettings) -> Path:
    """The SQLite file (used when DATABASE_URL is unset)."""
    return settings.data_dir / SQLITE_FILE


def open_store(settings: IndexSettings) -> Store:
    """The database DATABASE_URL names (PostgreSQL), else the SQLite file in DATA_DIR,
    checked. An empty (0-byte) SQLite file beside a saved vector index is damage, not a
    fresh install: it is refused rather than silently started over."""
    if settings.database_url is not None:
        return Store(database_url(settings.data_dir, settings.database_url.get_secret_value()))
    path = database_path(settings)
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size == 0 and index_path(settings).exists():
            raise DamagedDatabaseError(path, f"empty file, but {index_path(settings)} exists")
    return Store(path)


def vector_index_from_store(store: Store, dimension: int, model: str) -> VectorIndex:
    """A vector index of the vectors kept in the database (no re-embedding)."""
    index = VectorIndex(dimension, model, expected=store.counts().passages)
    for ids, vectors in store.iter_vectors():
        index.add(ids, vectors)
    return index


@functools.cache
def _planner() -> ThreadPoolExecutor:
    """The threads ``IndexCore.search`` plans in while the calling thread embeds."""
    return ThreadPoolExecutor(max_workers=PLANNERS, thread_name_prefix="index-plan")


def failure_reason(error: Exception) -> str:
    """One line saying why an input could not be ingested."""
    if isinstance(error, InputError):
        return str(error)
    if isinstance(error, OSError):
        return f"cannot read ({error.strerror or error})"
    detail = " ".join(str(error).split())
    detail = detail if len(detail) <= 160 else detail[:159] + "\u2026"
    return f"cannot be parsed ({type(error).__name__}{': ' + detail if detail else ''})"


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    return next((name for test, name in kinds if test(mode)), "not a file")


def _expand(sources: Iterable[str]) -> tuple[list[str], list[str]]:
    """The inputs, with folders replaced by the article files below them (sorted), and the
    files below them skipped by name as not articles. Inputs named explicitly are kept."""
    inputs: list[str] = []
    skipped: list[str] = []
    for source in sources:
        path = Path(source)
        if is_url(source) or not path.is_dir():
            inputs.append(source)
            continue
        for child in sorted(path.rglob("*")):
            if (
                child.is_file()
                and not child.name.startswith(".")
                and child.suffix.lower() in formats.SUPPORTED_EXTENSIONS
            ):
                (inputs if formats.is_article_name(child.name) else skipped).append(str(child))
    return inputs, skipped


def _drop_copies(
    articles: Iterable[Article],
    read: dict[str, tuple[str, str]],
    duplicates: list[tuple[str, str]],
) -> list[Article]:
    """The articles that are not identical copies of one read before in this ingest;
    ``read`` maps article ids to (content hash, name), and the copies go to ``duplicates``."""
    kept = []
    for article in articles:
        digest = _content_hash(article)
        earlier = read.get(article.id)
        if earlier and earlier[0] == digest:
            duplicates.append((_name(article), earlier[1]))
        else:
            read[article.id] = (digest, _name(article))
            kept.append(article)
    return kept


def _unique(articles: Iterable[Article]) -> tuple[list[Article], list[tuple[str, str]]]:
    """Each article id once, and the (name, name of the article kept) of those left out.
    Of identical copies the first is kept; of differing versions, the last."""
    kept: dict[str, Article] = {}
    duplicates: list[tuple[str, str]] = []
    for article in articles:
        earlier = kept.get(article.id)
        if earlier is None:
            kept[article.id] = article
        elif _content_hash(earlier) == _content_hash(article):
            duplicates.append((_name(article), _name(earlier)))
        else:
            duplicates.append((_name(earlier), _name(article)))
            kept[article.id] = article
    return list(kept.values()), duplicates


def _name(article: Article) -> str:
    return article.source or article.title


def _batches(
    todo: list[tuple[Article, str, list[Passage]]], passages: int
) -> Iterable[list[tuple[Article, str, list[Passage]]]]:
    batch: list[tuple[Article, str, list[Passage]]] = []
    size = 0
    for item in todo:
        batch.append(item)
        size += len(item[2])
        if size >= passages:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _with_last(items: Iterable[T]) -> Iterator[tuple[T, bool]]:
    """Each item, and whether it is the last (the next one is read before it is yielded)."""
    iterator = iter(items)
    try:
        item = next(iterator)
    except StopIteration:
        return
    for following in iterator:
        yield item, False
        item = following
    yield item, True


def _content_hash(article: Article) -> str:
    fields = (
        article.title,
        article.text,
        article.url,
        article.outlet,
        article.author,
        article.published.isoformat() if article.published else None,
    )
    return hashlib.sha256(repr(fields).encode()).hexdigest()
