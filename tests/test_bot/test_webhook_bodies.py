"""Webhook requests with bodies that are not a Telegram Update: 400, and nothing at ERROR."""

from __future__ import annotations

import asyncio
import gc
import logging

import aiohttp
import pytest

from tests.fake_telegram import FakeBotAPI, FakeChat
from tests.test_bot.harness import USER
from tests.test_bot.test_webhook import SECRET, webhook

__all__ = ["webhook"]  # the fixture, used by name below

HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
BAD_BODIES = [
    b'{"update_id": 1, "message": {',  # cut short
    b"not json at all",
    b"\xff\xfe\x00garbage",  # not UTF-8
    b"",
    b"[1, 2, 3]",  # JSON, but a list
    b'[{"update_id": 1}]',
    b'"an update"',
    b"42",
    b"null",
    b"{}",  # no update_id
    b'{"update_id": "one"}',
    b'{"update_id": 5, "message": 7}',
    b'{"update_id": 6, "message": {"text": "no chat, no date"}}',
    b'{"update_id": 7, "callback_query": {"id": "1"}}',
    b'{"update_id": 1e400}',
    b"[" * 100_000 + b"]" * 100_000,  # deeper than the JSON parser recurses
]


async def test_bodies_that_are_not_updates_get_400_and_log_nothing(
    api: FakeBotAPI, webhook: str, caplog: pytest.LogCaptureFixture
) -> None:
    statuses = []
    with caplog.at_level(logging.WARNING):
        async with aiohttp.ClientSession() as http:
            for body in BAD_BODIES:
                async with http.post(webhook, data=body, headers=HEADERS) as response:
                    statuses.append(response.status)
        await asyncio.sleep(0.2)  # any background work would have run by now
        gc.collect()  # a failed, never-awaited task is reported when collected

    assert statuses == [400] * len(BAD_BODIES)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert "Task exception was never retrieved" not in caplog.text
    assert "Traceback" not in caplog.text


async def test_a_bad_body_without_the_secret_is_still_401(webhook: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(webhook, data=b"[1]") as response:
            assert response.status == 401
        wrong = {**HEADERS, "X-Telegram-Bot-Api-Secret-Token": "guess"}
        async with http.post(webhook, data=b"{", headers=wrong) as response:
            assert response.status == 401


async def test_a_good_update_after_bad_ones_is_answered(api: FakeBotAPI, webhook: str) -> None:
    chat = FakeChat.private(USER)
    update = api.message_update(chat, USER, "/start") | {"update_id": 9}
    async with aiohttp.ClientSession() as http:
        async with http.post(webhook, data=b"[]", headers=HEADERS) as response:
            assert response.status == 400
        async with http.post(webhook, json=update, headers=HEADERS) as response:
            assert response.status == 200

    await api.wait_until(lambda: api.sent_messages(chat.id), what="the greeting")
    assert api.sent_messages(chat.id)[0].text.startswith("Hello, Ann!")
