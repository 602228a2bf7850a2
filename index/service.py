"""The async facade the bot uses: every blocking call (embedding, FAISS, SQLite, file
and network I/O) runs in a worker thread, so the event loop never waits on them.

Questions asked at about the same time are embedded together, in one model call
(``index.batching``); meanwhile each question's keyword half (``IndexCore.plan``) runs in a
worker thread, and the rest of the search (``IndexCore.answer``) in another after both.

From ``open`` to ``close`` the index follows the writes of other processes on the same
database (``IndexCore.sync``, ``index/changes.py``) in the background: every
INDEX_SYNC_INTERVAL seconds, and on PostgreSQL at once, woken by ``LISTEN``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

import numpy as np

from index.batching import MicroBatcher
from index.changes import CHANNEL
from index.core import IndexCore, Progress, ReindexReport
from index.database import postgres_url
from index.embedding import Embedder, create_embedder
from index.metrics import SEARCH_SECONDS
from index.models import (
    Article,
    ArticleInfo,
    IndexStats,
    IngestReport,
    SearchFilters,
    SearchResult,
)
from index.settings import IndexSettings

T = TypeVar("T")
log = logging.getLogger(__name__)
LISTEN_RETRY_SECONDS = 5.0  # wait before listening again after the connection was lost
LISTEN_CHECK_SECONDS = 60.0  # a quiet listening connection is checked this often


class ArticleIndex:
    """Articles in, ranked passages out; safe to share across concurrent handlers.

    ``follow=True`` (what ``open`` does) follows other processes' writes until ``close``."""

    def __init__(self, core: IndexCore, *, follow: bool = False) -> None:
        self.core = core
        self.questions = MicroBatcher[str, np.ndarray](self._embed_questions)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        if follow:
            self._tasks.append(asyncio.create_task(self._follow(), name="index-follow"))
            if core.store.dialect == "postgresql":
                self._tasks.append(asyncio.create_task(self._listen(), name="index-listen"))

    @classmethod
    async def open(
        cls, settings: IndexSettings | None = None, embedder: Embedder | None = None
    ) -> ArticleIndex:
        """Open (or create) the index under ``settings.data_dir``, loading the model first:
        a model that cannot load fails here, and the first question does not wait for it."""
        settings = settings or IndexSettings()
        embedder = embedder or create_embedder(settings)
        await asyncio.to_thread(embedder.encode, ["warm-up"])
        core = await asyncio.to_thread(IndexCore.open, settings, embedder)
        core.keep_keywords_in_memory()  # built in the background, for a large index
        return cls(core, follow=True)

    async def _run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(partial(func, *args, **kwargs))

    async def _write(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A write in a worker thread; then the in-memory keyword index, when there is one,
        caught up with it in another, so that the next question need not."""
        result = await self._run(func, *args, **kwargs)
        await self._keywords_caught_up()
        return result

    async def _keywords_caught_up(self) -> None:
        memory = self.core.keywords_in_memory
        if memory is not None:
            await self._run(memory.refresh)

    async def ingest(
        self, sources: Sequence[str], progress: Progress | None = None
    ) -> IngestReport:
        """Ingest files, folders (recursively) and article URLs."""
        return await self._write(self.core.ingest, sources, progress=progress)

    async def ingest_document(self, name: str, data: bytes) -> IngestReport:
        """Ingest an uploaded file's bytes; ``name`` gives the format by its extension."""
        return await self._write(self.core.ingest_document, name, data)

    async def add_articles(self, articles: Sequence[Article]) -> IngestReport:
        """Add already-parsed articles (from feeds), searchable as soon as this returns."""
        return await self._write(self.core.add_articles, articles)

    async def search(
        self,
        question: str,
        k: int = 3,
        offset: int = 0,
        filters: SearchFilters | None = None,
    ) -> SearchResult:
        """The ``k`` best hits after ``offset``, at most two per article."""
        question = " ".join(question.split())
        if not question:
            return SearchResult(hits=[], refused=True)
        with SEARCH_SECONDS.time():
            # The keyword half (spelling, keyword query) runs while the question is embedded
            plan, query = await asyncio.gather(
                self._run(self.core.plan, question, filters), self.questions.submit(question)
            )
            meant = await self.questions.submit(plan.meant) if plan.meant else None
            return await self._run(self.core.answer, plan, query, meant, k=k, offset=offset)

    def _embed_questions(self, questions: list[str]) -> list[np.ndarray]:
        return list(self.core.embedder.encode(questions))

    async def article(self, article_id: str) -> Article | None:
        return await self._run(self.core.article, article_id)

    async def latest(self, limit: int = 5) -> list[ArticleInfo]:
        """Newest articles first (by publication date, then ingestion time)."""
        return await self._run(self.core.latest, limit)

    async def sources(self) -> list[tuple[str, int]]:
        """Outlets with their article counts, largest first."""
        return await self._run(self.core.sources)

    async def remove(self, article_id_or_url: str) -> ArticleInfo | None:
        """Remove an article and its passages; None when there is no such article."""
        return await self._write(self.core.remove, article_id_or_url)

    async def reindex(self, progress: Progress | None = None) -> ReindexReport:
        """Rebuild the vector index aside and swap it in; searches go on meanwhile."""
        return await self._write(self.core.reindex, progress=progress)

    async def stats(self) -> IndexStats:
        return await self._run(self.core.stats)

    async def sync_lag(self) -> int:
        """How many changes other processes made are not searchable here yet (0: none)."""
        return await self._run(self.core.sync_lag)

    async def sync(self) -> int:
        """Apply the other processes' changes now; returns how many were applied."""
        applied = await self._run(self.core.sync)
        if applied:
            await self._keywords_caught_up()
        return applied

    async def _follow(self) -> None:
        """Sync every INDEX_SYNC_INTERVAL seconds, or at once when woken."""
        interval = self.core.settings.index_sync_interval
        failing = False
        while True:
            self._wake.clear()  # a wake-up during the sync below leads to another at once
            try:
                await self.sync()
            except Exception as error:  # the database is away: the next round tries again
                if not failing:
                    log.warning(
                        "Following the index's change log failed (%s); trying again every %s s",
                        _one_line(error, self._secret()),
                        interval,
                    )
                failing = True
            else:
                if failing:
                    log.warning("Following the index's change log again")
                failing = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)

    async def _listen(self) -> None:
        """Wake the follower at each NOTIFY of a change (PostgreSQL); reconnect when the
        connection is lost, syncing at once since notifications may have been missed."""
        import psycopg

        url = self.core.settings.database_url
        assert url is not None  # PostgreSQL
        conninfo = (
            postgres_url(url.get_secret_value())
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    conninfo, autocommit=True, connect_timeout=10
                ) as connection:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    self._wake.set()
                    while True:
                        async for _ in connection.notifies(timeout=LISTEN_CHECK_SECONDS):
                            self._wake.set()
                        await connection.execute("SELECT 1")  # still there?
            except (psycopg.Error, OSError) as error:
                log.warning(
                    "Listening for index changes failed (%s); polling every %s s, listening "
                    "again in %s s",
                    _one_line(error, url.get_secret_value()),
                    self.core.settings.index_sync_interval,
                    LISTEN_RETRY_SECONDS,
                )
                self._wake.set()
                await asyncio.sleep(LISTEN_RETRY_SECONDS)

    def _secret(self) -> str | None:
        url = self.core.settings.database_url
        return url.get_secret_value() if url else None

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self._run(self.core.close)


def _one_line(error: BaseException, secret: str | None = None) -> str:
    """An error in one line, without the database password."""
    text = " ".join(str(error).split()) or type(error).__name__
    password = postgres_url(secret).password if secret else None
    return text.replace(str(password), "***") if password else text
