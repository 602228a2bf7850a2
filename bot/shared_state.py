"""State that replicas share, kept in Redis when REDIS_URL is set: the question states behind
answer buttons (a press may reach another replica), the per-user rate limit (counted across
replicas) and the global alert send pace (Telegram's limit is per bot, not per process).

Keys, all under REDIS_PREFIX (``newsbot:`` by default):

- ``q:<token>``: a question and its hits' articles (JSON); expires QUERY_TTL after the answer.
- ``rl:<scope>:<user>``: the user's event times in the rate window (a sorted set), and
  ``rl:<scope>:<user>:flood``, present while a flood the user was told about goes on; both
  expire RATE_WINDOW after the last event.
- ``pace``: when the next alert may be sent (microseconds, Redis's clock).

Rate limit and pace are each one Lua script (atomic, one round trip) reading Redis's own
clock, so replicas' clocks need not agree.

Redis unreachable at start-up: `SharedStateError`, one line naming REDIS_URL (its password
never shown). An outage later crashes nothing; each kind is logged at most once a minute:
the rate limit lets events through, an answer whose state was not saved still goes out (its
buttons answer "expired"), a press whose state cannot be read answers "expired", and the
alert pace falls back to ALERT_RATE in this process alone.

``python -m bot.shared_state bench`` measures the time a question spends in Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from bot.alerts.sender import Pace
from bot.query_state import MemoryQueryStore, QueryState, new_token
from bot.rate_limit import MemoryRateLimiter, RateLimiter, Verdict

if TYPE_CHECKING:
    from bot.settings import BotSettings

__all__ = [
    "RedisPace",
    "RedisQueryStore",
    "RedisRateLimiter",
    "SharedState",
    "SharedStateError",
]

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 16  # per process
TIMEOUT = 2.0  # seconds to connect or to answer: an outage delays a handler this long at most
OUTAGE_LOG_INTERVAL = 60.0  # seconds between two warnings about the same outage
REDIS_ERRORS = (RedisError, OSError)

# KEYS: the user's events, the flood marker. ARGV: limit, window (µs), a unique member.
# Returns 0: allowed (counted); 1: dropped, flood already noticed; 2: dropped, new flood.
RATE_LIMIT_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[2])
local window_ms = math.floor(window / 1000) + 1
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - window))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], string.format('%.0f', now), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window_ms)
  return 0
end
if redis.call('SET', KEYS[2], '1', 'PX', window_ms, 'GET') then
  return 1
end
return 2
"""

# KEYS: the pace key. ARGV: interval (µs). Returns 0 when a message may go now (the next
# one may go an interval later), else the microseconds to wait before asking again.
PACE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ready = tonumber(redis.call('GET', KEYS[1]) or '0')
if ready > now then
  return ready - now
end
local interval = tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.0f', now + interval),
           'PX', math.floor(interval / 1000) + 1000)
return 0
"""

# KEYS: the pace key. ARGV: the pause (µs). Holds every sender until the pause is over.
PAUSE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local pause = tonumber(ARGV[1])
local ready = tonumber(redis.call('GET', KEYS[1]) or '0')
if now + pause > ready then
  redis.call('SET', KEYS[1], string.format('%.0f', now + pause),
             'PX', math.floor(pause / 1000) + 1000)
end
return 0
"""


class SharedStateError(Exception):
    """Redis cannot be used: a one-line reason naming REDIS_URL (never its password)."""


class SharedState:
    """One Redis client per process and the keys under one prefix; makes the stores."""

    def __init__(self, client: Redis, prefix: str, where: str = "Redis") -> None:
        """``where``: the server, as logs may show it (no password)."""
        self.redis = client
        self.prefix = prefix
        self.where = where
        self._rate_script = client.register_script(RATE_LIMIT_LUA)
        self._pace_script = client.register_script(PACE_LUA)
        self._pause_script = client.register_script(PAUSE_LUA)
        self._outages: dict[str, float] = {}

    @classmethod
    def from_url(cls, url: str, prefix: str) -> SharedState:
        """A client for ``url`` (connecting lazily); a malformed URL raises
        `SharedStateError`."""
        where = safe_url(url)
        try:
            # A bounded pool: a burst of updates waits for a connection instead of opening
            # one each (200 questions at once opened 60-95 connections in bench replicas)
            pool = BlockingConnectionPool.from_url(
                url,
                max_connections=MAX_CONNECTIONS,
                timeout=TIMEOUT,
                socket_timeout=TIMEOUT,
                socket_connect_timeout=TIMEOUT,
                # one immediate retry (a pooled connection Redis has closed), not redis-py's
                # ten with backoff: during an outage each message would wait seconds
                retry=Retry(NoBackoff(), 1),
            )
            client = Redis.from_pool(pool)  # closing the client closes the pool
        except (ValueError, TypeError) as error:
            reason = _one_line(str(error)).replace(url, where)
            raise SharedStateError(
                f"REDIS_URL {where} is not a Redis URL ({reason}): use redis://host:6379/0"
            ) from None
        return cls(client, prefix, where)

    @classmethod
    def from_settings(cls, settings: BotSettings) -> SharedState | None:
        """The shared state of REDIS_URL and REDIS_PREFIX; None when REDIS_URL is unset."""
        if settings.redis_url is None:
            return None
        return cls.from_url(settings.redis_url.get_secret_value(), settings.redis_prefix)

    def key(self, *parts: str) -> str:
        """A key under the prefix: ``key("q", token)`` is ``<prefix>q:<token>``."""
        return self.prefix + ":".join(parts)

    async def ping(self) -> bool:
        """True when Redis answers (for readiness checks); never raises."""
        try:
            return bool(await self.redis.ping())
        except REDIS_ERRORS:
            return False

    async def check(self) -> None:
        """Ping Redis; unreachable (or refusing us) raises `SharedStateError`."""
        try:
            await self.redis.ping()
        except REDIS_ERRORS as error:
            raise SharedStateError(
                f"cannot reach Redis at REDIS_URL {self.where} ({self._reason(error)}): "
                "start Redis or fix REDIS_URL"
            ) from None

    async def close(self) -> None:
        """Close the client's connections."""
        await self.redis.aclose()

    async def clear(self) -> int:
        """Delete every key under the prefix (tests and benchmarks); return how many."""
        keys = [key async for key in self.redis.scan_iter(_glob_escape(self.prefix) + "*", 1000)]
        deleted = 0
        for start in range(0, len(keys), 1000):
            deleted += await self.redis.delete(*keys[start : start + 1000])
        return deleted

    def queries(self, ttl: int) -> RedisQueryStore:
        """Question states that expire ``ttl`` seconds after the answer."""
        return RedisQueryStore(self, ttl)

    def rate_limiter(self, scope: str, limit: int, window: float) -> RedisRateLimiter:
        """``limit`` events per user per ``window`` seconds, counted apart for each ``scope``."""
        return RedisRateLimiter(self, scope, limit, window)

    def pace(self, rate: float) -> RedisPace:
        """At most ``rate`` events per second across every process (0: no limit)."""
        return RedisPace(self, rate)

    def outage(self, what: str, error: BaseException) -> None:
        """Log that ``what`` cannot use Redis, at most once a minute for each ``what``."""
        now = time.monotonic()
        if now - self._outages.get(what, -OUTAGE_LOG_INTERVAL) >= OUTAGE_LOG_INTERVAL:
            self._outages[what] = now
            log.warning(
                "Redis at %s is unavailable (%s): %s", self.where, self._reason(error), what
            )

    def _reason(self, error: BaseException) -> str:
        return _one_line(str(error) or type(error).__name__)


class RedisQueryStore:
    """Question states in Redis, readable by every replica; Redis expires them."""

    def __init__(self, shared: SharedState, ttl: int) -> None:
        self.shared = shared
        self.ttl = ttl

    async def add(self, state: QueryState) -> str:
        """Store a new question's state under a fresh token; return the token. If Redis is
        down the token is returned unsaved: the answer still goes out, its buttons expire."""
        data = _dump(state)
        token = new_token()
        try:
            while not await self.shared.redis.set(
                self.shared.key("q", token), data, ex=self.ttl, nx=True
            ):
                token = new_token()  # taken (one chance in 2**48 per stored state)
        except REDIS_ERRORS as error:
            self.shared.outage("answer buttons will say they expired", error)
        return token

    async def get(self, token: str) -> QueryState | None:
        """The state of ``token``; None when unknown, expired or unreadable."""
        try:
            data = await self.shared.redis.get(self.shared.key("q", token))
        except REDIS_ERRORS as error:
            self.shared.outage("answer buttons say they expired", error)
            return None
        return _load(data) if data is not None else None

    async def save(self, token: str, state: QueryState) -> None:
        """Store ``state`` again, keeping its expiry; a state that expired stays gone."""
        try:
            await self.shared.redis.set(
                self.shared.key("q", token), _dump(state), xx=True, keepttl=True
            )
        except REDIS_ERRORS as error:
            self.shared.outage("answer buttons will say they expired", error)


def _dump(state: QueryState) -> bytes:
    return json.dumps({"q": state.question, "ids": state.article_ids}).encode()


def _load(data: bytes | str) -> QueryState | None:
    try:
        value = json.loads(data)
        return QueryState(str(value["q"]), [str(i) for i in value["ids"]])
    except (ValueError, KeyError, TypeError):  # not written by this code: treat as expired
        return None


_VERDICTS = {0: Verdict.ALLOW, 1: Verdict.DROP, 2: Verdict.DROP_NEW_FLOOD}


class RedisRateLimiter:
    """A sliding window per user in Redis (a sorted set of event times), counted across
    every replica. If Redis is down, events are let through (fail open)."""

    def __init__(self, shared: SharedState, scope: str, limit: int, window: float) -> None:
        self.shared = shared
        self.scope = scope
        self.limit = limit
        self.window = window
        self._window_us = max(round(window * 1_000_000), 1)

    async def hit(self, user_id: int) -> Verdict:
        key = self.shared.key("rl", self.scope, str(user_id))
        try:
            code = await self.shared._rate_script(
                keys=[key, f"{key}:flood"],
                args=[self.limit, self._window_us, secrets.token_hex(8)],
            )
        except REDIS_ERRORS as error:
            self.shared.outage("the rate limit lets every message through", error)
            return Verdict.ALLOW
        return _VERDICTS[int(code)]


class RedisPace(Pace):
    """`Pace` shared by every process: events at least ``1 / rate`` seconds apart in all of
    them together, and a pause (a 429's ``retry_after``) holds them all. If Redis is down,
    this process paces itself alone."""

    def __init__(self, shared: SharedState, rate: float) -> None:
        super().__init__(rate)
        self.shared = shared
        self.key = shared.key("pace")
        self._interval_us = round(self.interval * 1_000_000)
        self._pausing: set[asyncio.Task[None]] = set()

    def pause(self, seconds: float) -> None:
        """Hold this process at once and every other one as soon as Redis hears of it
        (`pause_all` in the background)."""
        super().pause(seconds)
        task = asyncio.ensure_future(self.pause_all(seconds))
        self._pausing.add(task)
        task.add_done_callback(self._pausing.discard)

    async def pause_all(self, seconds: float) -> None:
        """Hold every process sharing the pace for ``seconds``."""
        try:
            await self.shared._pause_script(keys=[self.key], args=[round(seconds * 1_000_000)])
        except REDIS_ERRORS as error:
            self.shared.outage("alerts are paced by this process alone", error)

    async def take(self) -> float:
        """Take the next slot if its time has come and return 0, else return the seconds
        to wait before trying again. Raises Redis's errors."""
        delay = await self.shared._pace_script(keys=[self.key], args=[self._interval_us])
        return int(delay) / 1_000_000

    async def wait(self) -> None:
        """Return when this process may send the next message."""
        while True:
            held = self._paused_until - self._clock()  # a 429 seen here holds us at once
            if held > 0:
                await asyncio.sleep(held)
                continue
            try:
                delay = await self.take()
            except REDIS_ERRORS as error:
                self.shared.outage("alerts are paced by this process alone", error)
                await super().wait()
                return
            if delay <= 0:
                return
            await asyncio.sleep(delay)


def safe_url(url: str) -> str:
    """``url`` without its password (and without the query string)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unparsable URL)"
    user = f"{parts.username}@" if parts.username else ""
    if parts.password is not None:
        user = f"{parts.username or ''}:***@"
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


# -- benchmark ------------------------------------------------------------------------------


async def bench(url: str, questions: int = 2000, concurrency: int = 64) -> dict[str, Any]:
    """What a question and a button press cost in shared state, Redis against memory, in
    one run. A question: the rate-limit check and storing its state; a press: the check,
    reading the state and storing it again ("More results"). Returns microseconds per
    operation, one at a time (wall time mean, p50 and p99; this process's CPU time mean)
    and operations per second with ``concurrency`` in flight, from one process."""
    prefix = f"newsbot-bench:{secrets.token_hex(4)}:"
    shared = SharedState.from_url(url, prefix)
    try:
        await shared.check()
        redis_side = await _bench_side(
            shared.rate_limiter("chat", 10**9, 60), shared.queries(600), questions, concurrency
        )
        memory_side = await _bench_side(
            MemoryRateLimiter(10**9, 60),
            MemoryQueryStore(600, capacity=4 * questions),
            questions,
            concurrency,
        )
    finally:
        with contextlib.suppress(*REDIS_ERRORS):
            await shared.clear()
        await shared.close()
    return {
        "redis": shared.where,
        "questions": questions,
        "concurrency": concurrency,
        "backends": {"redis": redis_side, "memory": memory_side},
    }


async def _bench_side(
    limiter: RateLimiter, queries: Any, questions: int, concurrency: int
) -> dict[str, Any]:
    tokens: list[str] = []

    async def question(n: int) -> None:
        await limiter.hit(n)
        tokens.append(await queries.add(QueryState(f"question {n}", ["a1", "a2", "a3"])))

    async def press(n: int) -> None:
        await limiter.hit(n)
        token = tokens[n % len(tokens)]
        state = await queries.get(token)
        assert state is not None, "a stored state was not found"
        state.article_ids += ["a4", "a5", "a6"]
        await queries.save(token, state)

    result: dict[str, Any] = {}
    for name, step in (("question", question), ("press", press)):
        await step(0)  # warm up: connection, script load
        result[name] = {
            **await _sequential(step, questions),
            "per_second": await _throughput(step, questions, concurrency),
        }
    return result


async def _sequential(step: Callable[[int], Awaitable[None]], count: int) -> dict[str, float]:
    times = []
    cpu = time.process_time()
    for n in range(count):
        start = time.perf_counter()
        await step(n)
        times.append((time.perf_counter() - start) * 1e6)
    cpu = time.process_time() - cpu
    times.sort()
    return {
        "cpu_us": round(cpu / count * 1e6, 1),
        "mean_us": round(statistics.fmean(times), 1),
        "p50_us": round(times[len(times) // 2], 1),
        "p99_us": round(times[int(len(times) * 0.99)], 1),
    }


async def _throughput(
    step: Callable[[int], Awaitable[None]], count: int, concurrency: int
) -> float:
    numbers = iter(range(count))

    async def worker() -> None:
        for n in numbers:
            await step(n)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return round(count / (time.perf_counter() - start))


def main(argv: list[str] | None = None) -> int:
    """``python -m bot.shared_state bench``: print the figures (or JSON)."""
    args = argparse.ArgumentParser(
        prog="python -m bot.shared_state",
        description="bench: the time a question and a button press spend in shared state "
        "(rate limit + question state), Redis against memory, in one run. Keys go under a "
        "fresh prefix and are deleted afterwards.",
    )
    args.add_argument("command", choices=["bench"])
    args.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="default: REDIS_URL, else redis://127.0.0.1:6379/0",
    )
    args.add_argument("--questions", type=int, default=2000, help="operations per measure")
    args.add_argument("--concurrency", type=int, default=64, help="in flight, for the rate")
    args.add_argument("--json", action="store_true", help="print JSON")
    options = args.parse_args(argv)
    try:
        figures = asyncio.run(bench(options.redis_url, options.questions, options.concurrency))
    except SharedStateError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if options.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(
        f"{figures['questions']} operations each, Redis at {figures['redis']}, "
        f"{figures['concurrency']} in flight for the rate"
    )
    for backend, side in figures["backends"].items():
        for name, row in side.items():
            print(
                f"{backend:>6} {name:<8} mean {row['mean_us']:7.1f} µs  p50 {row['p50_us']:7.1f}"
                f" µs  p99 {row['p99_us']:7.1f} µs  CPU {row['cpu_us']:6.1f} µs"
                f"  {row['per_second']:>7} /s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
