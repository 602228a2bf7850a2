"""Sending that survives Telegram's refusals.

- ``RetryAfterMiddleware`` (installed on the bot's session) waits the ``retry_after`` that a
  429 answer asks for and repeats the call, for every method the bot calls.
- ``KeepResponseTypes`` (installed beside it) holds the pydantic classes aiogram parses answers
  with, so they are built once instead of again after every garbage collection.
- ``send_text`` is for messages nobody asked for (alerts, feeds, broadcasts): a chat that
  blocked the bot (403) is reported to the ``on_blocked`` hook instead of raising.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramForbiddenError, TelegramRetryAfter
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import Message
from aiogram.utils.formatting import Text

from bot.services import BlockedHook

__all__ = ["KeepResponseTypes", "RetryAfterMiddleware", "send_text"]

log = logging.getLogger(__name__)


class RetryAfterMiddleware(BaseRequestMiddleware):
    """Honour ``retry_after``: wait as Telegram asks, then repeat the call (a few times)."""

    def __init__(self, attempts: int = 3, longest_wait: float = 120.0) -> None:
        self.attempts = attempts
        self.longest_wait = longest_wait

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        for attempt in range(1, self.attempts + 1):
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as error:
                if attempt == self.attempts or error.retry_after > self.longest_wait:
                    raise
                log.warning(
                    "Telegram asked to wait %s s before %s; waiting",
                    error.retry_after,
                    type(method).__name__,
                )
                await asyncio.sleep(error.retry_after)
        raise AssertionError("unreachable")  # pragma: no cover


class KeepResponseTypes(BaseRequestMiddleware):
    """Hold a reference to ``Response[T]`` for each answer type ``T`` the bot has met.

    aiogram parses every answer as ``Response[method.__returning__]``, a generic pydantic
    class that pydantic caches only weakly. The garbage collector drops it between calls, so
    it was built again (10-30 ms of event-loop CPU each time) dozens of times per hundred
    questions under load."""

    def __init__(self) -> None:
        self._types: dict[Any, type[Response[Any]]] = {}

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        returning = method.__returning__
        if returning not in self._types:
            self._types[returning] = Response[returning]  # type: ignore[valid-type]
        return await make_request(bot, method)


async def send_text(
    bot: Bot, chat_id: int, text: Text, on_blocked: BlockedHook, **kwargs: Any
) -> Message | None:
    """Send ``text`` to a chat; None (and ``on_blocked(chat_id)``) if the bot is blocked there."""
    try:
        return await bot.send_message(chat_id, **text.as_kwargs(), **kwargs)
    except TelegramForbiddenError:
        await on_blocked(chat_id)
        return None
