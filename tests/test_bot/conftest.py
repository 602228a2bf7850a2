"""Fixtures for end-to-end bot tests: the real aiogram Bot and Dispatcher, polling a
`FakeBotAPI` over HTTP, with a real index (fast fake embedder) of a few small articles."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import create_bot, create_dispatcher
from bot.services import Services
from bot.settings import BotSettings
from index import ArticleIndex, IndexCore
from tests import factories
from tests.fake_telegram import DEFAULT_TOKEN, FakeBotAPI
from tests.fakes import HashEmbedder
from tests.test_bot.harness import ADMIN, RunningBot, StartBot, sample_articles


@pytest.fixture
def bot_settings(tmp_path: Path) -> BotSettings:
    return BotSettings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        bot_token=DEFAULT_TOKEN,
        admin_ids=[ADMIN.id],
        rate_limit=1000,
        samples_dir=None,
        min_hit_share=0.0,  # the fake embedder's scores spread wider than the real model's
        fetch_allow_private=True,  # test pages are served from 127.0.0.1
    )


@pytest.fixture
async def index(bot_settings: BotSettings) -> AsyncIterator[ArticleIndex]:
    core = IndexCore.open(bot_settings, HashEmbedder())
    core.min_relevance = 0.2  # the fake embedder's scores run lower than the real model's
    index = ArticleIndex(core)
    await index.add_articles(sample_articles())
    await index.ingest([str(factories.SAMPLE)])
    yield index
    await index.close()


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        yield fake


@pytest.fixture
async def start_bot(
    api: FakeBotAPI, bot_settings: BotSettings, index: ArticleIndex
) -> AsyncIterator[StartBot]:
    """Start polling with settings overridden as given; everything stops after the test."""
    running: list[tuple[RunningBot, asyncio.Task[None]]] = []

    async def start(**overrides: Any) -> RunningBot:
        settings = bot_settings.model_copy(update={"bot_api_url": api.base_url, **overrides})
        services = Services.create(settings, index)
        bot = create_bot(settings)
        dispatcher = create_dispatcher(services)
        task = asyncio.create_task(
            dispatcher.start_polling(
                bot, handle_signals=False, allowed_updates=dispatcher.resolve_used_update_types()
            )
        )
        await api.wait_until(lambda: api.calls_of("getUpdates"), what="polling to start")
        handle = RunningBot(api, bot, dispatcher, services)
        running.append((handle, task))
        return handle

    yield start
    for handle, task in running:
        await handle.dispatcher.stop_polling()
        await task
        if handle.services.reindex_task:
            await asyncio.gather(handle.services.reindex_task, return_exceptions=True)


@pytest.fixture
async def running(start_bot: StartBot) -> RunningBot:
    """The bot polling with the default test settings."""
    return await start_bot()
