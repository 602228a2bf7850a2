"""The article index: ingest news articles, search their passages, quote the answers.

Knows nothing of Telegram. The bot uses ``ArticleIndex`` (async); scripts may use
``IndexCore`` (synchronous) or the command line, ``python -m index --help``.

The names below are imported on first use (PEP 562), so ``from index import IndexSettings``
does not load FAISS, and nothing here loads torch or onnxruntime until a text is embedded.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from index.lazy import lazy_exports

# FAISS and PyTorch each run an OpenMP pool. By default an idle pool's threads spin for a
# long while after each task, stealing the cores the other one needs next (a FAISS search
# right after embedding the question took 12 ms instead of 7). A short spin fixes that; it
# must be set before either library loads. An operator's own value wins.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

if TYPE_CHECKING:
    from index.core import IndexCore, ReindexReport
    from index.embedding import Embedder, SentenceTransformerEmbedder, create_embedder
    from index.errors import (
        ArticleIndexError,
        DamagedDatabaseError,
        FetchError,
        InputError,
        ModelError,
        StorageError,
    )
    from index.fetch import FetchPolicy
    from index.languages import model_reads, question_language
    from index.models import (
        Article,
        ArticleInfo,
        Hit,
        IndexStats,
        IngestReport,
        SearchFilters,
        SearchResult,
    )
    from index.service import ArticleIndex
    from index.settings import IndexSettings

_HOMES = {
    "Article": "index.models",
    "ArticleIndex": "index.service",
    "ArticleIndexError": "index.errors",
    "ArticleInfo": "index.models",
    "DamagedDatabaseError": "index.errors",
    "Embedder": "index.embedding",
    "FetchError": "index.errors",
    "FetchPolicy": "index.fetch",
    "Hit": "index.models",
    "IndexCore": "index.core",
    "IndexSettings": "index.settings",
    "IndexStats": "index.models",
    "IngestReport": "index.models",
    "InputError": "index.errors",
    "ModelError": "index.errors",
    "ReindexReport": "index.core",
    "SearchFilters": "index.models",
    "SearchResult": "index.models",
    "SentenceTransformerEmbedder": "index.embedding",
    "StorageError": "index.errors",
    "create_embedder": "index.embedding",
    "model_reads": "index.languages",
    "question_language": "index.languages",
}

__all__ = [
    "Article",
    "ArticleIndex",
    "ArticleIndexError",
    "ArticleInfo",
    "DamagedDatabaseError",
    "Embedder",
    "FetchError",
    "FetchPolicy",
    "Hit",
    "IndexCore",
    "IndexSettings",
    "IndexStats",
    "IngestReport",
    "InputError",
    "ModelError",
    "ReindexReport",
    "SearchFilters",
    "SearchResult",
    "SentenceTransformerEmbedder",
    "StorageError",
    "create_embedder",
    "model_reads",
    "question_language",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
