"""Tests of the fake Bot API itself, driven by a real aiogram Bot and Dispatcher."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router, html
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from aiogram.filters import CommandStart
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from tests.conversation import Conversation
from tests.fake_telegram import FakeBotAPI, FakeChat, FakeUser

USER = FakeUser(id=1001, first_name="Ann", username="ann")
CHAT = FakeChat.private(USER)


def more_keyboard(page: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text="More results", callback_data=f"more:{page}")],
            [InlineKeyboardButton(text="Docs", url="https://example.org/docs")],
        ]
    )


def echo_router() -> Router:
    """/start greets with a keyboard, "More results" edits the page, other text is echoed."""
    router = Router()

    @router.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer(f"Hello, {html.bold('Ann')}!", reply_markup=more_keyboard(1))

    @router.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(html.quote(message.text or ""))

    @router.callback_query(F.data.startswith("more:"))
    async def more(query: CallbackQuery) -> None:
        page = int((query.data or "").split(":")[1]) + 1
        assert isinstance(query.message, Message)
        await query.message.edit_text(f"Page {page}", reply_markup=more_keyboard(page))
        await query.answer(f"Loaded page {page}")

    return router


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        fake.add_chat(CHAT)
        yield fake


@pytest.fixture
async def bot(api: FakeBotAPI) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(api.base_url))
    bot = Bot(api.token, session=session, default=DefaultBotProperties(parse_mode="HTML"))
    yield bot
    await bot.session.close()


@pytest.fixture
async def polling(api: FakeBotAPI, bot: Bot) -> AsyncIterator[Dispatcher]:
    dispatcher = Dispatcher()
    dispatcher.include_router(echo_router())
    task = asyncio.create_task(dispatcher.start_polling(bot, handle_signals=False))
    await api.wait_until(lambda: api.calls_of("getUpdates"), what="polling to start")
    yield dispatcher
    await dispatcher.stop_polling()
    await task


async def test_send_message_round_trip(api: FakeBotAPI, bot: Bot) -> None:
    sent = await bot.send_message(
        CHAT.id, "<b>Top</b> story &amp; more", reply_markup=more_keyboard(1)
    )

    assert sent.chat.id == CHAT.id
    assert sent.from_user is not None and sent.from_user.username == "newsbot_test"
    assert sent.text == "Top story & more"
    assert sent.entities is not None and sent.entities[0].type == "bold"
    again = await bot.send_message(CHAT.id, "second")
    assert again.message_id == sent.message_id + 1
    [stored, _] = api.sent_messages(CHAT.id)
    assert stored.html == "<b>Top</b> story &amp; more"
    assert stored.parse_mode == "HTML"
    assert stored.buttons == [["More results"], ["Docs"]]
    [call, _] = api.calls_of("sendMessage")
    assert call.params["chat_id"] == CHAT.id
    assert call.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "more:1"


async def test_edits_follow_telegram_rules(api: FakeBotAPI, bot: Bot) -> None:
    sent = await bot.send_message(CHAT.id, "Searching…", reply_markup=more_keyboard(1))

    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "Searching…", chat_id=CHAT.id, message_id=sent.message_id, reply_markup=more_keyboard(1)
        )
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("Done", chat_id=CHAT.id, message_id=999)
    await bot.edit_message_text("Done", chat_id=CHAT.id, message_id=sent.message_id)

    [stored] = api.sent_messages(CHAT.id)
    assert (stored.text, stored.reply_markup) == ("Done", None)  # no markup given: removed


async def test_invalid_html_is_rejected(bot: Bot) -> None:
    cases = {
        "line<br>break": 'Unsupported start tag "br"',
        "Q&A": 'Unescaped "&"',
        "<b>bold": 'Can\'t find end tag corresponding to start tag "b"',
        "<b><i>x</b></i>": 'expected "</i>", found "</b>"',
        "1 < 2": 'Unsupported start tag ""',
        '<span class="x">s</span>': 'Tag "span" must have class "tg-spoiler"',
    }
    for text, reason in cases.items():
        with pytest.raises(TelegramBadRequest, match="can't parse entities") as error:
            await bot.send_message(CHAT.id, text)
        assert reason in error.value.message, text
    allowed = (
        "<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>n</ins><s>s</s><del>d</del>"
        '<tg-spoiler>t</tg-spoiler><span class="tg-spoiler">p</span><a href="https://x.org">a</a>'
        '<code>c</code><pre><code class="language-py">p</code></pre>'
        "<blockquote expandable>q</blockquote> &lt;&gt;&amp;&quot;&#39;"
    )
    sent = await bot.send_message(CHAT.id, allowed)
    assert sent.text == "bsieunsdtpacpq <>&\"'"


async def test_text_length_counts_utf16_after_entity_parsing(bot: Bot) -> None:
    await bot.send_message(CHAT.id, "<b>" + "x" * 4096 + "</b>")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(CHAT.id, "x" * 4097)
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(CHAT.id, "😀" * 2049)  # 4098 UTF-16 code units


async def test_callback_data_limit(bot: Bot) -> None:
    def keyboard(data: str) -> InlineKeyboardMarkup:
        button = InlineKeyboardButton(text="Go", callback_data=data)
        return InlineKeyboardMarkup(inline_keyboard=[[button]])

    await bot.send_message(CHAT.id, "ok", reply_markup=keyboard("d" * 64))
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(CHAT.id, "too long", reply_markup=keyboard("d" * 65))


async def test_spec_checks_over_raw_http(api: FakeBotAPI) -> None:
    async with aiohttp.ClientSession() as http:
        url = f"{api.base_url}/bot{api.token}"

        async def post(method: str, payload: dict[str, Any], base: str = url) -> dict[str, Any]:
            async with http.post(f"{base}/{method}", json=payload) as response:
                body: dict[str, Any] = await response.json()
                assert response.status == body.get("error_code", 200)
                return body

        assert await post("sendMessage", {"chat_id": CHAT.id}) == {
            "ok": False,
            "error_code": 400,
            "description": "Bad Request: message text is empty",
        }
        bad_markup = {"chat_id": CHAT.id, "text": "x", "reply_markup": {"inline_keyboard": [[{}]]}}
        body = await post("sendMessage", bad_markup)
        assert body["description"] == (
            'Bad Request: field "reply_markup.inline_keyboard[0][0].text" is required'
        )
        assert (await post("sendMessage", {"chat_id": "1.5", "text": "x"}))["error_code"] == 400
        assert (await post("sendMesage", {}))["description"] == "Not Found: method not found"
        wrong_token = f"{api.base_url}/bot42:WRONG"
        assert await post("getMe", {}, wrong_token) == {
            "ok": False,
            "error_code": 401,
            "description": "Unauthorized",
        }


async def test_scripted_failures(api: FakeBotAPI, bot: Bot) -> None:
    api.fail_next("sendMessage", 429, retry_after=7)
    with pytest.raises(TelegramRetryAfter) as flood:
        await bot.send_message(CHAT.id, "hi")
    assert flood.value.retry_after == 7
    assert "Too Many Requests: retry after 7" in flood.value.message

    api.fail_next("sendMessage", 403, chat_id=CHAT.id)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(CHAT.id, "hi")

    await bot.send_message(CHAT.id, "hi")
    assert [call.ok for call in api.calls_of("sendMessage")] == [False, False, True]


async def test_get_updates_confirms_by_offset_and_long_polls(api: FakeBotAPI, bot: Bot) -> None:
    first = api.push_update(api.message_update(CHAT, USER, "/start"))
    second = api.push_update(api.message_update(CHAT, USER, "hello"))

    updates = await bot.get_updates(timeout=0)
    assert [update.update_id for update in updates] == [first, second]
    assert updates[0].message is not None and updates[0].message.entities is not None
    assert updates[0].message.entities[0].type == "bot_command"
    assert [u.update_id for u in await bot.get_updates(offset=second, limit=5)] == [second]
    assert api.delivered_update_ids == {first, second}

    poll = asyncio.create_task(bot.get_updates(offset=second + 1, timeout=30))
    await asyncio.sleep(0.05)
    assert not poll.done()
    third = api.push_update(api.message_update(CHAT, USER, "later"))
    updates = await asyncio.wait_for(poll, 0.5)
    assert [update.update_id for update in updates] == [third]
    assert [update["update_id"] for update in api.pending_updates] == [third]


@pytest.mark.usefixtures("polling")
async def test_conversation_send_and_press(api: FakeBotAPI) -> None:
    conv = Conversation(api, CHAT, USER)

    [greeting] = await conv.send("/start")
    assert greeting.text == "Hello, Ann!"
    assert greeting.html == "Hello, <b>Ann</b>!"
    assert greeting.buttons == [["More results"], ["Docs"]]

    [page] = await conv.press("More")
    assert page.message_id == greeting.message_id
    assert page.text == "Page 2"
    assert conv.last_callback_answer is not None
    assert conv.last_callback_answer["text"] == "Loaded page 2"

    [echo] = await conv.send("1 < 2 & 3")
    assert echo.text == "1 < 2 & 3"
    assert conv.last_reply == echo
    assert conv.errors == []
