"""The command menus (``set_my_commands``), in every language the bot speaks: user commands
everywhere, admin ones in admins' private chats. Telegram picks the menu by the user's
``language_code``; a chat that chose a language with /language gets its own menu."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    BotCommandScopeDefault,
)
from aiogram.utils.i18n import I18n

from bot.i18n import DEFAULT_LANGUAGE, N_, gettext

__all__ = ["ADMIN_COMMANDS", "USER_COMMANDS", "commands", "set_chat_menu", "set_commands"]

log = logging.getLogger(__name__)

# Descriptions are translated when a menu or /help is built (`gettext`)
USER_COMMANDS = {
    "ask": N_("Ask a question about the news"),
    "latest": N_("The newest articles"),
    "sources": N_("The outlets I have read"),
    "subscribe": N_("Alerts for new articles: /subscribe [topic] [source:outlet]"),
    "subscriptions": N_("Your alerts, with buttons to remove them"),
    "unsubscribe": N_("Stop all alerts in this chat"),
    "alerts": N_("Instant alerts or a daily digest: /alerts digest 8"),
    "quiet": N_("Quiet hours: /quiet 22-7 or /quiet off"),
    "timezone": N_("Your time zone for digests and quiet hours: /timezone +2"),
    "language": N_("The bot's language: English, Русский, Azərbaycanca"),
    "help": N_("How to use this bot"),
}
ADMIN_COMMANDS = {
    "stats": N_("Index and bot statistics"),
    "add": N_("Add an article: /add URL (or send a file)"),
    "remove": N_("Remove an article: /remove ID or URL"),
    "reindex": N_("Rebuild the search index"),
    "feeds": N_("News feeds: /feeds, /feeds add URL, /feeds remove URL"),
}

MenuScope = (
    BotCommandScopeDefault
    | BotCommandScopeAllPrivateChats
    | BotCommandScopeAllGroupChats
    | BotCommandScopeChat
)


def commands(admin: bool = False) -> list[BotCommand]:
    """The menu in the current language; admins' with their own commands after the rest."""
    menu = {**USER_COMMANDS, **(ADMIN_COMMANDS if admin else {})}
    return [BotCommand(command=name, description=gettext(about)) for name, about in menu.items()]


async def set_commands(bot: Bot, admin_ids: frozenset[int], i18n: I18n) -> None:
    """Every menu in every language: English without a ``language_code`` (the default),
    each other language under its code."""
    for language in (DEFAULT_LANGUAGE, *sorted(set(i18n.available_locales) - {DEFAULT_LANGUAGE})):
        code = None if language == DEFAULT_LANGUAGE else language
        with i18n.context(), i18n.use_locale(language):
            users, admins = commands(), commands(admin=True)
        for scope in (
            BotCommandScopeDefault(),
            BotCommandScopeAllPrivateChats(),
            BotCommandScopeAllGroupChats(),
        ):
            await _set_menu(bot, users, scope, code)
        for admin_id in sorted(admin_ids):
            await _set_menu(bot, admins, BotCommandScopeChat(chat_id=admin_id), code)


async def set_chat_menu(bot: Bot, chat_id: int, admin: bool, i18n: I18n) -> None:
    """The menu of one chat in the current language (after /language), whatever the
    user's ``language_code`` (a chat's menu for a language comes before its plain one)."""
    menu, scope = commands(admin), BotCommandScopeChat(chat_id=chat_id)
    for code in (None, *sorted(set(i18n.available_locales) - {DEFAULT_LANGUAGE})):
        await _set_menu(bot, menu, scope, code)


async def _set_menu(
    bot: Bot, menu: list[BotCommand], scope: MenuScope, language_code: str | None
) -> None:
    """Set one menu; a refusal (e.g. an admin who never opened the bot) is only logged."""
    try:
        await bot.set_my_commands(menu, scope=scope, language_code=language_code)
    except TelegramBadRequest as error:
        log.warning("Command menu for %s not set: %s", scope.model_dump(exclude_none=True), error)
