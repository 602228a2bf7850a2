"""The buttons under an answer: "More results" and each hit's "Full article"."""

from __future__ import annotations

import contextlib

from aiogram import Bot, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, Message

from bot.answers import next_page, typing, without_more_button
from bot.handlers.buttons import OnVisibleMessage
from bot.i18n import N_
from bot.i18n import gettext as _
from bot.query_state import FullArticle, MoreResults, QueryStore
from bot.rendering import article_parts, html
from bot.settings import BotSettings
from index import ArticleIndex

__all__ = ["EXPIRED", "create_router"]

EXPIRED = N_("This answer has expired. Please ask your question again.")
GONE = N_("That article is no longer in the index.")


async def more_results(
    query: CallbackQuery,
    message: Message,
    callback_data: MoreResults,
    bot: Bot,
    index: ArticleIndex,
    queries: QueryStore,
    settings: BotSettings,
) -> None:
    """Send the next page of hits and drop the button from the page above."""
    state = await queries.get(callback_data.token)
    # a page starts after hits already shown: any other offset was not made by this bot
    if state is None or not 0 < callback_data.offset <= len(state.article_ids):
        await query.answer(_(EXPIRED), show_alert=True)
        return
    await query.answer()
    async with typing(bot, message):
        reply = await next_page(
            index, queries, callback_data.token, state, callback_data.offset, settings.answer_hits
        )
    await message.answer(html(reply.text), reply_markup=reply.keyboard)
    with contextlib.suppress(TelegramBadRequest):  # already edited by a double press
        await message.edit_reply_markup(reply_markup=without_more_button(message.reply_markup))


async def full_article(
    query: CallbackQuery,
    message: Message,
    callback_data: FullArticle,
    index: ArticleIndex,
    queries: QueryStore,
) -> None:
    """Send the whole article of one hit, in parts when it is long."""
    state = await queries.get(callback_data.token)
    article_id = state.article_id(callback_data.number) if state else None
    if article_id is None:
        await query.answer(_(EXPIRED), show_alert=True)
        return
    article = await index.article(article_id)
    if article is None:
        await query.answer(_(GONE), show_alert=True)
        return
    await query.answer()
    for part in article_parts(article):
        await message.answer(html(part))


def create_router() -> Router:
    """Callback queries of answer buttons, on messages the bot can see."""
    router = Router(name="results")
    router.callback_query.filter(OnVisibleMessage())
    router.callback_query.register(more_results, MoreResults.filter())
    router.callback_query.register(full_article, FullArticle.filter())
    return router
