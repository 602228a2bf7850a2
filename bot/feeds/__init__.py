"""News feeds: fetch (conditional GET), parse (feedparser), dedupe and poll into the index.

The names below are imported on first use (PEP 562): a feed-parsing child process
(``index.parsing_pool``) imports ``bot.feeds.parse`` without the poller's dependencies."""

from __future__ import annotations

from typing import TYPE_CHECKING

from index.lazy import lazy_exports

if TYPE_CHECKING:
    from bot.feeds.errors import FeedError
    from bot.feeds.fetch import Fetcher, FetchResult
    from bot.feeds.parse import FeedEntry, ParsedFeed, parse_feed
    from bot.feeds.poller import FeedPoller, PollReport

_HOMES = {
    "FeedEntry": "bot.feeds.parse",
    "FeedError": "bot.feeds.errors",
    "FeedPoller": "bot.feeds.poller",
    "FetchResult": "bot.feeds.fetch",
    "Fetcher": "bot.feeds.fetch",
    "ParsedFeed": "bot.feeds.parse",
    "PollReport": "bot.feeds.poller",
    "parse_feed": "bot.feeds.parse",
}

__all__ = [
    "FeedEntry",
    "FeedError",
    "FeedPoller",
    "FetchResult",
    "Fetcher",
    "ParsedFeed",
    "PollReport",
    "parse_feed",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
