"""/language: show the chat's language with a button per language, or switch with
``/language ru``. In groups only the group's administrators may change it."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command, CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    User,
)
from aiogram.utils.i18n import I18n

from bot.handlers.buttons import OnVisibleMessage
from bot.handlers.subscriptions import ManagesChat
from bot.i18n import LANGUAGES, ChatLanguages
from bot.i18n import gettext as _
from bot.menus import set_chat_menu
from bot.settings import BotSettings

__all__ = ["LanguageChoice", "create_router"]


class LanguageChoice(CallbackData, prefix="lang"):
    """A language button of /language."""

    code: str


def _keyboard(current: str) -> InlineKeyboardMarkup:
    buttons = [
        InlineKeyboardButton(
            text=("✅ " if code == current else "") + name,
            callback_data=LanguageChoice(code=code).pack(),
        )
        for code, name in LANGUAGES.items()
    ]
    return InlineKeyboardMarkup(inline_keyboard=[buttons])


def _current_text() -> str:
    return _("I speak English here. Choose a language, or send /language ru (en, ru, az).")


async def refuse(event: Message | CallbackQuery) -> None:
    """A group member who is not an admin tried to change the group's language."""
    text = _("Only this group's admins can change its language.")
    if isinstance(event, CallbackQuery):
        await event.answer(text, show_alert=True)
    else:
        await event.answer(text)


async def show_or_set(
    message: Message,
    command: CommandObject,
    bot: Bot,
    i18n: I18n,
    languages: ChatLanguages,
    settings: BotSettings,
) -> None:
    """/language: the buttons; ``/language CODE`` switches at once."""
    code = (command.args or "").strip().lower()
    if not code:
        await message.answer(_current_text(), reply_markup=_keyboard(i18n.current_locale))
    elif code in LANGUAGES:
        await _switch(bot, message, code, i18n, languages, settings, message.from_user)
        await message.answer(_current_text(), reply_markup=_keyboard(code))
    else:
        await message.answer(
            _("I don't speak “{code}”. Choose one of: en, ru, az.").format(code=code[:20])
        )


async def choose(
    query: CallbackQuery,
    message: Message,
    callback_data: LanguageChoice,
    bot: Bot,
    i18n: I18n,
    languages: ChatLanguages,
    settings: BotSettings,
) -> None:
    """A language button: switch, and redraw the message in the new language."""
    code, before = callback_data.code, i18n.current_locale
    await _switch(bot, message, code, i18n, languages, settings, query.from_user)
    if code != before:  # the same text and keyboard again: Telegram would refuse the edit
        await message.edit_text(_current_text(), reply_markup=_keyboard(code))
    await query.answer()


async def _switch(
    bot: Bot,
    message: Message,
    code: str,
    i18n: I18n,
    languages: ChatLanguages,
    settings: BotSettings,
    user: User | None,
) -> None:
    """Store the chat's choice and use it from now on (this update included)."""
    await languages.set(message.chat.id, code)
    i18n.current_locale = code
    if message.chat.type == ChatType.PRIVATE:
        admin = user is not None and user.id in settings.admin_ids
        await set_chat_menu(bot, message.chat.id, admin, i18n)


def create_router() -> Router:
    """/language and its buttons; changing a group's language needs a group admin."""
    router = Router(name="language")
    manage = ManagesChat()
    router.message.register(show_or_set, Command("language"), manage)
    router.callback_query.filter(OnVisibleMessage())
    router.message.register(refuse, Command("language"))
    choice = LanguageChoice.filter(F.code.in_(LANGUAGES))
    router.callback_query.register(choose, choice, manage)
    router.callback_query.register(refuse, choice)
    return router
