"""HTTP for feeds and pages: conditional GET, timeouts, size limits, redirects, caching hints."""

from __future__ import annotations

import re
from dataclasses import dataclass

import aiohttp

from bot.feeds.errors import FeedError

__all__ = ["FetchResult", "Fetcher"]

USER_AGENT = "newsbot/0.1 (+feed reader)"
_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-)?max-age\s*=\s*(\d+)", re.IGNORECASE)


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
    """One aiohttp session for all feed and page requests."""

    def __init__(self, timeout: float, max_bytes: int) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_bytes = max_bytes
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        """GET ``url`` (conditionally when given validators); raises ``FeedError``."""
        if self._session is None:
            self._session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        try:
            async with self._session.get(
                url, headers=headers, timeout=self._timeout, max_redirects=10
            ) as response:
                if response.status >= 400:
                    raise FeedError(f"HTTP {response.status} {response.reason or ''}".strip())
                data = b""
                if response.status != 304:
                    data = await response.content.read(self._max_bytes + 1)
                    if len(data) > self._max_bytes:
                        raise FeedError(f"larger than {self._max_bytes:,} bytes")
                cache = _MAX_AGE.search(response.headers.get("Cache-Control", ""))
                return FetchResult(
                    url=str(response.url),
                    status=response.status,
                    data=data,
                    content_type=response.content_type or "application/octet-stream",
                    etag=response.headers.get("ETag") or etag,
                    last_modified=response.headers.get("Last-Modified") or last_modified,
                    max_age=float(cache.group(1)) if cache else None,
                    moved_permanently=bool(response.history)
                    and all(r.status in (301, 308) for r in response.history),
                )
        except TimeoutError:
            raise FeedError(f"no answer within {self._timeout.total:g} s") from None
        except aiohttp.TooManyRedirects:
            raise FeedError("too many redirects") from None
        except aiohttp.InvalidURL as error:
            raise FeedError(f"invalid URL ({error})") from None
        except aiohttp.ClientError as error:
            raise FeedError(
                f"cannot reach the site ({error.__class__.__name__}: {error})"
            ) from None
