"""``python -m bot chat``: the bot in a terminal, with no token and no network.

The same services, dispatcher and handlers run as in production; updates built from what
the user types are fed to ``Dispatcher.feed_update``, and the Bot's session is
`TerminalSession`, an in-process Bot API that prints what the bot sends the way a person
reads it: bold shown, links as "text (url)", quotes indented, buttons numbered. Typing
``:2`` presses button 2; ``/quit`` (or end of input) leaves.

It speaks the language of ``--language`` (which is /language typed first: the choice is kept),
else of the locale (LC_ALL, LC_MESSAGES, LANG) when the bot speaks it, else English; the
person at the terminal is a Telegram user with that ``language_code``, so /language in the
chat works as on Telegram. The chat's own lines come from the same catalogues.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import shutil
import sys
import textwrap
import time
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Mapping
from html.parser import HTMLParser
from http import HTTPStatus
from typing import Any, ClassVar, TextIO

from aiogram import Bot
from aiogram.client.default import Default
from aiogram.client.session.base import BaseSession
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageReplyMarkup,
    EditMessageText,
    GetMe,
    SendMessage,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import InlineKeyboardMarkup, Update
from aiogram.utils.i18n import I18n

from bot.app import (
    StartupError,
    build_services,
    create_bot,
    create_dispatcher,
    open_index,
    seed_if_empty,
    start_background,
)
from bot.i18n import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    N_,
    ChatLanguages,
    create_i18n,
    language_of,
    speaking,
)
from bot.i18n import gettext as _
from bot.settings import BotSettings
from index import Embedder

__all__ = ["LOCAL_USER_ID", "TerminalSession", "chat_language", "render_html", "run_chat"]

LOCAL_USER_ID = 1  # the person at the terminal; an admin of the local bot
LOCAL_TOKEN = "1000:local-chat"  # never sent anywhere
BOT_USER = {"id": 1000, "is_bot": True, "first_name": "News Bot", "username": "newsbot"}
LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")  # the first one set names the locale
BANNER = N_(
    "News bot, local chat. Type a question, /help for the commands, /language to change the "
    "language, :N to press button N, /quit to leave."
)


class _TerminalHTML(HTMLParser):
    """Telegram HTML to terminal text: bold/italic as ANSI (or *...* / _..._ without colour),
    links as "text (url)", block quotes indented with a bar, wrapped to ``width``."""

    STYLES: ClassVar[dict[str, tuple[str, str, str]]] = {
        "b": ("\x1b[1m", "\x1b[22m", "*"),
        "strong": ("\x1b[1m", "\x1b[22m", "*"),
        "i": ("\x1b[3m", "\x1b[23m", "_"),
        "em": ("\x1b[3m", "\x1b[23m", "_"),
        "code": ("\x1b[2m", "\x1b[22m", "`"),
    }

    def __init__(self, color: bool, width: int) -> None:
        super().__init__(convert_charrefs=True)
        self.color = color
        self.width = width
        self.buffers = [""]
        self.links: list[str | None] = []
        self.plain = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.STYLES:
            start, _, mark = self.STYLES[tag]
            self.buffers[-1] += start if self.color else mark
        elif tag == "a":
            self.links.append(dict(attrs).get("href"))
        elif tag == "blockquote":
            self.buffers.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.STYLES:
            _, end, mark = self.STYLES[tag]
            self.buffers[-1] += end if self.color else mark
        elif tag == "a" and self.links:
            url = self.links.pop()
            if url:
                self.buffers[-1] += f" ({url})"
        elif tag == "blockquote" and len(self.buffers) > 1:
            quoted = self.buffers.pop().strip()
            lines = textwrap.wrap(quoted, self.width - 4) or [""]
            self.buffers[-1] += "\n".join(f"  │ {line}" for line in lines)

    def handle_data(self, data: str) -> None:
        self.buffers[-1] += data
        self.plain += data


def render_html(text: str, *, color: bool = False, width: int = 100) -> tuple[str, str]:
    """(terminal rendering, plain text) of a Telegram HTML message."""
    parser = _TerminalHTML(color, width)
    parser.feed(text)
    parser.close()
    return "".join(parser.buffers), parser.plain


class TerminalSession(BaseSession):
    """An in-process Bot API for one private chat that prints what the bot sends."""

    def __init__(
        self,
        out: TextIO,
        *,
        color: bool = False,
        width: int = 100,
        language_code: str = DEFAULT_LANGUAGE,
    ) -> None:
        super().__init__()
        self.out = out
        self.color = color
        self.width = width
        self.language_code = language_code  # the person's, as Telegram would send it
        self.chat = {"id": LOCAL_USER_ID, "type": "private"}
        self.messages: dict[int, dict[str, Any]] = {}
        self.buttons: list[tuple[int, dict[str, Any]]] = []  # (message id, button) by number
        self._ids = itertools.count(1)
        self._fresh_turn = True

    def next_message_id(self) -> int:
        return next(self._ids)

    def new_turn(self) -> None:
        """The user acted: the next keyboard shown replaces the numbered buttons."""
        self._fresh_turn = True

    async def close(self) -> None:
        return None

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,  # noqa: ASYNC109 - BaseSession's signature
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        raise NotImplementedError("the local chat has no files to download")
        yield b""  # pragma: no cover - makes this an async generator

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 - BaseSession's signature
    ) -> TelegramType:
        result = self._handle(bot, method)
        body = json.dumps({"ok": True, "result": result}, default=str)
        return self.check_response(bot, method, HTTPStatus.OK, body).result  # type: ignore[return-value]

    def _handle(self, bot: Bot, method: TelegramMethod[Any]) -> Any:
        if isinstance(method, GetMe):
            return BOT_USER
        if isinstance(method, SendMessage | EditMessageText):
            return self._show(bot, method)
        if isinstance(method, EditMessageReplyMarkup):
            message = self.messages[int(method.message_id or 0)]
            message["reply_markup"] = _dump(method.reply_markup)
            return message
        if isinstance(method, AnswerCallbackQuery) and method.text:
            self._print(f"  ⓘ {method.text}")
        return True  # chat actions, menus and the like: nothing to show

    def _show(self, bot: Bot, method: SendMessage | EditMessageText) -> dict[str, Any]:
        mode = method.parse_mode
        if isinstance(mode, Default):
            mode = bot.default[mode.name]
        text = method.text if mode else _escape(method.text or "")
        shown, plain = render_html(text or "", color=self.color, width=self.width)
        edited = isinstance(method, EditMessageText)
        if isinstance(method, EditMessageText):
            message_id = int(method.message_id or 0)
        else:
            message_id = self.next_message_id()
        message = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": self.chat,
            "from": BOT_USER,
            "text": plain,
        }
        if method.reply_markup is not None:
            message["reply_markup"] = _dump(method.reply_markup)
        self.messages[message_id] = message
        self._print(("✎ " if edited else "") + shown)
        if isinstance(method.reply_markup, InlineKeyboardMarkup):
            self._list_buttons(message_id, method.reply_markup.model_dump(exclude_none=True))
        return message

    def _list_buttons(self, message_id: int, markup: dict[str, Any]) -> None:
        if self._fresh_turn:
            self.buttons.clear()
            self._fresh_turn = False
        lines = []
        for row in markup["inline_keyboard"]:
            for button in row:
                self.buttons.append((message_id, button))
                lines.append(f"  [{len(self.buttons)}] {button['text']}")
        if lines:
            self._print("\n".join(lines))

    def press(self, number: int, update_id: int) -> Update | None:
        """The update of pressing button ``number``; None (after saying why) if there is none."""
        if not 1 <= number <= len(self.buttons):
            self._print("  ⓘ " + _("There is no button {number}.").format(number=number))
            return None
        message_id, button = self.buttons[number - 1]
        if "url" in button:
            self._print("  ⓘ " + _("Open {url} in a browser.").format(url=button["url"]))
            return None
        query = {
            "id": str(update_id),
            "from": local_user(self.language_code),
            "chat_instance": "local",
            "message": self.messages[message_id],
            "data": button["callback_data"],
        }
        return Update.model_validate({"update_id": update_id, "callback_query": query})

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)
        print(file=self.out, flush=True)


def _dump(markup: Any) -> Any:
    return markup.model_dump(exclude_none=True) if markup is not None else None


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def local_user(language_code: str) -> dict[str, Any]:
    """The person at the terminal as a Telegram user (named in the chat's language: /start
    greets them by name)."""
    return {
        "id": LOCAL_USER_ID,
        "is_bot": False,
        "first_name": _("reader"),
        "language_code": language_code,
    }


def message_update(update_id: int, message_id: int, text: str, language_code: str) -> Update:
    """The update of the local user typing ``text``."""
    message = {
        "message_id": message_id,
        "date": int(time.time()),
        "chat": {"id": LOCAL_USER_ID, "type": "private"},
        "from": local_user(language_code),
        "text": text,
    }
    return Update.model_validate({"update_id": update_id, "message": message})


def chat_language(requested: str | None = None, environ: Mapping[str, str] = os.environ) -> str:
    """The chat's language: ``requested`` (--language), else the locale's (the first of
    LC_ALL, LC_MESSAGES, LANG that is set, as POSIX reads them; ``ru_RU.UTF-8`` is Russian)
    when the bot speaks it, else English. An unknown ``requested`` is a StartupError."""
    if requested is not None:
        if requested not in LANGUAGES:
            raise StartupError(f"--language takes one of {', '.join(LANGUAGES)}, not {requested!r}")
        return requested
    locale = next((environ[name] for name in LOCALE_VARIABLES if environ.get(name)), None)
    return language_of(locale, tuple(LANGUAGES))


async def spoken_now(languages: ChatLanguages, language_code: str) -> str:
    """The local chat's language at this moment, chosen as `LanguageMiddleware` chooses it:
    the /language choice, else the person's ``language_code``."""
    chosen = await languages.get(LOCAL_USER_ID)
    return chosen if chosen is not None and chosen in LANGUAGES else language_code


async def stdin_lines(prompt: str = N_("you> ")) -> AsyncGenerator[str, None]:
    """Lines typed at the terminal, read in a thread so the bot keeps working meanwhile.
    Piped input is echoed after the prompt, so a transcript reads like a conversation.
    The prompt is translated into the chat's language of the moment."""
    interactive = sys.stdin.isatty()
    while True:
        print(_(prompt), end="", flush=True)
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            print()
            return
        if not interactive:
            print(line.rstrip("\n"), flush=True)
            print()
        yield line


async def _lines(source: AsyncIterable[str] | Iterable[str]) -> AsyncGenerator[str, None]:
    if isinstance(source, AsyncIterable):
        async for line in source:
            yield line
    else:
        for line in source:
            yield line


async def run_chat(
    settings: BotSettings,
    *,
    lines: AsyncIterable[str] | Iterable[str] | None = None,
    out: TextIO = sys.stdout,
    embedder: Embedder | None = None,
    color: bool | None = None,
    language: str | None = None,
) -> None:
    """Chat with the bot in the terminal until /quit or the end of input, in ``language``
    (kept as the chat's /language choice) or else the locale's (see `chat_language`)."""
    if color is None:
        color = out.isatty() and "NO_COLOR" not in os.environ
    language_code = chat_language(language)
    i18n = create_i18n()  # the chat's own lines; the dispatcher translates each update
    with speaking(i18n, language_code):
        print(_("Opening the index (loading the model the first time takes a moment)…"), file=out)
        index = await open_index(settings, embedder)
        try:
            await seed_if_empty(index, settings.samples_dir, lambda line: print(line, file=out))
            local = settings.model_copy(  # one process, talking to no one: state in memory
                update={"admin_ids": settings.admin_ids | {LOCAL_USER_ID}, "redis_url": None}
            )
            services = build_services(local, index)
            width = min(shutil.get_terminal_size((100, 24)).columns, 100)
            session = TerminalSession(out, color=color, width=width, language_code=language_code)
            bot = create_bot(local, session=session, token=LOCAL_TOKEN)
            dispatcher = create_dispatcher(services, notice_every_drop=True)
            if language is not None:  # --language is /language typed first
                await services.languages.set(LOCAL_USER_ID, language)
            i18n.current_locale = await spoken_now(services.languages, language_code)
            print(_(BANNER), file=out, flush=True)
            print(file=out)
            assert services.alerts is not None and services.jobs is not None
            await start_background(bot, services)
            try:
                typed = _lines(lines if lines is not None else stdin_lines())
                await _converse(dispatcher, bot, session, typed, i18n, services.languages)
            finally:
                await services.jobs.stop()
                await services.alerts.stop()
            for task in list(services.background):
                task.cancel()
            await asyncio.gather(*services.background, return_exceptions=True)
        finally:
            await index.close()


async def _converse(
    dispatcher: Any,
    bot: Bot,
    session: TerminalSession,
    lines: AsyncIterable[str],
    i18n: I18n,
    languages: ChatLanguages,
) -> None:
    """Feed each line to the bot; the chat's own lines follow /language (``i18n``)."""
    update_ids = itertools.count(1)
    async for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if line.lower() in ("/quit", "/exit", ":q"):
            break
        session.new_turn()
        if re.fullmatch(r":\d+", line):
            update = session.press(int(line[1:]), next(update_ids))
        else:
            update = message_update(
                next(update_ids), session.next_message_id(), line, session.language_code
            )
        if update is not None:
            await dispatcher.feed_update(bot, update)
            i18n.current_locale = await spoken_now(languages, session.language_code)
