"""A per-user rate limit: beyond ``limit`` events in ``window`` seconds, events are dropped
(not queued) and the user gets one friendly notice per flood. A dropped inline query gets an
empty answer, cached briefly and for that user only, so no search runs."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, InlineQuery, Message, TelegramObject

from bot.i18n import N_
from bot.i18n import gettext as _

__all__ = ["FLOOD_NOTICE", "RateLimitMiddleware"]

FLOOD_NOTICE = N_("You're sending messages faster than I can read them. Please wait a few seconds.")
DROPPED_INLINE_CACHE = 2  # seconds Telegram may reuse the empty answer to a dropped query

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class RateLimitMiddleware(BaseMiddleware):
    """Inner middleware for messages, callback queries and inline queries: counts only events
    a handler takes, so group chatter the bot ignores never counts against anyone."""

    def __init__(
        self,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        notice_every_time: bool = False,
    ) -> None:
        """``notice_every_time``: every dropped message gets the notice, not only the first
        of a flood (the terminal chat, where silence would look like a hang)."""
        self.limit = limit
        self.window = window
        self.clock = clock
        self.notice_every_time = notice_every_time
        self._events: dict[int, deque[float]] = {}
        self._dropping: dict[int, float] = {}  # user id -> when their last event was dropped

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user = getattr(event, "from_user", None)
        if user is None or self._allow(user.id):
            return await handler(event, data)
        if isinstance(event, InlineQuery):
            await event.answer([], cache_time=DROPPED_INLINE_CACHE, is_personal=True)
            return None
        now = self.clock()
        last_dropped = self._dropping.get(user.id)
        self._dropping[user.id] = now
        new_flood = last_dropped is None or now - last_dropped > self.window
        if new_flood or self.notice_every_time:
            if isinstance(event, Message):
                await event.answer(_(FLOOD_NOTICE))
            elif isinstance(event, CallbackQuery):
                await event.answer(_(FLOOD_NOTICE), show_alert=True)
        elif isinstance(event, CallbackQuery):
            await event.answer()  # stop the button's spinner, silently
        return None

    def _allow(self, user_id: int) -> bool:
        now = self.clock()
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
