"""State replicas share, in the real Redis (REDIS_URL): a button pressed on another replica
finds its answer, a user's rate limit is counted across replicas, senders in two processes
share one alert pace, keys expire, and Redis going away never crashes the bot.

Each "replica" has its own Services, Redis client, Bot and Dispatcher over the same index
and fake Bot API; updates are handed to the replica a test chooses, as a load balancer
hands webhook requests to one of them. Each test has its own key prefix, deleted after."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from pydantic import SecretStr

from bot.app import StartupError, create_bot, create_dispatcher, open_services
from bot.handlers.results import EXPIRED
from bot.rate_limit import FLOOD_NOTICE
from bot.services import Services
from bot.settings import BotSettings
from bot.shared_state import SharedState, main
from index import ArticleIndex
from tests.fake_telegram import FakeBotAPI, FakeChat, FakeMessage
from tests.fakes import HashEmbedder
from tests.test_bot.harness import OTHER, USER

JsonDict = dict[str, Any]
DOWN = "redis://127.0.0.1:1/0"  # nothing listens there: connections are refused at once


@dataclass
class Replica:
    """One bot process of several behind a load balancer."""

    api: FakeBotAPI
    bot: Bot
    dispatcher: Dispatcher
    services: Services

    async def deliver(self, update: JsonDict) -> None:
        """Hand ``update`` to this replica, as a webhook request would; return once handled."""
        update_id = self.api.push_update(update)  # the fake learns its message, its query
        await self.dispatcher.feed_raw_update(self.bot, {"update_id": update_id, **update})


StartReplica = Callable[..., Awaitable[Replica]]


@pytest.fixture
async def replicas(
    api: FakeBotAPI,
    bot_settings: BotSettings,
    index: ArticleIndex,
    redis_url: str,
    redis_prefix: str,
) -> AsyncIterator[StartReplica]:
    """``await replicas(**settings)``: a new replica sharing this test's Redis prefix."""
    started: list[Replica] = []

    async def start(**overrides: Any) -> Replica:
        settings = bot_settings.model_copy(
            update={
                "bot_api_url": api.base_url,
                "redis_url": SecretStr(overrides.pop("redis_url", redis_url)),
                "redis_prefix": redis_prefix,
                **overrides,
            }
        )
        services = Services.create(settings, index)
        bot = create_bot(settings)
        replica = Replica(api, bot, create_dispatcher(services), services)
        started.append(replica)
        return replica

    yield start
    for replica in started:
        assert replica.services.shared is not None
        await replica.services.shared.close()
        await replica.bot.session.close()


def press(api: FakeBotAPI, chat: FakeChat, message: FakeMessage, label: str) -> JsonDict:
    """The update of USER pressing the button of ``message`` whose text starts with ``label``."""
    [button] = [b for row in message.inline_buttons for b in row if b["text"].startswith(label)]
    return api.callback_update(chat, USER, message, button["callback_data"])


def callback_answer(api: FakeBotAPI, update: JsonDict) -> JsonDict:
    return api.callback_answers[update["callback_query"]["id"]]


async def test_a_press_reaching_another_replica_finds_the_answer(
    replicas: StartReplica, api: FakeBotAPI, redis_prefix: str, bot_settings: BotSettings
) -> None:
    """ "More results" asked on one replica is pressed on another; a hit of that page is
    opened on the first again; a replica of another deployment (prefix) knows nothing."""
    a, b = await replicas(), await replicas()
    chat = FakeChat.private(USER)
    api.add_chat(chat)

    await a.deliver(api.message_update(chat, USER, "volcano eruption"))
    [answer] = api.sent_messages(chat.id)
    more = press(api, chat, answer, "More results")
    await b.deliver(more)

    page = api.sent_messages(chat.id)[-1]
    assert "text" not in callback_answer(api, more)  # no "expired" alert
    assert page.message_id != answer.message_id and "\n4. " in page.text
    edited = api.message(chat.id, answer.message_id)
    assert edited is not None and ["More results »"] not in edited.buttons
    fourth = press(api, chat, page, "📄 4.")  # known only from the page replica b showed
    await a.deliver(fourth)
    title = page.buttons[0][0].removeprefix("📄 4. ").rstrip("…")
    article = [m for m in api.sent_messages(chat.id) if m.message_id > page.message_id]
    assert article and article[0].text.startswith(title)

    assert a.services.shared is not None
    redis = a.services.shared.redis
    [key] = [key async for key in redis.scan_iter(f"{redis_prefix}q:*")]
    assert 0 < await redis.ttl(key) <= bot_settings.query_ttl  # kept when b saved page 2

    elsewhere = await replicas(redis_prefix=redis_prefix + "elsewhere:")
    first = press(api, chat, answer, "📄 1.")
    await elsewhere.deliver(first)
    assert callback_answer(api, first)["text"] == EXPIRED


async def test_the_rate_limit_holds_across_replicas(
    replicas: StartReplica, api: FakeBotAPI, redis_prefix: str
) -> None:
    """With RATE_LIMIT 6, a user's 7th message is dropped with one notice and the 8th
    silently, though the messages alternate between replicas; another user is unaffected."""
    a = await replicas(rate_limit=6, rate_window=60)
    b = await replicas(rate_limit=6, rate_window=60)
    chat = FakeChat.private(USER)
    api.add_chat(chat)

    for n in range(8):
        await (a if n % 2 == 0 else b).deliver(api.message_update(chat, USER, "/help"))

    texts = [message.text for message in api.sent_messages(chat.id)]
    assert len(texts) == 7
    assert all("send your question" in text for text in texts[:6])
    assert texts[6] == FLOOD_NOTICE
    other = FakeChat.private(OTHER)
    api.add_chat(other)
    await b.deliver(api.message_update(other, OTHER, "/help"))
    assert "send your question" in api.sent_messages(other.id)[-1].text

    assert a.services.shared is not None
    redis = a.services.shared.redis
    for key in (f"{redis_prefix}rl:chat:{USER.id}", f"{redis_prefix}rl:chat:{USER.id}:flood"):
        assert 0 < await redis.pttl(key) <= 60_001  # gone a window after the last message


async def test_two_senders_sharing_the_pace_stay_within_the_rate(
    redis_url: str, redis_prefix: str
) -> None:
    """Two senders (two Redis clients, as two workers) asking for slots as fast as they can
    get at most ALERT_RATE a second together; a pause taken by one holds the other."""
    rate = 20
    shared = [SharedState.from_url(redis_url, redis_prefix) for _ in range(2)]
    paces = [state.pace(rate) for state in shared]
    sent: list[tuple[float, int]] = []

    async def sender(number: int) -> None:
        for _ in range(15):
            await paces[number].wait()
            sent.append((time.monotonic(), number))

    try:
        await asyncio.gather(sender(0), sender(1))
        times = sorted(when for when, _ in sent)
        # the message `rate` places after any other went at least a second later (give or
        # take the moments between Redis granting a slot and the sender seeing it)
        assert min(times[i + rate] - times[i] for i in range(len(times) - rate)) > 0.9
        assert {number for _, number in sent} == {0, 1}

        await paces[0].pause_all(30)  # a 429 with retry_after 30 seen by one worker
        assert await paces[1].take() > 29
    finally:
        for state in shared:
            await state.close()


async def test_an_unreachable_redis_stops_start_up_with_one_line(
    bot_settings: BotSettings,
) -> None:
    """A REDIS_URL nobody answers, or that is not a Redis URL, is one line naming REDIS_URL,
    before the model loads; the password is never shown."""
    for url, expected in (
        ("redis://:hunter2pw@127.0.0.1:1/0", "cannot reach Redis at REDIS_URL "),
        ("http://user:hunter2pw@127.0.0.1:6379/", "is not a Redis URL"),
    ):
        settings = bot_settings.model_copy(update={"redis_url": SecretStr(url)})
        with pytest.raises(StartupError) as caught:
            await open_services(settings, HashEmbedder())
        message = str(caught.value)
        assert expected in message and "REDIS_URL" in message and "127.0.0.1" in message
        assert "\n" not in message and "hunter2pw" not in message


async def test_redis_going_away_answers_and_apologises_instead_of_crashing(
    replicas: StartReplica, api: FakeBotAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """Without Redis mid-run a question is still answered (the rate limit lets it through),
    its buttons say the answer expired, and each kind of failure is logged once."""
    down = await replicas(redis_url=DOWN, rate_limit=1)
    chat = FakeChat.private(USER)
    api.add_chat(chat)

    with caplog.at_level(logging.WARNING, logger="bot.shared_state"):
        for _ in range(2):
            await down.deliver(api.message_update(chat, USER, "volcano eruption"))
        answers = api.sent_messages(chat.id)
        more = press(api, chat, answers[-1], "More results")
        await down.deliver(more)

    assert len(answers) == 2 and all(a.text.startswith("🔎") for a in answers)
    assert callback_answer(api, more)["text"] == EXPIRED
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3, warnings  # rate limit, saving a state, reading one: once each
    assert all("127.0.0.1:1" in line and "unavailable" in line for line in warnings)


async def test_the_pace_falls_back_to_this_process_without_redis(redis_prefix: str) -> None:
    shared = SharedState.from_url(DOWN, redis_prefix)
    try:
        pace = shared.pace(1000)
        await pace.wait()
        await pace.wait()  # paced locally, a millisecond apart
    finally:
        await shared.close()


def test_the_bench_reports_redis_and_memory_per_question(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m bot.shared_state bench --json``: both backends, questions and presses."""
    assert main(["bench", "--redis-url", redis_url, "--questions", "20", "--json"]) == 0

    figures = json.loads(capsys.readouterr().out)
    assert set(figures["backends"]) == {"redis", "memory"}
    for side in figures["backends"].values():
        assert set(side) == {"question", "press"}
        assert all(side[name]["mean_us"] > 0 for name in side)
