"""Every button press gets an answer, so no spinner keeps turning.

A press reaches a feature handler only when its data parses and is on a button of the
message it came from, a message the bot can see (`OnVisibleMessage`). Anything else ends at
`stale_button`, the last handler of all: forged or unknown data, a press on a message sent
through inline mode (which has no ``message``) or on one too old to be shown (``date`` 0). A press
Telegram has already timed out cannot be answered any more: `ExpiredQueryMiddleware` lets
the handler go on instead of turning that refusal into an error.
"""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot, Router
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Filter
from aiogram.methods import AnswerCallbackQuery, TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiogram.types import CallbackQuery, Message

from bot.i18n import N_
from bot.i18n import gettext as _

__all__ = ["STALE_BUTTON", "ExpiredQueryMiddleware", "OnVisibleMessage", "create_router"]

log = logging.getLogger(__name__)

STALE_BUTTON = N_("This button no longer works. Send your question or command again.")
_EXPIRED_QUERY = ("query is too old", "query id is invalid")  # Telegram's 400 descriptions


class OnVisibleMessage(Filter):
    """A press of one of the buttons of a message the bot can read and edit; gives the
    handler ``message``."""

    async def __call__(self, query: CallbackQuery) -> bool | dict[str, Any]:
        message = query.message
        if not isinstance(message, Message) or not _has_button(message, query.data):
            return False
        return {"message": message}


def _has_button(message: Message, data: str | None) -> bool:
    markup = message.reply_markup
    if data is None or markup is None:
        return False
    return any(button.callback_data == data for row in markup.inline_keyboard for button in row)


async def stale_button(query: CallbackQuery) -> None:
    """A press no feature handler took: say the button no longer works."""
    await query.answer(_(STALE_BUTTON))


class ExpiredQueryMiddleware(BaseRequestMiddleware):
    """answerCallbackQuery refused because the query timed out (the bot was busy or down):
    log it and return True, so the rest of the handler still runs."""

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        try:
            return await make_request(bot, method)
        except TelegramBadRequest as error:
            if not isinstance(method, AnswerCallbackQuery) or not any(
                reason in error.message.lower() for reason in _EXPIRED_QUERY
            ):
                raise
            log.info("Callback query %s expired before it was answered", method.callback_query_id)
            # the chain returns results, not `Response`s, whatever its annotation says
            return True  # type: ignore[return-value]


def create_router() -> Router:
    """The catch-all for presses; include it after every other router."""
    router = Router(name="buttons")
    router.callback_query.register(stale_button)
    return router
