"""The async facade the bot uses: every blocking call (embedding, FAISS, SQLite, file
and network I/O) runs in a worker thread, so the event loop never waits on them.

Questions asked at about the same time are embedded together, in one model call
(``index.batching``); the rest of each search then runs in its own worker thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

import numpy as np

from index.batching import MicroBatcher
from index.core import IndexCore, Progress, ReindexReport
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


class ArticleIndex:
    """Articles in, ranked passages out; safe to share across concurrent handlers."""

    def __init__(self, core: IndexCore) -> None:
        self.core = core
        self.questions = MicroBatcher[str, np.ndarray](self._embed_questions)

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
        return cls(core)

    async def _run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(partial(func, *args, **kwargs))

    async def ingest(
        self, sources: Sequence[str], progress: Progress | None = None
    ) -> IngestReport:
        """Ingest files, folders (recursively) and article URLs."""
        return await self._run(self.core.ingest, sources, progress=progress)

    async def ingest_document(self, name: str, data: bytes) -> IngestReport:
        """Ingest an uploaded file's bytes; ``name`` gives the format by its extension."""
        return await self._run(self.core.ingest_document, name, data)

    async def add_articles(self, articles: Sequence[Article]) -> IngestReport:
        """Add already-parsed articles (from feeds), searchable as soon as this returns."""
        return await self._run(self.core.add_articles, articles)

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
            query = await self.questions.submit(question)
            return await self._run(
                self.core.search_vector, question, query, k=k, offset=offset, filters=filters
            )

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
        return await self._run(self.core.remove, article_id_or_url)

    async def reindex(self, progress: Progress | None = None) -> ReindexReport:
        """Rebuild the vector index aside and swap it in; searches go on meanwhile."""
        return await self._run(self.core.reindex, progress=progress)

    async def stats(self) -> IndexStats:
        return await self._run(self.core.stats)

    async def close(self) -> None:
        await self._run(self.core.close)
