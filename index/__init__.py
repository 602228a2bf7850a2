"""The article index: ingest news articles, search their passages, quote the answers.

Knows nothing of Telegram. The bot uses ``ArticleIndex`` (async); scripts may use
``IndexCore`` (synchronous) or the command line, ``python -m index --help``.
"""

from index.core import IndexCore, ReindexReport
from index.embedding import Embedder, SentenceTransformerEmbedder
from index.errors import ArticleIndexError, FetchError, InputError, ModelError
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
    "Embedder",
    "FetchError",
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
]
