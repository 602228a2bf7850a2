"""Floods, failing handlers and Telegram's refusals: the bot stays up and polite."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bot.handlers.errors import APOLOGY
from bot.rate_limit import FLOOD_NOTICE
from index import ArticleIndex
from tests.fake_telegram import DEFAULT_TOKEN, FakeUser
from tests.test_bot.harness import USER, RunningBot, StartBot


async def test_a_flood_gets_one_notice_and_no_queued_work(start_bot: StartBot) -> None:
    running = await start_bot(rate_limit=3, rate_window=60)
    conv = running.chat()
    for _ in range(3):
        await conv.send("/help")

    [notice] = await conv.send("/help")
    assert await conv.send("volcano", expect_reply=False) == []
    assert await conv.send("/sources", expect_reply=False) == []

    assert notice.text == FLOOD_NOTICE
    assert [m.text for m in conv.messages].count(FLOOD_NOTICE) == 1
    assert running.api.calls_of("sendChatAction") == []  # the dropped question never ran
    [other] = await running.chat(FakeUser(id=7, first_name="Eve")).send("/help")
    assert "Commands" in other.text  # other users are not affected


async def test_a_failing_handler_apologises_and_polling_goes_on(
    running: RunningBot, index: ArticleIndex, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    async def broken_search(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    conv = running.chat()
    monkeypatch.setattr(index, "search", broken_search)
    with caplog.at_level(logging.ERROR):
        [apology] = await conv.send("volcano")
    monkeypatch.undo()
    [answer] = await conv.send("volcano eruption")

    assert apology.text == APOLOGY
    assert "Volcano erupts near village" in answer.text
    [record] = [r for r in caplog.records if r.name == "bot.handlers.errors"]
    assert record.getMessage().startswith("Update ") and "disk on fire" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError


async def test_a_failing_button_apologises_in_an_alert(
    running: RunningBot, index: ArticleIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_article(*args: object) -> None:
        raise RuntimeError("database locked")

    conv = running.chat()
    await conv.send("volcano eruption")
    monkeypatch.setattr(index, "article", broken_article)

    await conv.press("📄 1.")

    assert conv.last_callback_answer is not None
    assert conv.last_callback_answer["text"] == APOLOGY


async def test_retry_after_is_honoured(running: RunningBot) -> None:
    """Telegram's 429 says how long to wait: the bot waits, then sends the answer."""
    running.api.fail_next("sendMessage", 429, retry_after=1)
    conv = running.chat()

    [answer] = await conv.send("volcano eruption")

    assert "Volcano erupts near village" in answer.text
    refused, sent = running.api.calls_of("sendMessage")
    assert (refused.ok, sent.ok) == (False, True)
    assert sent.time - refused.time >= 1.0


async def test_a_user_who_blocked_the_bot_is_recorded(running: RunningBot) -> None:
    running.api.fail_next("sendMessage", 403, chat_id=USER.id)
    conv = running.chat()

    assert await conv.send("volcano eruption", expect_reply=False) == []

    assert USER.id in running.services.on_blocked.chat_ids  # type: ignore[attr-defined]
    assert len(running.api.calls_of("sendMessage")) == 1  # no apology sent into the void
    [answer] = await conv.send("volcano eruption")  # unblocked later: answered again
    assert "Volcano" in answer.text


async def test_the_token_never_appears_in_logs(
    running: RunningBot, index: ArticleIndex, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    async def broken_search(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    caplog.set_level(logging.DEBUG)
    conv = running.chat()
    await conv.send("/start")
    monkeypatch.setattr(index, "search", broken_search)
    await conv.send("volcano")
    running.api.fail_next("sendMessage", 429, retry_after=1)
    monkeypatch.undo()
    await conv.send("volcano")

    assert "Update " in caplog.text and "Telegram asked to wait" in caplog.text
    assert DEFAULT_TOKEN not in caplog.text
    assert DEFAULT_TOKEN.split(":")[1] not in caplog.text
