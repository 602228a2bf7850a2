"""Webhook mode: updates arrive over HTTP and must carry the secret token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.app import build_webhook_app, create_bot, create_dispatcher
from bot.services import Services
from bot.settings import BotSettings
from index import ArticleIndex
from tests.fake_telegram import FakeBotAPI, FakeChat
from tests.test_bot.harness import USER

SECRET = "webhook-secret_123"


@pytest.fixture
async def webhook(
    api: FakeBotAPI, bot_settings: BotSettings, index: ArticleIndex
) -> AsyncIterator[str]:
    """The webhook app serving on a local port; yields the URL Telegram would post to."""
    settings = bot_settings.model_copy(
        update={
            "bot_api_url": api.base_url,
            "webhook_url": "https://bot.example.org/telegram/updates",
            "webhook_secret": SECRET,
        }
    )
    settings = BotSettings.model_validate(settings.model_dump())
    bot = create_bot(settings)
    app = build_webhook_app(create_dispatcher(Services.create(settings, index)), bot, settings)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/telegram/updates"))
    await server.close()


async def test_updates_with_the_secret_are_answered(api: FakeBotAPI, webhook: str) -> None:
    chat = FakeChat.private(USER)
    update = api.message_update(chat, USER, "/start") | {"update_id": 1}
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}

    async with (
        aiohttp.ClientSession() as http,
        http.post(webhook, json=update, headers=headers) as r,
    ):
        assert r.status == 200
    await api.wait_until(lambda: api.sent_messages(chat.id), what="the greeting")

    [greeting] = api.sent_messages(chat.id)
    assert greeting.text.startswith("Hello, Ann!")
    assert api.webhook_url == "https://bot.example.org/telegram/updates"
    [set_webhook] = api.calls_of("setWebhook")
    assert set_webhook.params["secret_token"] == SECRET
    assert "callback_query" in set_webhook.params["allowed_updates"]


async def test_updates_without_the_secret_are_rejected(api: FakeBotAPI, webhook: str) -> None:
    chat = FakeChat.private(USER)
    update = api.message_update(chat, USER, "/start") | {"update_id": 2}

    async with aiohttp.ClientSession() as http:
        async with http.post(webhook, json=update) as response:
            assert response.status == 401
        wrong = {"X-Telegram-Bot-Api-Secret-Token": "guess"}
        async with http.post(webhook, json=update, headers=wrong) as response:
            assert response.status == 401

    assert api.sent_messages(chat.id) == []
