"""One bot served by many processes: two web replicas (``python -m bot web``) and two workers
(``python -m bot worker``) as separate OS processes on one PostgreSQL database and one Redis,
with Telegram played by the test (the fake Bot API, and a load balancer posting each update
to a replica's webhook). What users see: every question answered once, whichever replica
gets it; "More results" pressed on another replica than the one that answered; an article
added through one replica found through the other; a rate limit counted across replicas;
alerts delivered by the workers; and after one replica and one worker are killed with
SIGKILL mid-run, nothing lost (duplicates only for what was in flight at the kill).

The processes are shared by the tests of this file (they take seconds to start); the one
that kills two of them runs last. Each run has its own database, Redis key prefix and
folders, removed at the end.
"""

from __future__ import annotations

import asyncio
import collections
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sized
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
import redis.asyncio as redis

from bot.storage import BotStore, OutboxRow
from bot.storage.database import database_url
from tests.alerts_support import FeedServer, rss
from tests.conftest import REDIS_URL
from tests.fake_telegram import FakeBotAPI, FakeChat, FakeMessage, FakeUser
from tests.postgres import fresh_database
from tests.replicas import (
    WEBHOOK_PATH,
    WEBHOOK_SECRET,
    BotProcess,
    LoadBalancer,
    start_bot_process,
    wait_ready,
)
from tests.test_bot.test_alerts import delivery

pytestmark = [pytest.mark.real_model, pytest.mark.asyncio(loop_scope="module")]

ADMIN = FakeUser(id=4242, first_name="Ada")
RATE_LIMIT = 3  # messages per RATE_WINDOW and user, counted across replicas
RATE_WINDOW = 60
ALERT_CONCURRENCY = 4
QUESTION = "Why is ANAMA holding meetings in Europe about mines?"
ANSWER_MARK = "🔎"  # the first characters of an answer with hits
FLOOD = "You're sending messages faster than I can read them"
WAIT = 30.0  # seconds a reply may take on a loaded 2-core machine
ALERTS = 400  # in the broadcast a worker is killed in; ALERT_RATE makes it last seconds
GLACIER_PAGE = """<!doctype html><html><head><title>Quellbrunn glacier retreats</title>
<meta name="author" content="I. Frost"></head><body><article>
<h1>Quellbrunn glacier retreats forty metres</h1>
<p>Researchers measured the retreat of the Quellbrunn glacier over the summer and found it
lost forty metres of length, the largest loss since records began.</p>
<p>The team used drones and satellite images to map the ice. They warned that the Quellbrunn
glacier could lose half of its volume by the middle of the century.</p>
</article></body></html>"""
FEED_PATH = "news.rss"
BACKLOG = [{"title": "Harbour dredging resumes", "text": "The port resumed dredging. " * 30}]
_users = iter(range(700_000, 800_000))


def new_user() -> FakeUser:
    """A user no test has used yet (so no earlier message counts against their rate)."""
    return FakeUser(id=next(_users), first_name="Uma")


@dataclass
class Cluster:
    """The running deployment and Telegram's side of it."""

    api: FakeBotAPI
    balancer: LoadBalancer
    web: list[BotProcess]
    workers: list[BotProcess]
    store: BotStore  # the bot's database, for what only an operator would look at
    feeds: FeedServer  # the feed the workers poll, and article pages


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(
    tmp_path_factory: pytest.TempPathFactory, model_cache: Path
) -> AsyncIterator[Cluster]:
    """Replicas ``a`` and ``b``, workers ``w1`` and ``w2``; everything is stopped, the
    database dropped and the Redis keys deleted afterwards, whatever happened."""
    work = tmp_path_factory.mktemp("replicas")
    prefix = f"newsbot-test:{uuid.uuid4().hex[:12]}:"
    processes: list[BotProcess] = []
    with fresh_database() as url:
        api = FakeBotAPI()
        feeds = FeedServer()
        await api.start()
        await feeds.start()
        store = BotStore.from_url(database_url(work, url))
        balancer: LoadBalancer | None = None
        try:
            env = {
                "BOT_TOKEN": api.token,
                "BOT_API_URL": api.base_url,
                "WEBHOOK_URL": f"https://bot.example.org{WEBHOOK_PATH}",
                "WEBHOOK_SECRET": WEBHOOK_SECRET,
                "DATABASE_URL": url,
                "REDIS_URL": REDIS_URL,
                "REDIS_PREFIX": prefix,
                "MODEL_CACHE_DIR": str(model_cache),
                "ADMIN_IDS": str(ADMIN.id),
                "FETCH_ALLOW_PRIVATE": "true",
                "RATE_LIMIT": str(RATE_LIMIT),
                "RATE_WINDOW": str(RATE_WINDOW),
                "ANSWER_HITS": "1",  # so an answer about the sample has "More results"
                "INDEX_SYNC_INTERVAL": "0.5",
                "FEEDS": feeds.serve(FEED_PATH, rss("Daily Test", BACKLOG)),
                "FEED_POLL_INTERVAL": "1",
                "ALERT_RATE": "80",  # per second, across both workers (Redis)
                "ALERT_CHAT_INTERVAL": "0",
                "ALERT_CONCURRENCY": str(ALERT_CONCURRENCY),
                "ALERT_CLAIM_LEASE": "3",
                "LOG_LEVEL": "INFO",
            }
            # All at once on the empty database, as a deployment's first start: each
            # migrates or waits, and seeds the sample article or finds it seeded. Only the
            # ONNX export of the model (once per test session) is left to the first.
            processes.append(await start_bot_process("a", "web", env, work / "a"))
            await wait_exported(processes[0], model_cache)
            processes.append(await start_bot_process("b", "web", env, work / "b"))
            for name in ("w1", "w2"):
                processes.append(await start_bot_process(name, "worker", env, work / name))
            await wait_ready(processes)
            web, workers = processes[:2], processes[2:]
            balancer = LoadBalancer(api, web)
            yield Cluster(api, balancer, web, workers, store, feeds)
        finally:
            for process in processes:
                process.kill()
            await asyncio.gather(*(p.stop() for p in processes))
            if balancer is not None:
                await balancer.close()
            await store.close()
            await feeds.stop()
            await api.stop()
            await _delete_keys(prefix)


async def wait_exported(process: BotProcess, cache: Path) -> None:
    """Wait until the model's ONNX export is in ``cache`` (made by ``process``)."""

    def exported() -> bool:
        return any(p.is_dir() and not p.name.startswith(".") for p in cache.iterdir())

    while not await asyncio.to_thread(exported):
        assert process.alive, f"{process.name} exited\n{process.log_tail()}"
        await asyncio.sleep(0.2)


async def _delete_keys(prefix: str) -> None:
    client = redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


# -- helpers -------------------------------------------------------------------------------


def private(user: FakeUser) -> FakeChat:
    return FakeChat.private(user)


def messages(cluster: Cluster, user: FakeUser) -> list[FakeMessage]:
    """The bot's messages in the user's private chat."""
    return cluster.api.sent_messages(user.id)


async def ask(cluster: Cluster, user: FakeUser, text: str, to: BotProcess | None = None) -> str:
    """Deliver the user's message (to ``to``, else the next replica); returns the replica
    that took it."""
    chat = private(user)
    return await cluster.balancer.deliver(cluster.api.message_update(chat, user, text), to)


async def replies(cluster: Cluster, user: FakeUser, count: int = 1) -> list[FakeMessage]:
    """Wait until the user's chat holds ``count`` messages of the bot; returns them."""
    await cluster.api.wait_until(
        lambda: len(messages(cluster, user)) >= count, WAIT, what=f"{count} replies to {user.id}"
    )
    return messages(cluster, user)


async def settled(cluster: Cluster, quiet: float = 1.0) -> None:
    """Wait until the processes have made no Bot API call for ``quiet`` seconds, so a
    duplicate would have shown by now."""
    await cluster.api.wait_until(lambda: cluster.api.is_settled(quiet), WAIT, what="quiet")


async def eventually(check: Callable[[], Awaitable[Sized]], what: str) -> None:
    """Wait until ``await check()`` returns something non-empty (checked every 0.1 s)."""
    deadline = time.monotonic() + WAIT
    while not await check():
        assert time.monotonic() < deadline, f"timed out after {WAIT:g} s waiting for {what}"
        await asyncio.sleep(0.1)


async def metric(process: BotProcess, name: str) -> float | None:
    """A gauge on the process's ``/metrics``."""
    async with aiohttp.ClientSession() as http, http.get(process.url("/metrics")) as response:
        text = await response.text()
    match = re.search(rf"^{name}(?:\{{[^}}]*\}})? (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


# -- tests ---------------------------------------------------------------------------------


async def test_questions_to_alternating_replicas_are_each_answered_once(cluster: Cluster) -> None:
    users = [new_user() for _ in range(6)]
    a, b = cluster.web

    taken = await asyncio.gather(
        *(ask(cluster, user, QUESTION, to=(a, b)[n % 2]) for n, user in enumerate(users))
    )
    for user in users:
        await replies(cluster, user)
    await settled(cluster)

    assert taken == ["a", "b"] * 3
    for user in users:
        [answer] = messages(cluster, user)
        assert answer.text.startswith(ANSWER_MARK), answer.text
        assert "ANAMA" in answer.text


async def test_more_results_pressed_on_the_other_replica(cluster: Cluster) -> None:
    """The question state behind the button lives in Redis: replica b pages an answer that
    replica a gave."""
    user = new_user()
    a, b = cluster.web
    await ask(cluster, user, QUESTION, to=a)
    [answer] = await replies(cluster, user)
    assert answer.text.startswith(ANSWER_MARK) and "1." in answer.text
    assert ["More results »"] in answer.buttons

    press = cluster.api.callback_update(private(user), user, answer, _more_button(answer))
    query_id = press["callback_query"]["id"]
    await cluster.balancer.deliver(press, to=b)
    [first, second] = await replies(cluster, user, 2)
    await cluster.api.wait_until(  # pressed: the button leaves the first page
        lambda: ["More results »"] not in first.buttons, WAIT, what="the first page edited"
    )

    assert cluster.api.callback_answers[query_id].get("text") is None  # not "expired"
    assert second.text.startswith(ANSWER_MARK) and "2." in second.text


def _more_button(message: FakeMessage) -> str:
    for row in message.inline_buttons:
        for button in row:
            if button["text"] == "More results »":
                return str(button["callback_data"])
    raise AssertionError(f"no More results button under {message.text!r}")


async def test_an_article_added_through_one_replica_is_found_through_the_other(
    cluster: Cluster,
) -> None:
    """/add on replica a; questions to replica b find it within seconds, and every process's
    vector index (the workers' too) holds its passages."""
    a, b = cluster.web
    page = cluster.feeds.serve("glacier.html", GLACIER_PAGE, content_type="text/html")
    before = await metric(b, "newsbot_index_passages")
    assert before is not None

    await ask(cluster, ADMIN, f"/add {page}", to=a)
    await cluster.api.wait_until(
        lambda: any("Added" in m.text for m in messages(cluster, ADMIN)), WAIT, what="Added"
    )

    found = False
    for _ in range(int(WAIT / 0.5)):  # each try from a new user: the rate limit drops none
        user = new_user()
        await ask(cluster, user, "How much length did the Quellbrunn glacier lose?", to=b)
        [answer] = await replies(cluster, user)
        if "Quellbrunn" in answer.text and answer.text.startswith(ANSWER_MARK):
            found = True
            break
        await asyncio.sleep(0.5)
    assert found, "replica b never found the article added through replica a"

    async def indexes() -> set[float | None]:
        return {await metric(p, "newsbot_index_passages") for p in [*cluster.web, *cluster.workers]}

    counts = await indexes()
    for _ in range(int(WAIT / 0.5)):
        if len(counts) == 1:
            break
        await asyncio.sleep(0.5)
        counts = await indexes()
    [passages] = counts
    assert passages is not None and passages > before


async def test_a_users_rate_limit_holds_across_replicas(cluster: Cluster) -> None:
    """RATE_LIMIT questions go through, alternating replicas; the next one, on the other
    replica, gets the flood notice, and one more nothing at all."""
    user = new_user()
    a, b = cluster.web
    for n in range(RATE_LIMIT):
        await ask(cluster, user, QUESTION, to=(a, b)[n % 2])
        await replies(cluster, user, n + 1)

    await ask(cluster, user, QUESTION, to=(a, b)[RATE_LIMIT % 2])
    await replies(cluster, user, RATE_LIMIT + 1)
    await ask(cluster, user, QUESTION, to=(a, b)[(RATE_LIMIT + 1) % 2])
    await settled(cluster)

    texts = [m.text for m in messages(cluster, user)]
    assert [t.startswith(ANSWER_MARK) for t in texts[:RATE_LIMIT]] == [True] * RATE_LIMIT
    assert len(texts) == RATE_LIMIT + 1
    assert texts[-1].startswith(FLOOD)


async def test_subscribers_get_alerts_from_the_workers(cluster: Cluster) -> None:
    """Users subscribe through either replica; a new story in the feed reaches each of them
    once, sent by a worker."""
    subscribers = [new_user() for _ in range(4)]
    for user in subscribers:
        await ask(cluster, user, "/subscribe")
        [reply] = await replies(cluster, user)
        assert "Subscribed: every new article" in reply.text
    # The workers poll the feed from start-up (its backlog: indexed, no alert)
    await cluster.api.wait_until(  # the second poll starts once the first is done
        lambda: len(cluster.feeds.statuses(FEED_PATH)) >= 2, WAIT, what="the first poll"
    )
    story = {"title": "Volcano erupts near the coast", "text": "Lava reached the sea. " * 30}
    cluster.feeds.serve(FEED_PATH, rss("Daily Test", [*BACKLOG, story]))

    for user in subscribers:
        await replies(cluster, user, 2)
    await settled(cluster)

    for user in subscribers:
        [_, alert] = messages(cluster, user)
        assert "Volcano erupts near the coast" in alert.text


async def test_a_replica_and_a_worker_killed_mid_run_lose_nothing(cluster: Cluster) -> None:
    """SIGKILL replica b and worker w2 while alerts are being sent and questions are being
    answered: every question is answered (one in flight at b is posted again to a, as
    Telegram retries an update its webhook did not acknowledge), every alert is delivered
    (w2's claims return after their lease), and the only repeats are what was in flight."""
    a, b = cluster.web
    w2 = cluster.workers[1]
    api = cluster.api
    chats = [FakeChat.private(FakeUser(id=900_000 + n, first_name="S")) for n in range(ALERTS)]
    for chat in chats:
        api.add_chat(chat)
        await cluster.store.chats.ensure(chat.id)
    await cluster.store.outbox.enqueue([delivery(chat.id, 7) for chat in chats])

    def alerts_sent() -> int:
        return sum(1 for chat in chats for m in api.sent_messages(chat.id))

    async def held_by_w2() -> list[OutboxRow]:
        """The alerts worker w2 has claimed and not marked sent."""
        rows = await cluster.store.outbox.rows()
        return [r for r in rows if r.state == "sending" and f":{w2.pid}:" in (r.claimed_by or "")]

    await api.wait_until(lambda: alerts_sent() >= ALERTS // 5, WAIT, what="a fifth sent")
    await eventually(held_by_w2, "worker w2 to take part in the broadcast")
    askers = [new_user() for _ in range(10)]
    questions = [
        asyncio.create_task(ask(cluster, user, QUESTION, to=(a, b)[n % 2]))
        for n, user in enumerate(askers)
    ]

    def b_answering() -> bool:
        """Replica b has shown "typing" to one of its askers and not answered them yet."""
        typing = {str(call.params["chat_id"]) for call in api.calls_of("sendChatAction")}
        return any(str(u.id) in typing and not messages(cluster, u) for u in askers[1::2])

    await api.wait_until(b_answering, WAIT, what="replica b in the middle of a question")
    b.kill()
    w2.kill()
    await asyncio.gather(b.process.wait(), w2.process.wait())
    held = await held_by_w2()  # before their lease passes
    sent_at_kill = alerts_sent()
    assert held, "worker w2 held no alerts at the kill"
    assert sent_at_kill < len(chats), "the broadcast ended before the kill"

    late = [new_user() for _ in range(4)]  # after the kill: the balancer sends them to a
    taken = await asyncio.gather(*questions, *(ask(cluster, user, QUESTION) for user in late))
    for user in [*askers, *late]:
        await replies(cluster, user)
    await api.wait_until(
        lambda: all(api.sent_messages(chat.id) for chat in chats), 60, what="every alert"
    )
    await settled(cluster, quiet=2.0)

    retried = {update for update, replica in cluster.balancer.failed if replica == "b"}
    asked = [*askers, *late]
    repeated_answers = sum(len(messages(cluster, user)) - 1 for user in asked)
    received = collections.Counter(
        m.text.split("\n")[0] for chat in chats for m in api.sent_messages(chat.id)
    )
    repeats = received["Story number 7"] - len(chats)
    print(  # shown with -s, or when an assertion fails
        f"at the kill: w2 held {len(held)} alerts ({sent_at_kill} of {len(chats)} sent), "
        f"{len(retried)} question(s) in flight at b; repeats: {repeats} alerts, "
        f"{repeated_answers} answers"
    )
    assert taken[len(askers) :] == ["a"] * len(late)
    assert retried  # b's questions in flight, posted again to a
    for user in asked:
        answers = messages(cluster, user)
        assert answers and all(m.text.startswith(ANSWER_MARK) for m in answers)
    assert repeated_answers <= len(retried)
    assert set(received) == {"Story number 7"}
    assert repeats <= min(len(held), ALERT_CONCURRENCY)
    assert set(await cluster.store.outbox.counts()) == {"sent"}  # none pending, none failed
