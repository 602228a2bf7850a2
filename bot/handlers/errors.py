"""Errors, by type: a chat that blocked the bot is recorded; any other failure is logged with
its update id and traceback, and the user gets a short apology. Polling goes on either way."""

from __future__ import annotations

import logging

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import ErrorEvent, Update

from bot.i18n import N_
from bot.i18n import gettext as _
from bot.services import BlockedHook

__all__ = ["APOLOGY", "create_router"]

log = logging.getLogger(__name__)

APOLOGY = N_("Sorry, something went wrong on my side. Please try again in a moment.")


def _chat_of(update: Update) -> tuple[int | None, int | None]:
    """The chat (and forum topic) an update came from, if any."""
    message = update.message or update.edited_message
    if message is None and update.callback_query is not None:
        message = update.callback_query.message  # type: ignore[assignment]
    if message is None:
        return None, None
    thread = getattr(message, "message_thread_id", None)
    return message.chat.id, thread if getattr(message, "is_topic_message", False) else None


async def blocked(event: ErrorEvent, on_blocked: BlockedHook) -> None:
    """Telegram refused to deliver (blocked by the user, removed from the group): record it."""
    assert isinstance(event.exception, TelegramForbiddenError)
    chat_id = getattr(event.exception.method, "chat_id", None) or _chat_of(event.update)[0]
    if isinstance(chat_id, int):
        await on_blocked(chat_id)


async def apologise(event: ErrorEvent, bot: Bot) -> None:
    """Any other exception: log it with the update id, apologise to the user."""
    log.error(
        "Update %s failed: %s", event.update.update_id, event.exception, exc_info=event.exception
    )
    query = event.update.callback_query
    if query is not None:
        try:
            await query.answer(_(APOLOGY), show_alert=True)
            return
        except TelegramAPIError:  # already answered: say it in the chat instead
            pass
    chat_id, thread_id = _chat_of(event.update)
    if chat_id is None:
        return
    try:
        await bot.send_message(chat_id, _(APOLOGY), message_thread_id=thread_id)
    except TelegramAPIError as error:
        log.warning("Could not apologise for update %s: %s", event.update.update_id, error)


def create_router() -> Router:
    """Error handlers; errors propagate from every router to this one."""
    router = Router(name="errors")
    router.errors.register(blocked, ExceptionTypeFilter(TelegramForbiddenError))
    router.errors.register(apologise)
    return router
