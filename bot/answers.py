"""From a question to a reply: search a page of hits, remember the question for its buttons,
render the message and its keyboard. Handlers call ``first_page`` and ``next_page``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiogram import Bot
from aiogram.enums import ChatType
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.chat_action import ChatActionSender
from aiogram.utils.formatting import Text

from bot.i18n import N_
from bot.i18n import gettext as _
from bot.metrics import count_question
from bot.query_state import FullArticle, MoreResults, QueryState, QueryStore
from bot.rendering import answer_text, clip, html, not_found_text
from bot.settings import BotSettings
from index import ArticleIndex, Hit, model_reads, question_language

__all__ = [
    "ENGLISH_ONLY",
    "MORE_LABEL",
    "Reply",
    "answer_question",
    "first_page",
    "next_page",
    "send_reply",
    "typing",
    "without_more_button",
]

MORE_LABEL = N_("More results »")


@dataclass(frozen=True, slots=True)
class Reply:
    """A message to send: formatted text and an optional inline keyboard."""

    text: Text
    keyboard: InlineKeyboardMarkup | None = None


async def first_page(
    index: ArticleIndex, queries: QueryStore, question: str, page_size: int
) -> Reply:
    """The best hits for a new question, or a plain "nothing found"."""
    result = await index.search(question, k=page_size)
    if result.refused or not result.hits:
        return Reply(not_found_text(question))
    state = QueryState(question)
    _record(state, result.hits, 0)
    token = await queries.add(state)
    return _page(token, state, result.hits, 0, result.has_more)


async def next_page(
    index: ArticleIndex,
    queries: QueryStore,
    token: str,
    state: QueryState,
    offset: int,
    page_size: int,
) -> Reply:
    """The page of hits after ``offset`` for a stored question."""
    result = await index.search(state.question, k=page_size, offset=offset)
    if not result.hits:
        return Reply(Text(_("That was everything I found. Try asking in other words.")))
    _record(state, result.hits, offset)
    await queries.save(token, state)
    return _page(token, state, result.hits, offset, result.has_more)


def _record(state: QueryState, hits: list[Hit], offset: int) -> None:
    """The page's articles become hits ``offset + 1`` onwards (for "Full article")."""
    del state.article_ids[offset:]
    state.article_ids += [hit.article_id for hit in hits]


def _page(token: str, state: QueryState, hits: list[Hit], offset: int, more: bool) -> Reply:
    rows: list[list[InlineKeyboardButton]] = []
    shown: set[str] = set()
    for number, hit in enumerate(hits, start=offset + 1):
        if hit.article_id in shown:
            continue
        shown.add(hit.article_id)
        data = FullArticle(token=token, number=number).pack()
        label = f"📄 {number}. {clip(hit.title, 40)}"
        rows.append([InlineKeyboardButton(text=label, callback_data=data)])
    if more:
        data = MoreResults(token=token, offset=offset + len(hits)).pack()
        rows.append([InlineKeyboardButton(text=_(MORE_LABEL), callback_data=data)])
    text = answer_text(state.question, hits, first_number=offset + 1)
    return Reply(text, InlineKeyboardMarkup(inline_keyboard=rows))


def without_more_button(markup: InlineKeyboardMarkup | None) -> InlineKeyboardMarkup | None:
    """The keyboard minus its "More results" button (once pressed, the next page is below)."""
    if markup is None:
        return None
    rows = [
        [button for button in row if not (button.callback_data or "").startswith("more:")]
        for row in markup.inline_keyboard
    ]
    rows = [row for row in rows if row]
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


@contextlib.asynccontextmanager
async def typing(
    bot: Bot, message: Message, action: str = "typing", *, repeat: bool = True
) -> AsyncIterator[None]:
    """Show "typing" in the message's chat and topic at once and, with ``repeat``, every 5 s
    until done (Telegram shows it for 5 s or until the bot's message arrives)."""
    thread_id = message.message_thread_id if message.is_topic_message else None
    await bot.send_chat_action(message.chat.id, action, message_thread_id=thread_id)
    if not repeat:
        yield
        return
    async with ChatActionSender(
        bot=bot,
        chat_id=message.chat.id,
        message_thread_id=thread_id,
        action=action,
        initial_sleep=4.5,
    ):
        yield


async def send_reply(message: Message, reply: Reply) -> Message:
    """Answer ``message`` in its chat and topic; in groups as a reply to it."""
    text = html(reply.text)
    if message.chat.type == ChatType.PRIVATE:
        return await message.answer(text, reply_markup=reply.keyboard)
    return await message.reply(text, reply_markup=reply.keyboard)


async def answer_question(
    message: Message,
    question: str,
    bot: Bot,
    index: ArticleIndex,
    queries: QueryStore,
    settings: BotSettings,
) -> None:
    """Check the question, search while showing "typing", and reply with the first page."""
    question = " ".join(question.split())
    if not question:
        await send_reply(message, Reply(Text(_(ASK_HINT))))
        return
    if len(question) > settings.max_question_chars:
        await send_reply(message, Reply(Text(too_long_text(settings.max_question_chars))))
        count_question("refused")
        return
    if not model_reads(
        question_language(question), settings.embedding_model, settings.embedding_multilingual
    ):
        await send_reply(message, Reply(Text(_(ENGLISH_ONLY))))
        count_question("refused")
        return
    # One "typing" only: an answer normally comes within a second or two, and repeating it
    # every 5 s for each waiting question made an overloaded bot slower still (a quarter of
    # its event loop's CPU went to repeated chat actions in `python -m bot bench`).
    try:
        async with typing(bot, message, repeat=False):
            reply = await first_page(index, queries, question, settings.answer_hits)
        await send_reply(message, reply)
    except Exception:
        count_question("error")
        raise
    # A page of hits always has its buttons; "nothing relevant found" has none
    count_question("answered" if reply.keyboard else "refused")


ASK_HINT = N_(
    "Ask me a question about the news, for example: "
    "“What did the central bank decide?” (in groups: /ask followed by the question)."
)
ENGLISH_ONLY = N_(
    "I can only understand questions in English: the articles I search are in English, and "
    "so is the language model that matches questions to them. Please ask in English, for "
    "example: “How many people were hurt by mines?”"
)


def too_long_text(limit: int) -> str:
    """The explanation for an oversized message."""
    return _(
        "That message is too long for a question (the limit is {limit} characters). "
        "Please ask in a sentence or two."
    ).format(limit=limit)
