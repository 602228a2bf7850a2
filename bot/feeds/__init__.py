"""News feeds: fetch (conditional GET), parse (feedparser), dedupe and poll into the index."""

from bot.feeds.errors import FeedError
from bot.feeds.fetch import Fetcher, FetchResult
from bot.feeds.parse import FeedEntry, ParsedFeed, parse_feed
from bot.feeds.poller import FeedPoller, PollReport

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
