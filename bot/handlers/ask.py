"""Questions: any text in a private chat, ``/ask`` anywhere, and in groups only messages that
mention the bot or reply to it. Everything else in a group is left alone."""

from __future__ import annotations

import re
from typing import Any

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import Message

from bot.answers import answer_question
from bot.i18n import fill
from bot.i18n import gettext as _
from bot.query_state import QueryStore
from bot.rendering import clip
from bot.settings import BotSettings
from index import ArticleIndex

__all__ = ["MentionsBot", "RepliesToBot", "create_router"]

PRIVATE = F.chat.type == ChatType.PRIVATE
NOT_COMMAND = ~F.text.startswith("/")


class MentionsBot(Filter):
    """Passes messages that @mention this bot, with the rest of the text as ``question``."""

    async def __call__(self, message: Message, bot: Bot) -> bool | dict[str, Any]:
        me = await bot.me()
        text = message.text or ""
        mention = f"@{me.username}".lower()
        for entity in message.entities or []:
            if entity.type == "mention" and entity.extract_from(text).lower() == mention:
                pattern = re.compile(re.escape(mention), re.IGNORECASE)
                return {"question": pattern.sub(" ", text)}
        return False


class RepliesToBot(Filter):
    """Passes messages that reply to one of this bot's own messages."""

    async def __call__(self, message: Message, bot: Bot) -> bool:
        replied = message.reply_to_message
        return bool(replied and replied.from_user and replied.from_user.id == bot.id)


async def ask_command(
    message: Message,
    command: CommandObject,
    bot: Bot,
    index: ArticleIndex,
    queries: QueryStore,
    settings: BotSettings,
) -> None:
    """/ask QUESTION, in any chat."""
    await answer_question(message, command.args or "", bot, index, queries, settings)


async def text_question(
    message: Message, bot: Bot, index: ArticleIndex, queries: QueryStore, settings: BotSettings
) -> None:
    """A plain text question (private chat, or a reply to the bot in a group)."""
    await answer_question(message, message.text or "", bot, index, queries, settings)


async def mention_question(
    message: Message,
    question: str,
    bot: Bot,
    index: ArticleIndex,
    queries: QueryStore,
    settings: BotSettings,
) -> None:
    """A group message that mentions the bot: the rest of it is the question."""
    await answer_question(message, question, bot, index, queries, settings)


async def unknown_command(message: Message) -> None:
    """A command the bot does not have (private chats only: in groups it may be another bot's)."""
    command = clip((message.text or "").split()[0], 64)
    text = fill(
        _("I don't know the command {command}. See /help for what I can do."), command=command
    )
    await message.answer(**text.as_kwargs())


async def not_text(message: Message) -> None:
    """Stickers, photos, voice notes and the like in a private chat."""
    await message.answer(_("I can only read text. Send me your question as a message."))


def create_router() -> Router:
    """Questions, plus the private-chat fallbacks; include it last."""
    router = Router(name="ask")
    router.message.register(ask_command, Command("ask"))
    router.message.register(text_question, PRIVATE, F.text, NOT_COMMAND)
    router.message.register(mention_question, F.text, NOT_COMMAND, MentionsBot())
    router.message.register(text_question, F.text, NOT_COMMAND, RepliesToBot())
    router.message.register(unknown_command, PRIVATE, F.text.startswith("/"))
    router.message.register(not_text, PRIVATE)
    return router
