"""Fetch article pages over HTTP(S), bounded in size and time."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass

from index.errors import FetchError

USER_AGENT = "newsbot/0.1 (+article indexer)"


@dataclass(frozen=True, slots=True)
class Page:
    url: str  # after redirects
    content_type: str
    data: bytes


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def fetch(url: str, *, max_bytes: int, timeout: float) -> Page:
    """The page at ``url``; raises ``FetchError`` naming the reason on any failure."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise FetchError(f"page is too large ({int(length):,} bytes, limit {max_bytes:,})")
            data = response.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise FetchError(f"page is too large (over {max_bytes:,} bytes)")
            return Page(response.geturl(), response.headers.get_content_type(), data)
    except urllib.error.HTTPError as error:
        raise FetchError(f"HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise FetchError(f"cannot reach the site ({error.reason})") from None
    except TimeoutError:
        raise FetchError(f"no answer within {timeout:g} s") from None
    except ValueError as error:
        raise FetchError(f"invalid URL ({error})") from None
