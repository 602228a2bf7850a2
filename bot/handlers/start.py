"""Getting started: /start (a deep link may carry a question), /help, /sources, /latest."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import Message
from aiogram.utils.formatting import Bold, Text, as_list

from bot.answers import answer_question
from bot.deep_links import decode_question
from bot.i18n import fill
from bot.i18n import gettext as _
from bot.menus import ADMIN_COMMANDS, USER_COMMANDS
from bot.query_state import QueryStore
from bot.rendering import html, latest_text, sources_text
from bot.settings import BotSettings
from index import ArticleIndex

__all__ = ["create_router", "help_text"]

LATEST_COUNT = 8


def help_text(bot_username: str, is_admin: bool) -> Text:
    """What the bot does and how to talk to it."""
    menu = {**USER_COMMANDS, **(ADMIN_COMMANDS if is_admin else {})}
    commands = [Text(f"/{name} — ", _(about)) for name, about in menu.items()]
    return Text(
        _(
            "I answer questions about the news articles I have read, quoting the passages "
            "that answer them, with a link to each source."
        ),
        "\n\n",
        Bold(_("How to ask")),
        "\n",
        _(
            "• Here: just send your question.\n"
            "• In groups: /ask your question, mention me, or reply to one of my messages.\n"
            "• In any chat: type @{bot} and your question to share an answer."
        ).format(bot=bot_username),
        "\n\n",
        Bold(_("Commands")),
        "\n",
        as_list(*commands),
    )


async def start(
    message: Message,
    command: CommandObject,
    bot: Bot,
    index: ArticleIndex,
    queries: QueryStore,
    settings: BotSettings,
) -> None:
    """/start: a welcome, or the answer to the question a deep link carries."""
    question = decode_question(command.args)
    if question:
        await answer_question(message, question, bot, index, queries, settings)
        return
    if message.from_user is None:
        greeting = Text(
            _(
                "Hello! Ask me anything about the news, for example: "
                "“What did the central bank decide?”"
            )
        )
    else:
        greeting = fill(
            _(
                "Hello, {name}! Ask me anything about the news, for example: "
                "“What did the central bank decide?”"
            ),
            name=Bold(message.from_user.first_name),
        )
    more = _("See /help for everything I can do.")
    await message.answer(html(Text(greeting, "\n\n", more)))


async def help_command(message: Message, bot: Bot, settings: BotSettings) -> None:
    """/help: how to ask, and the commands (admin ones for admins)."""
    me = await bot.me()
    is_admin = bool(message.from_user and message.from_user.id in settings.admin_ids)
    await message.answer(html(help_text(me.username or "bot", is_admin)))


async def sources(message: Message, index: ArticleIndex) -> None:
    """/sources: outlets and their article counts."""
    await message.answer(html(sources_text(await index.sources())))


async def latest(message: Message, index: ArticleIndex) -> None:
    """/latest: the newest articles with links."""
    await message.answer(html(latest_text(await index.latest(LATEST_COUNT))))


def create_router() -> Router:
    """/start, /help, /sources, /latest."""
    router = Router(name="start")
    router.message.register(start, CommandStart())
    router.message.register(help_command, Command("help"))
    router.message.register(sources, Command("sources"))
    router.message.register(latest, Command("latest"))
    return router
