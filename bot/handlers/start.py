"""Getting started: /start (a deep link may carry a question), /help, /sources, /latest."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import Message
from aiogram.utils.formatting import Bold, Text, as_list

from bot.answers import answer_question
from bot.deep_links import decode_question
from bot.query_state import QueryStore
from bot.rendering import html, latest_text, sources_text
from bot.settings import BotSettings
from index import ArticleIndex

__all__ = ["ADMIN_COMMANDS", "USER_COMMANDS", "create_router", "help_text"]

USER_COMMANDS = {
    "ask": "Ask a question about the news",
    "latest": "The newest articles",
    "sources": "The outlets I have read",
    "subscribe": "Alerts for new articles: /subscribe [topic] [source:outlet]",
    "subscriptions": "Your alerts, with buttons to remove them",
    "unsubscribe": "Stop all alerts in this chat",
    "alerts": "Instant alerts or a daily digest: /alerts digest 8",
    "quiet": "Quiet hours: /quiet 22-7 or /quiet off",
    "timezone": "Your time zone for digests and quiet hours: /timezone +2",
    "help": "How to use this bot",
}
ADMIN_COMMANDS = {
    "stats": "Index and bot statistics",
    "add": "Add an article: /add URL (or send a file)",
    "remove": "Remove an article: /remove ID or URL",
    "reindex": "Rebuild the search index",
    "feeds": "News feeds: /feeds, /feeds add URL, /feeds remove URL",
}
LATEST_COUNT = 8


def help_text(bot_username: str, is_admin: bool) -> Text:
    """What the bot does and how to talk to it."""
    commands = [Text(f"/{name} — {about}") for name, about in USER_COMMANDS.items()]
    if is_admin:
        commands += [Text(f"/{name} — {about}") for name, about in ADMIN_COMMANDS.items()]
    return Text(
        "I answer questions about the news articles I have read, quoting the passages "
        "that answer them, with a link to each source.\n\n",
        Bold("How to ask"),
        "\n• Here: just send your question.\n"
        "• In groups: /ask your question, mention me, or reply to one of my messages.\n"
        f"• In any chat: type @{bot_username} and your question to share an answer.\n\n",
        Bold("Commands"),
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
    name = message.from_user.first_name if message.from_user else "there"
    greeting = Text(
        "Hello, ",
        Bold(name),
        "! Ask me anything about the news, for example: "
        "“What did the central bank decide?”\n\nSee /help for everything I can do.",
    )
    await message.answer(html(greeting))


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
