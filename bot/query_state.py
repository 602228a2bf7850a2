"""Server-side state behind an answer's buttons, so callback data stays a few bytes.

An answer registers its question under a short random token; "More results" carries
``(token, offset)`` and each "Full article" button ``(token, hit number)``. States expire
after ``ttl`` seconds; a press on an expired button finds nothing and the handler
apologises. `QueryStore` is the interface: `MemoryQueryStore` keeps states in this process
(and drops the oldest beyond ``capacity``), `bot.shared_state.RedisQueryStore` keeps them in
Redis, where any replica can read them.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from aiogram.filters.callback_data import CallbackData

__all__ = [
    "FullArticle",
    "MemoryQueryStore",
    "MoreResults",
    "QueryState",
    "QueryStore",
    "new_token",
]


class MoreResults(CallbackData, prefix="more"):
    """The next page of hits for a stored question."""

    token: str
    offset: int


class FullArticle(CallbackData, prefix="art"):
    """The full text of hit number ``number`` (1-based, across pages) of a stored question."""

    token: str
    number: int


@dataclass(slots=True)
class QueryState:
    """A question and the articles of the hits shown so far, numbered from 1."""

    question: str
    article_ids: list[str] = field(default_factory=list)
    created: float = 0.0

    def article_id(self, number: int) -> str | None:
        """The article of hit ``number``, or None if there is no such hit."""
        return self.article_ids[number - 1] if 1 <= number <= len(self.article_ids) else None


def new_token() -> str:
    """A fresh state token: 8 URL-safe characters (48 random bits)."""
    return secrets.token_urlsafe(6)


class QueryStore(Protocol):
    """Where answers keep their question states, whichever the backend."""

    async def add(self, state: QueryState) -> str:
        """Store a new question's state; return its token."""

    async def get(self, token: str) -> QueryState | None:
        """The state of ``token``, or None when unknown or expired."""

    async def save(self, token: str, state: QueryState) -> None:
        """Store ``state`` again after a page added hits (its expiry does not move)."""


class MemoryQueryStore:
    """Question states in this process's memory, keyed by short tokens, with expiry and a
    size bound."""

    def __init__(
        self,
        ttl: float,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self.clock = clock
        self._states: OrderedDict[str, QueryState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._states)

    async def add(self, state: QueryState) -> str:
        """Store a new question's state; return its token (8 URL-safe characters)."""
        self._expire()
        token = new_token()
        while token in self._states:
            token = new_token()
        state.created = self.clock()
        self._states[token] = state
        while len(self._states) > self.capacity:
            self._states.popitem(last=False)
        return token

    async def get(self, token: str) -> QueryState | None:
        """The state of ``token``, or None when unknown or expired."""
        self._expire()
        return self._states.get(token)

    async def save(self, token: str, state: QueryState) -> None:
        """Keep ``state`` under ``token`` if the token is still known."""
        if token in self._states:
            self._states[token] = state

    def _expire(self) -> None:
        cutoff = self.clock() - self.ttl
        while self._states:
            token, state = next(iter(self._states.items()))
            if state.created >= cutoff:
                break
            del self._states[token]
