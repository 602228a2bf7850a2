"""Inline mode: ``@bot question`` in any chat offers the top hits; choosing one posts the
quote with its source."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQuery,
    InlineQueryResultArticle,
    InlineQueryResultsButton,
    InputTextMessageContent,
)

from bot.deep_links import encode_question
from bot.i18n import gettext as _
from bot.rendering import clip, format_date, hit_text, html
from bot.settings import BotSettings
from index import ArticleIndex, Hit, model_reads, question_language

__all__ = ["create_router", "inline_result"]

PAGE = 5
MAX_OFFSET = 45  # Telegram shows at most 50 results per query
MIN_QUERY = 3


def inline_result(hit: Hit) -> InlineQueryResultArticle:
    """One hit as an inline result: headline, quote and source; posts the formatted quote."""
    source = " · ".join(filter(None, [hit.outlet, format_date(hit.published)]))
    keyboard = None
    if hit.url:
        button = InlineKeyboardButton(text=_("Read the article"), url=hit.url)
        keyboard = InlineKeyboardMarkup(inline_keyboard=[[button]])
    return InlineQueryResultArticle(
        id=f"p{hit.passage_id}",
        title=clip(hit.title, 100),
        description=clip(f"“{clip(hit.quote, 160)}” {source}", 250),
        input_message_content=InputTextMessageContent(
            message_text=html(hit_text(hit)), parse_mode="HTML"
        ),
        reply_markup=keyboard,
    )


async def inline_search(query: InlineQuery, index: ArticleIndex, settings: BotSettings) -> None:
    """Search as the user types; page further with the offset Telegram sends back."""
    question = " ".join(query.query.split())[: settings.max_question_chars]
    offset = int(query.offset) if query.offset.isdigit() else 0
    if len(question) < MIN_QUERY:
        hint = InlineQueryResultsButton(
            text=_("Type a question about the news"), start_parameter="inline"
        )
        await query.answer([], cache_time=300, button=hint)
        return
    if not model_reads(
        question_language(question), settings.embedding_model, settings.embedding_multilingual
    ):
        hint = InlineQueryResultsButton(
            text=_("I understand questions in English only"), start_parameter="inline"
        )
        await query.answer([], cache_time=300, button=hint)
        return
    result = await index.search(question, k=PAGE, offset=offset)
    more = result.has_more and offset + PAGE <= MAX_OFFSET
    button = None
    if not result.hits and offset == 0:
        payload = encode_question(question) or "inline"
        button = InlineQueryResultsButton(
            text=_("Nothing found: ask me in private"), start_parameter=payload
        )
    await query.answer(
        [inline_result(hit) for hit in result.hits],
        cache_time=60,
        next_offset=str(offset + PAGE) if more else "",
        button=button,
    )


def create_router() -> Router:
    """Inline queries."""
    router = Router(name="inline")
    router.inline_query.register(inline_search)
    return router
