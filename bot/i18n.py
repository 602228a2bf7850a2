"""The bot's languages: English, Russian and Azerbaijani, through aiogram's i18n (gettext
catalogues in ``bot/locales/<lang>/LC_MESSAGES/newsbot.po``, compiled to ``.mo``).

A chat's language is the one chosen with /language, else the Telegram user's
``language_code`` when the bot speaks it, else English. `LanguageMiddleware` sets it for
each update; `gettext` and `ngettext` translate into it (and return the English text when
no language is set, e.g. in a unit test or a script).

Texts are English msgids with named placeholders, filled after translation:
``_("Removed {title}.").format(title=...)``; never glued from translated fragments.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from aiogram.types import TelegramObject
from aiogram.utils.formatting import Text
from aiogram.utils.i18n import I18n, I18nMiddleware

__all__ = [
    "DEFAULT_LANGUAGE",
    "DOMAIN",
    "LANGUAGES",
    "LOCALES_DIR",
    "N_",
    "CachedLanguages",
    "ChatLanguages",
    "LanguageMiddleware",
    "MemoryLanguages",
    "create_i18n",
    "current_language",
    "fill",
    "gettext",
    "language_of",
    "ngettext",
    "speaking",
]

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
DOMAIN = "newsbot"
DEFAULT_LANGUAGE = "en"
# Each language under its own name, as the /language buttons show it
LANGUAGES = {"en": "English", "ru": "Русский", "az": "Azərbaycanca"}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
CACHE_SECONDS = 60.0  # how long a chat's stored language is reused without asking the store


def create_i18n() -> I18n:
    """The catalogues of every language in ``bot/locales``."""
    return I18n(path=LOCALES_DIR, default_locale=DEFAULT_LANGUAGE, domain=DOMAIN)


def current_language() -> str:
    """The current update's language (English outside an update)."""
    i18n = I18n.get_current(no_error=True)
    return i18n.current_locale if i18n else DEFAULT_LANGUAGE


def gettext(message: str) -> str:
    """``message`` in the current update's language (English outside an update)."""
    i18n = I18n.get_current(no_error=True)
    return i18n.gettext(message) if i18n else message


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of ``singular``/``plural`` for ``n`` in the current language's plural rules."""
    i18n = I18n.get_current(no_error=True)
    if i18n is None:
        return singular if n == 1 else plural
    return i18n.gettext(singular, plural, n)


def fill(template: str, **values: Text | str | int) -> Text:
    """A translated ``template`` with each ``{name}`` replaced by its value, which may be a
    formatting node (``Bold(title)``): the translation decides where it goes, the node keeps
    its formatting, and plain strings are escaped like any other text."""
    parts: list[Text | str] = []
    position = 0
    for found in _PLACEHOLDER.finditer(template):
        value = values[found.group(1)]
        parts += [
            template[position : found.start()],
            value if isinstance(value, Text) else str(value),
        ]
        position = found.end()
    parts.append(template[position:])
    return Text(*(part for part in parts if part != ""))


def N_(message: str) -> str:  # gettext's name for "mark for extraction only"
    """Mark a module-level text for the catalogues; translate it with `gettext` where used."""
    return message


@contextmanager
def speaking(i18n: I18n, language: str | None) -> Iterator[None]:
    """Translate into ``language`` (English when unknown) inside the block, outside any
    update: alerts and digests rendered by the sender."""
    with i18n.context(), i18n.use_locale(language_of(language, i18n.available_locales)):
        yield


def language_of(code: str | None, available: tuple[str, ...] | list[str]) -> str:
    """The bot's language for a Telegram ``language_code`` (``ru``, ``az``, ``pt-br``...):
    its base language when the bot speaks it, else English."""
    base = (code or "").replace("_", "-").split("-")[0].lower()
    speaks = base in LANGUAGES and (base in available or base == DEFAULT_LANGUAGE)
    return base if speaks else DEFAULT_LANGUAGE


class ChatLanguages(Protocol):
    """Where each chat's chosen language is kept."""

    async def get(self, chat_id: int) -> str | None:
        """The language chosen in the chat, or None when none was chosen."""

    async def set(self, chat_id: int, language: str) -> None:
        """Remember the chat's choice."""


class MemoryLanguages:
    """Languages kept for the life of the process: a bot without its database (tests)."""

    def __init__(self) -> None:
        self.chosen: dict[int, str] = {}

    async def get(self, chat_id: int) -> str | None:
        return self.chosen.get(chat_id)

    async def set(self, chat_id: int, language: str) -> None:
        self.chosen[chat_id] = language


class CachedLanguages:
    """A store's languages, each reused for `CACHE_SECONDS` so an update costs no query."""

    def __init__(
        self,
        load: Callable[[int], Awaitable[str | None]],
        save: Callable[[int, str], Awaitable[None]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load, self._save, self._clock = load, save, clock
        self._cache: dict[int, tuple[float, str | None]] = {}

    async def get(self, chat_id: int) -> str | None:
        now = self._clock()
        cached = self._cache.get(chat_id)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        if len(self._cache) > 10_000:  # forget every chat rather than grow without bound
            self._cache.clear()
        language = await self._load(chat_id)
        self._cache[chat_id] = (now, language)
        return language

    async def set(self, chat_id: int, language: str) -> None:
        await self._save(chat_id, language)
        self._cache[chat_id] = (self._clock(), language)


class LanguageMiddleware(I18nMiddleware):
    """Sets each update's language: the chat's choice, else the user's ``language_code``
    (when the bot speaks it), else English. Inline queries use the user's private chat."""

    def __init__(self, i18n: I18n, languages: ChatLanguages) -> None:
        super().__init__(i18n)
        self.languages = languages

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        chat = data.get("event_chat")
        user = data.get("event_from_user")
        chat_id = chat.id if chat is not None else user.id if user is not None else None
        chosen = await self.languages.get(chat_id) if chat_id is not None else None
        if chosen is not None and chosen == language_of(chosen, self.i18n.available_locales):
            return chosen
        return language_of(user.language_code if user else None, self.i18n.available_locales)
