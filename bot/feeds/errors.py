"""Errors of the feeds package.

``FeedError`` (base): a feed cannot be fetched or parsed; the message says why, in words an
admin can act on ("HTTP 404 Not Found", "no answer within 20 s", "not a feed (...)").
"""

from __future__ import annotations

__all__ = ["FeedError"]


class FeedError(Exception):
    """A feed or article page could not be fetched or parsed."""
