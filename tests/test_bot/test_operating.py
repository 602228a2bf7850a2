"""Operating the bot: Prometheus metrics, health and readiness, JSON logs, the health check.

The metrics live on prometheus-client's default registry, shared by every app this process
builds, so these tests compare values before and after."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from bot.alerts.service import AlertsService
from bot.app import build_webhook_app, create_bot, create_dispatcher
from bot.health import health_app, start_metrics_server
from bot.heartbeat import healthcheck
from bot.log import make_handler
from bot.services import Services
from bot.settings import BotSettings
from index import ArticleIndex, IndexCore
from tests import factories
from tests.fake_telegram import DEFAULT_TOKEN, FakeBotAPI, FakeChat
from tests.fakes import HashEmbedder
from tests.postgres import allow_connections
from tests.test_bot.harness import USER, RunningBot

SECRET = "webhook-secret_123"
ANSWERED = "What happened when the volcano erupted?"
REFUSED = "quantum chromodynamics lattice gluon"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(http: aiohttp.ClientSession, base: str) -> tuple[Samples, str]:
    """Every sample of ``/metrics`` by (name, labels), and the text itself."""
    async with http.get(f"{base}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, text


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
async def webhook(
    api: FakeBotAPI, bot_settings: BotSettings, index: ArticleIndex
) -> AsyncIterator[str]:
    """The webhook app on a local port; yields its base URL."""
    settings = BotSettings.model_validate(
        bot_settings.model_dump()
        | {
            "bot_api_url": api.base_url,
            "webhook_url": "https://bot.example.org/telegram/updates",
            "webhook_secret": SECRET,
        }
    )
    bot = create_bot(settings)
    app = build_webhook_app(create_dispatcher(Services.create(settings, index)), bot, settings)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


async def test_metrics_count_questions_answered_through_the_webhook(
    api: FakeBotAPI, webhook: str, index: ArticleIndex
) -> None:
    """/metrics parses, and the counters move when a question is answered and when one is
    refused; no label carries the user's text or id."""
    chat = FakeChat.private(USER)
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}

    def replies(count: int) -> bool:
        return len(api.sent_messages(chat.id)) >= count

    async with aiohttp.ClientSession() as http:
        before, _ = await scrape(http, webhook)
        for update_id, question in enumerate([ANSWERED, REFUSED], start=1):
            update = api.message_update(chat, USER, question) | {"update_id": update_id}
            async with http.post(f"{webhook}/telegram/updates", json=update, headers=headers) as r:
                assert r.status == 200
            await api.wait_until(partial(replies, update_id), what="the reply")
        # The count follows the reply by a moment (after Telegram accepted it)
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            after, text = await scrape(http, webhook)
            questions = sum(
                value(after, "newsbot_questions_total", outcome=o)
                - value(before, "newsbot_questions_total", outcome=o)
                for o in ("answered", "refused", "error")
            )
            if questions >= 2 or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.05)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert api.sent_messages(chat.id)[1].text.startswith("I found nothing about")
    assert delta("newsbot_updates_total", kind="message") == 2
    assert delta("newsbot_questions_total", outcome="answered") == 1
    assert delta("newsbot_questions_total", outcome="refused") == 1
    assert delta("newsbot_questions_total", outcome="error") == 0
    assert delta("newsbot_answer_seconds_count") == 2
    assert delta("newsbot_answer_seconds_sum") > 0
    assert delta("newsbot_search_seconds_count") == 2
    assert value(after, "newsbot_index_passages") == index.core.vectors.count > 0
    for name in ("newsbot_alerts_sent_total", "newsbot_feed_polls_total"):
        assert any(key[0] == name for key in after), f"{name} is missing"
    newsbot = [(name, labels) for name, labels in after if name.startswith("newsbot_")]
    label_values = {v for _, labels in newsbot for _, v in labels}
    for forbidden in (ANSWERED, REFUSED, "volcano", "quantum", str(USER.id), USER.first_name):
        assert not any(forbidden.lower() in v.lower() for v in label_values), forbidden
    assert "newsbot_updates_created" not in text  # no _created series


async def test_webhook_app_serves_health_and_readiness(webhook: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{webhook}/healthz") as response:
            assert response.status == 200
            assert await response.json() == {"alive": True}
        async with http.get(f"{webhook}/readyz") as response:
            assert response.status == 200
            assert await response.json() == {"ready": True}


async def test_readyz_follows_the_database(postgres_url: str, bot_settings: BotSettings) -> None:
    """/readyz turns 503 with a one-line reason (no password) while PostgreSQL refuses the
    bot's database, and 200 again once it is back; /healthz stays 200 throughout."""
    password = "s3cret-pw"  # trust authentication ignores it; it must not show anyway
    url = postgres_url
    if "@" not in url:  # the default server: any password passes trust authentication
        url = url.replace("postgresql://", f"postgresql://postgres:{password}@", 1)
    database = postgres_url.rsplit("/", 1)[1]
    settings = BotSettings.model_validate(bot_settings.model_dump() | {"database_url": url})
    core = await asyncio.to_thread(IndexCore.open, settings, HashEmbedder())
    index = ArticleIndex(core)
    alerts = AlertsService(settings, index)
    await alerts.store.open()
    server = TestServer(health_app(Services.create(settings, index, alerts=alerts), settings))
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    try:
        async with aiohttp.ClientSession() as http:

            async def probe(path: str) -> tuple[int, str]:
                async with http.get(f"{base}{path}") as response:
                    return response.status, await response.text()

            assert await probe("/readyz") == (200, '{"ready": true}')
            await asyncio.to_thread(allow_connections, database, False)
            status, body = await probe("/readyz")
            assert status == 503
            assert "\n" not in body.strip()
            reply = json.loads(body)
            assert reply["ready"] is False
            assert "database unreachable" in reply["reason"]
            assert password not in body
            assert (await probe("/healthz"))[0] == 200

            await asyncio.to_thread(allow_connections, database, True)
            deadline = asyncio.get_running_loop().time() + 15
            while (status := (await probe("/readyz"))[0]) != 200:
                assert asyncio.get_running_loop().time() < deadline, "not ready again"
                await asyncio.sleep(0.1)
            assert (await probe("/healthz"))[0] == 200
    finally:
        await server.close()
        await alerts.store.close()
        await index.close()


async def test_readyz_waits_for_the_index_to_catch_up(
    bot_settings: BotSettings, index: ArticleIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An article another process added and this one has not applied yet: 503 once the
    index has been behind for longer than the grace (0 here), 200 after it syncs."""
    monkeypatch.setattr("bot.health.LAG_GRACE", 0.0)
    other = await asyncio.to_thread(IndexCore.open, bot_settings, HashEmbedder())
    try:
        await asyncio.to_thread(other.add_articles, [factories.article("bank", url=None)])
    finally:
        await asyncio.to_thread(other.close)
    server = TestServer(health_app(Services.create(bot_settings, index), bot_settings))
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(server.make_url("/readyz")) as response:
                assert response.status == 503
                reason = (await response.json())["reason"]
            assert reason.startswith("index behind the store by 1 change (not current for")
            await index.sync()
            async with http.get(server.make_url("/readyz")) as response:
                assert response.status == 200
    finally:
        await server.close()


async def test_readyz_needs_redis_when_redis_url_is_set(
    bot_settings: BotSettings, index: ArticleIndex
) -> None:
    """With REDIS_URL, /readyz is 200 while Redis answers and 503 naming Redis (not its
    password) when nothing listens there."""
    password = "redis-pw-42"
    urls = {200: "redis://127.0.0.1:6379/0", 503: f"redis://:{password}@127.0.0.1:{_free_port()}/0"}
    for expected, url in urls.items():
        settings = BotSettings.model_validate(bot_settings.model_dump() | {"redis_url": url})
        services = Services.create(settings, index)
        server = TestServer(health_app(services, settings))
        await server.start_server()
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.get(server.make_url("/readyz")) as response,
            ):
                body = await response.text()
            assert response.status == expected, body
            if expected == 503:
                assert json.loads(body)["reason"].startswith("redis unreachable")
                assert password not in body
        finally:
            await server.close()
            if services.shared is not None:
                await services.shared.close()


async def test_json_logs_are_one_object_per_line_without_the_token(
    running: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    """A question whose reply Telegram refuses: the error is logged as JSON lines that carry
    the update id and chat id, the token redacted even where the error quotes it; the
    failed question is counted as an error."""
    stream = io.StringIO()
    handler = make_handler("json", [DEFAULT_TOKEN], stream)
    caplog.set_level(logging.INFO)
    logging.getLogger().addHandler(handler)
    chat = running.chat()
    running.api.fail_next(
        "sendMessage", 400, f"Bad Request: cannot send with token {DEFAULT_TOKEN}", times=1
    )
    try:
        replies = await chat.send(ANSWERED)
    finally:
        logging.getLogger().removeHandler(handler)

    assert replies and replies[-1].text.startswith("Sorry, something went wrong")
    text = stream.getvalue()
    assert DEFAULT_TOKEN not in text and "TEST-TOKEN" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    [failure] = [line for line in lines if line["level"] == "ERROR"]
    assert failure["chat_id"] == chat.chat.id
    assert "[redacted]" in failure["message"]
    assert "Traceback" in failure["exception"]
    [handled] = [line for line in lines if line["logger"] == "bot.metrics"]
    assert handled["update_id"] == failure["update_id"]
    assert handled["kind"] == "message" and handled["duration"] > 0


async def test_text_logs_stay_human_readable() -> None:
    stream = io.StringIO()
    handler = make_handler("text", [DEFAULT_TOKEN], stream)
    record = logging.LogRecord(
        "bot", logging.WARNING, __file__, 1, "token %s", (DEFAULT_TOKEN,), None
    )
    handler.handle(record)
    assert stream.getvalue().rstrip().endswith("WARNING bot: token [redacted]")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_metrics_port_serves_probes_and_the_healthcheck_asks_it(
    bot_settings: BotSettings, index: ArticleIndex, tmp_path: Path
) -> None:
    """With METRICS_PORT (polling mode, workers) the probes have their own server, and
    `python -m bot healthcheck [--ready]` asks it; stopped, the check fails in one line."""
    port = _free_port()
    settings = BotSettings.model_validate(
        bot_settings.model_dump() | {"metrics_port": port, "webhook_host": "127.0.0.1"}
    )
    runner = await start_metrics_server(settings, Services.create(settings, index))
    assert runner is not None
    try:
        async with aiohttp.ClientSession() as http:
            samples, _ = await scrape(http, f"http://127.0.0.1:{port}")
        assert value(samples, "newsbot_index_passages") == index.core.vectors.count
        assert await asyncio.to_thread(healthcheck, settings) == 0
        assert await asyncio.to_thread(healthcheck, settings, ready=True) == 0
    finally:
        await runner.cleanup()
    assert await asyncio.to_thread(healthcheck, settings, ready=True) == 1
    off = BotSettings.model_validate(bot_settings.model_dump() | {"metrics_port": None})
    assert await start_metrics_server(off, None) is None
