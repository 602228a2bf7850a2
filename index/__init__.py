"""The article index: ingest news articles, search their passages, quote the answers.

Knows nothing of Telegram. The bot uses ``ArticleIndex`` (async); scripts may use
``IndexCore`` (synchronous) or the command line, ``python -m index --help``.
"""

import os

# FAISS and PyTorch each run an OpenMP pool. By default an idle pool's threads spin for a
# long while after each task, stealing the cores the other one needs next (a FAISS search
# right after embedding the question took 12 ms instead of 7). A short spin fixes that; it
# must be set before either library loads. An operator's own value wins.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

from index.core import IndexCore, ReindexReport
from index.embedding import Embedder, SentenceTransformerEmbedder
from index.errors import (
    ArticleIndexError,
    DamagedDatabaseError,
    FetchError,
    InputError,
    ModelError,
    StorageError,
)
from index.fetch import FetchPolicy
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
]
