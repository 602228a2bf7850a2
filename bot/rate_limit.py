"""A per-user rate limit: beyond ``limit`` events in ``window`` seconds, events are dropped
(not queued) and the user gets one friendly notice per flood. A dropped inline query gets an
empty answer, cached briefly and for that user only, so no search runs.

The counting is a `RateLimiter`: `MemoryRateLimiter` counts in this process,
`bot.shared_state.RedisRateLimiter` in Redis, across every replica.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, InlineQuery, Message, TelegramObject

from bot.i18n import N_
from bot.i18n import gettext as _

__all__ = [
    "FLOOD_NOTICE",
    "MemoryRateLimiter",
    "RateLimitMiddleware",
    "RateLimiter",
    "Verdict",
]

FLOOD_NOTICE = N_("You're sending messages faster than I can read them. Please wait a few seconds.")
DROPPED_INLINE_CACHE = 2  # seconds Telegram may reuse the empty answer to a dropped query

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class Verdict(enum.Enum):
    """What to do with a user's event."""

    ALLOW = "allow"
    DROP = "drop"  # dropped, within a flood the user was already told about
    DROP_NEW_FLOOD = "drop-new-flood"  # the first drop after a quiet window: tell the user


class RateLimiter(Protocol):
    """Counts each user's events in a sliding window."""

    async def hit(self, user_id: int) -> Verdict:
        """Count an event of ``user_id`` unless over the limit; say what to do with it."""


class MemoryRateLimiter:
    """A sliding window per user, in this process's memory."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._events: dict[int, deque[float]] = {}
        self._dropping: dict[int, float] = {}  # user id -> when their last event was dropped

    async def hit(self, user_id: int) -> Verdict:
        now = self.clock()
        if self._allow(user_id, now):
            return Verdict.ALLOW
        last_dropped = self._dropping.get(user_id)
        self._dropping[user_id] = now
        if last_dropped is None or now - last_dropped > self.window:
            return Verdict.DROP_NEW_FLOOD
        return Verdict.DROP

    def _allow(self, user_id: int, now: float) -> bool:
        events = self._events.setdefault(user_id, deque())
        while events and events[0] <= now - self.window:
            events.popleft()
        if len(events) >= self.limit:
            return False
        events.append(now)
        if len(self._events) > 10_000:  # forget idle users
            self._forget(now)
        return True

    def _forget(self, now: float) -> None:
        cutoff = now - self.window
        for user_id in [u for u, times in self._events.items() if not times or times[-1] <= cutoff]:
            del self._events[user_id]
        for user_id in [u for u, when in self._dropping.items() if when <= cutoff]:
            del self._dropping[user_id]


class RateLimitMiddleware(BaseMiddleware):
    """Inner middleware for messages, callback queries and inline queries: counts only events
    a handler takes, so group chatter the bot ignores never counts against anyone."""

    def __init__(self, limiter: RateLimiter, *, notice_every_time: bool = False) -> None:
        """``notice_every_time``: every dropped message gets the notice, not only the first
        of a flood (the terminal chat, where silence would look like a hang)."""
        self.limiter = limiter
        self.notice_every_time = notice_every_time

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user = getattr(event, "from_user", None)
        if user is None:
            return await handler(event, data)
        verdict = await self.limiter.hit(user.id)
        if verdict is Verdict.ALLOW:
            return await handler(event, data)
        if isinstance(event, InlineQuery):
            await event.answer([], cache_time=DROPPED_INLINE_CACHE, is_personal=True)
            return None
        if verdict is Verdict.DROP_NEW_FLOOD or self.notice_every_time:
            if isinstance(event, Message):
                await event.answer(_(FLOOD_NOTICE))
            elif isinstance(event, CallbackQuery):
                await event.answer(_(FLOOD_NOTICE), show_alert=True)
        elif isinstance(event, CallbackQuery):
            await event.answer()  # stop the button's spinner, silently
        return None
