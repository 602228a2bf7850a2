"""Callback queries nobody planned for: forged data, buttons on inline-mode messages (no
``message``), inaccessible messages (``date`` 0), expired answers and queries Telegram has
already timed out. Every press is answered with a short text; no apology, no traceback."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.app import build_services, create_bot, create_dispatcher
from bot.handlers.buttons import STALE_BUTTON
from bot.handlers.errors import APOLOGY
from bot.handlers.results import EXPIRED
from bot.settings import BotSettings
from index import ArticleIndex
from tests.fake_telegram import FakeBotAPI, FakeChat, FakeUser
from tests.test_bot.harness import USER, RunningBot

JsonDict = dict[str, Any]
CALLBACK_TEXT_LIMIT = 200

FORGED_DATA = [
    "",
    "x",
    "more:",
    "more:abc:def",
    "more:nope:3",
    "more:nope:-1",
    "art:nope:1",
    "art:nope:99999999999999999999999",
    "sub:rm:1",
    "sub:rm:abc",
    "sub:rm:99999999999999999999999",
    "sub:all",
    "sub:all:0",
    "sub:keep:0",
    "sub:zzz:0",
    "al:mute:a1:1",
    "al:mute:a1:99999999999999999999999",
    "al:ask:missing:1",
    "al:ask:missing",
    "feed:rm:1",
    "\u202e\u0000",
    secrets.token_urlsafe(48)[:64],
]


@pytest.fixture
async def full_bot(
    api: FakeBotAPI, bot_settings: BotSettings, index: ArticleIndex
) -> AsyncIterator[RunningBot]:
    """The production wiring (alerts, subscriptions and feeds included), polling."""
    settings = bot_settings.model_copy(update={"bot_api_url": api.base_url})
    services = build_services(settings, index)
    bot = create_bot(settings)
    dispatcher = create_dispatcher(services)
    task = asyncio.create_task(
        dispatcher.start_polling(
            bot, handle_signals=False, allowed_updates=dispatcher.resolve_used_update_types()
        )
    )
    await api.wait_until(lambda: api.calls_of("getUpdates"), what="polling to start")
    yield RunningBot(api, bot, dispatcher, services)
    await dispatcher.stop_polling()
    await task  # the dispatcher's shutdown stops alerts and closes their database


def _query(user: FakeUser, data: str, **where: Any) -> JsonDict:
    return {
        "callback_query": {
            "id": f"forged-{secrets.token_hex(6)}",
            "from": user.to_dict(),
            "chat_instance": "-31337",
            "data": data,
            **where,
        }
    }


def _inline_message(user: FakeUser, data: str) -> JsonDict:
    """A press on a message sent through inline mode: Telegram gives no ``message``."""
    return _query(user, data, inline_message_id="AgAAAPd1AAC" + secrets.token_hex(4))


def _inaccessible(user: FakeUser, data: str, chat: FakeChat) -> JsonDict:
    """A press on a message the bot can no longer see: only chat, id and date 0."""
    return _query(user, data, message={"chat": chat.to_dict(), "message_id": 77, "date": 0})


async def _press_all(api: FakeBotAPI, updates: list[JsonDict]) -> list[str]:
    ids = [update["callback_query"]["id"] for update in updates]
    for update in updates:
        api.push_update(update)
    await api.wait_until(
        lambda: all(query_id in api.callback_answers for query_id in ids),
        20,
        what=f"answers to all {len(ids)} presses",
    )
    await api.wait_until(lambda: api.is_settled(0.2), 5, what="the bot to settle")
    return ids


def _no_apology(api: FakeBotAPI) -> None:
    sent = [call for call in api.calls_of("sendMessage") if call.params.get("text") == APOLOGY]
    assert sent == []


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_batch_of_forged_presses_is_each_answered_without_a_traceback(
    full_bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    """Random data on a real message, on inline-mode messages and on inaccessible ones, in
    private chats and in a group the bot does not know: every press gets a short answer."""
    api = full_bot.api
    conv = full_bot.chat()
    [greeting] = await conv.send("/start")
    own_message = {"message": greeting.to_dict()}
    stranger_group = FakeChat.group(id=-4000000777, title="Never met")
    updates = []
    for data in FORGED_DATA:
        updates.append(_query(USER, data, **own_message))
        updates.append(_inline_message(USER, data))
        updates.append(_inaccessible(USER, data, FakeChat.private(USER)))
        updates.append(_inaccessible(USER, data, stranger_group))

    with caplog.at_level(logging.INFO):
        ids = await _press_all(api, updates)

    answers = [api.callback_answers[query_id] for query_id in ids]
    assert all(0 < len(answer.get("text", "")) <= CALLBACK_TEXT_LIMIT for answer in answers)
    assert not any(answer.get("text") == APOLOGY for answer in answers)
    _no_apology(api)
    assert _errors(caplog) == []
    assert "Traceback" not in caplog.text and "AssertionError" not in caplog.text
    assert [m.text for m in conv.messages] == [greeting.text]  # nothing sent into the chat


async def test_buttons_of_an_expired_answer_say_so(full_bot: RunningBot) -> None:
    """Real "More results" and "Full article" buttons after the question was forgotten."""
    conv = full_bot.chat()
    await conv.send("volcano eruption")
    queries = full_bot.services.queries
    queries.clock = lambda: time.monotonic() + queries.ttl + 1  # the answer's TTL has passed

    await conv.press("More results")
    assert conv.last_callback_answer is not None
    assert conv.last_callback_answer["text"] == EXPIRED
    await conv.press("📄 1.")
    assert conv.last_callback_answer["text"] == EXPIRED


async def test_data_that_is_not_on_the_message_is_refused(full_bot: RunningBot) -> None:
    """A button's data rewritten (another offset, another hit number) is not acted on,
    nor is a forged update whose message carries the rewritten button too."""
    conv = full_bot.chat()
    [answer] = await conv.send("volcano eruption")
    more = next(b for row in answer.inline_buttons for b in row if "More" in b["text"])
    token = more["callback_data"].split(":")[1]
    rewritten = [f"more:{token}:{offset}" for offset in (-3, 0, 10**9)]
    updates = [_query(USER, data, message=answer.to_dict()) for data in rewritten]
    for data in rewritten:  # the whole update forged, keyboard included
        message = answer.to_dict()
        message["reply_markup"] = {"inline_keyboard": [[{"text": "x", "callback_data": data}]]}
        updates.append(_query(USER, data, message=message))
    ids = await _press_all(full_bot.api, updates)

    texts = [full_bot.api.callback_answers[q]["text"] for q in ids]
    assert texts == [STALE_BUTTON] * 3 + [EXPIRED] * 3
    assert [m.text for m in conv.messages] == [answer.text]  # no page was sent


async def test_a_press_telegram_has_timed_out_is_no_error(
    full_bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    """answerCallbackQuery refused as "query is too old": the press is still handled, and
    neither an apology nor a traceback follows."""
    conv = full_bot.chat()
    await conv.send("volcano eruption")
    full_bot.api.fail_next(
        "answerCallbackQuery",
        400,
        "Bad Request: query is too old and response timeout expired or query ID is invalid",
    )

    with caplog.at_level(logging.INFO):
        replies = await conv.press("📄 1.")

    assert replies and "Volcano erupts near village" in replies[0].text  # still delivered
    _no_apology(full_bot.api)
    assert _errors(caplog) == []
