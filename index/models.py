"""Plain data that crosses the index's public API."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True, slots=True)
class Article:
    """One news article as parsed from a file, a page or a feed.

    ``id`` is the stable identity: a digest of the canonical URL when there is one,
    else of the content. ``text`` is the body with paragraphs separated by blank lines.
    """

    id: str
    title: str
    text: str
    url: str | None = None
    outlet: str | None = None
    author: str | None = None
    published: date | None = None
    source: str | None = None  # the file or URL it was read from


@dataclass(frozen=True, slots=True)
class Passage:
    """A span of an article's text: the unit that is embedded, searched and quoted."""

    article_id: str
    position: int  # 0-based order within the article
    start: int  # character offsets into Article.text
    end: int
    text: str
    sentences: tuple[tuple[int, int], ...] = ()  # sentence spans, relative to ``text``


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: a passage with its source and the sentences to quote."""

    article_id: str
    passage_id: int
    title: str
    outlet: str | None
    author: str | None
    published: date | None
    url: str | None
    passage: str
    quote: str
    quote_span: tuple[int, int]  # character offsets of ``quote`` inside ``passage``
    score: float

    def to_json(self) -> dict[str, object]:
        """The hit as the ``ask --json`` contract prints it."""
        return {
            "title": self.title,
            "outlet": self.outlet,
            "author": self.author,
            "published": self.published.isoformat() if self.published else None,
            "url": self.url,
            "passage": self.passage,
            "quote": self.quote,
            "score": round(self.score, 4),
        }


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """Narrow a search to some outlets and a publication date range (inclusive)."""

    outlets: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None
    prefer_recent: bool = False


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Ranked hits, or an empty list with ``refused`` set when nothing is relevant enough."""

    hits: list[Hit]
    refused: bool = False
    has_more: bool = False
    relevance: float | None = None  # of the top hit, the figure the refusal is judged on


@dataclass(slots=True)
class IngestReport:
    """What a batch of inputs did to the index. Every input lands in exactly one list, so
    the counts add up to the articles given (one per file, or per JSON record)."""

    added: list[str] = field(default_factory=list)  # article titles
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (input name, reason)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (name, name of the kept)
    skipped: list[str] = field(default_factory=list)  # files in folders that are not articles
    passages: int = 0
    article_ids: list[str] = field(default_factory=list)  # added or updated

    def merge(self, other: IngestReport) -> None:
        self.added += other.added
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.failed += other.failed
        self.duplicates += other.duplicates
        self.skipped += other.skipped
        self.passages += other.passages
        self.article_ids += other.article_ids

    def summary(self) -> str:
        text = (
            f"added {len(self.added)}, updated {len(self.updated)}, "
            f"unchanged {len(self.unchanged)}, failed {len(self.failed)}"
        )
        if self.duplicates:
            count = len(self.duplicates)
            text += (
                f", {count} duplicates of articles above"
                if count > 1
                else ", 1 duplicate of an article above"
            )
        if self.skipped:
            count = len(self.skipped)
            text += f", skipped {count} non-article file{'s' if count > 1 else ''}"
        return text


@dataclass(frozen=True, slots=True)
class ArticleInfo:
    """An article's metadata without its text, for listings."""

    id: str
    title: str
    url: str | None
    outlet: str | None
    author: str | None
    published: date | None
    ingested_at: datetime
    passages: int


@dataclass(frozen=True, slots=True)
class IndexStats:
    articles: int
    passages: int
    outlets: int
    vectors: int
    model: str
    dimension: int
    index_bytes: int
    last_ingest: datetime | None
    built_at: datetime | None
