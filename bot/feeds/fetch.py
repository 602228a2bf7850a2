"""HTTP for feeds and pages: conditional GET and caching hints on top of the index's
outbound policy (``index.fetch``: allowed destinations, one deadline, size limit, redirects)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.feeds.errors import FeedError
from index.errors import FetchError
from index.fetch import FetchPolicy, HttpClient

__all__ = ["FetchResult", "Fetcher"]

USER_AGENT = "newsbot/0.1 (+feed reader)"
_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-)?max-age\s*=\s*(\d+)", re.IGNORECASE)
_PERMANENT = frozenset({301, 308})


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one GET brought: ``not_modified`` for a 304, else the body."""

    url: str  # after redirects
    status: int
    data: bytes
    content_type: str
    etag: str | None
    last_modified: str | None
    max_age: float | None  # seconds, from Cache-Control
    moved_permanently: bool  # every redirect on the way was permanent (301/308)

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class Fetcher:
    """One HTTP session for all feed and page requests, under ``policy``."""

    def __init__(self, policy: FetchPolicy) -> None:
        self._client = HttpClient(policy, user_agent=USER_AGENT)

    async def close(self) -> None:
        await self._client.close()

    async def get(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        """GET ``url`` (conditionally when given validators); raises ``FeedError`` with the
        policy's one-line reason."""
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        try:
            response = await self._client.get(url, headers=headers)
        except FetchError as error:
            raise FeedError(str(error)) from None
        cache = _MAX_AGE.search(response.headers.get("Cache-Control", ""))
        return FetchResult(
            url=response.url,
            status=response.status,
            data=response.data,
            content_type=response.content_type,
            etag=response.headers.get("ETag") or etag,
            last_modified=response.headers.get("Last-Modified") or last_modified,
            max_age=float(cache.group(1)) if cache else None,
            moved_permanently=bool(response.redirects)
            and all(status in _PERMANENT for status in response.redirects),
        )
