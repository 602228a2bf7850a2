"""``python -m bot bench replicas``: the webhook path with 1, 2, 3… replicas sharing one
PostgreSQL database and one Redis; what each costs, and how fast an added article
reaches the other replicas.

For each replica count N, N webhook replicas run as separate processes (``python -m bot
web``; ``python -m bot`` in webhook mode while ``web`` does not exist), each with its own
DATA_DIR and port, all with the same DATABASE_URL (a fresh database holding the
synthetic index of ``python -m bot bench``, copied in once, vectors and all), REDIS_URL
(a key prefix per N) and model cache. Telegram and the users are one child process
(`bot.scalebench_users`): the test suite's fake Bot API on 127.0.0.1, which also posts
every update, with its secret token header, to the replicas in turn, as a load balancer
would, and times each question from the update posted to the sendMessage answering it.

Time in PostgreSQL and Redis is measured inside each replica: the replicas start through
`replica`, which wraps psycopg's cursor ``execute``/``executemany`` and connection
``commit``/``rollback`` and redis-py's ``execute_command`` and pipeline ``execute`` (sync
and asyncio) with a clock, then runs ``python -m bot``'s own ``main``. The sums are read
(SIGUSR1 writes them to a file) before and after the questions; summed over concurrent
calls, wall time from a call's start to its result, so on a busy machine it includes
waiting for a CPU.

Then ``/add`` through one replica, found through another: an admin uploads a short
article to replica A; once A reports it added, questions about it go to replica B every
0.2 s (each from a new user, so the rate limit never drops one) until an answer quotes it,
and B's ``/metrics`` is read until ``newsbot_index_passages`` (the passages in its vector
index) grows. The question names a word only that article has, so B's keyword search in
PostgreSQL can find it before B's vector index holds it: the two times differ.

Everything runs on 127.0.0.1 and stops by itself; the replicas, the database and the
Redis keys are removed at the end (replicas also die with the bench). Run it from the
project root (it needs ``tests/``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bot.bench import (
    CORPUS,
    FIRST_USER,
    TOKEN,
    BenchOptions,
    bench_settings,
    prepare_index,
)
from bot.bench_users import ROOT, UsersProcess, question_plan, reply_figures

__all__ = ["AddResult", "RoundResult", "ScaleOptions", "ScaleResult", "replica", "run_scale"]

log = logging.getLogger(__name__)

POSTGRES = "postgresql://127.0.0.1:5432/postgres"
REDIS = "redis://127.0.0.1:6379/0"
SECRET = "scalebench-secret"
WEBHOOK_URL = "https://bench.invalid/webhook"  # registered with the fake API; never called
ADMIN_ID = 6_900_000  # the /add tries' admins: this id and the next ADMINS - 1, in turn,
ADMINS = 10  # so that no admin uploads more often than RATE_LIMIT allows
USERS_PER_ROUND = 1_000_000  # user ids of round r start at FIRST_USER + r * this
PROBE_INTERVAL = 0.2  # seconds between questions to replica B
COUNTERS_FILE = "scalebench-counters.json"
STOP_GRACE = 20.0  # seconds a replica gets to stop after SIGTERM
REPLICA_STARTUP = 600.0  # seconds the replicas of a round get to answer /healthz (busy machine)
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class ScaleOptions:
    replicas: tuple[int, ...] = (1, 2, 3)
    users: int = 200
    questions: int = 1  # per user, each sent when the previous one is answered
    alone: int = 20  # questions asked one at a time before the load
    passages: int = 20_000
    articles: int = 300
    timeout: float = 120.0  # seconds to wait for every reply of a round
    adds: int = 20  # /add tries (0: none), on the largest replica count of at least 2
    add_timeout: float = 30.0  # seconds a try waits for the other replica to find it
    corpus: Path = CORPUS
    cache: Path | None = None
    postgres: str = POSTGRES  # the server: a fresh database is made there and dropped
    redis: str = REDIS


@dataclass(frozen=True, slots=True)
class Phase:
    """One way of asking through the replicas, and what it cost them."""

    questions: int
    replied: int
    answered: int  # replies with hits
    not_found: int
    other: int
    dropped: int  # questions without a reply before the timeout
    duplicates: int
    refused: int  # updates a replica did not take (an HTTP status other than 200, no answer)
    seconds: float
    questions_per_s: float
    reply_p50_ms: float
    reply_p95_ms: float
    reply_max_ms: float
    postgres_ms_per_question: float  # summed over every replica, every call
    postgres_calls_per_question: float
    redis_ms_per_question: float
    redis_calls_per_question: float
    replica_cpu_ms_per_question: float  # every replica, every thread
    load_average: float  # the machine's 1-minute load average at the phase's end
    top_calls: list[str]  # the PostgreSQL statements and Redis commands that took longest


@dataclass(frozen=True, slots=True)
class RoundResult:
    replicas: int
    alone: Phase  # one question at a time: the cost of a question, no queueing
    load: Phase  # every user at once


@dataclass(frozen=True, slots=True)
class AddResult:
    replicas: int
    tries: int
    # From A's "Added" report to B's first answer quoting the article
    answered: int  # tries answered so before the timeout
    answered_p50_s: float
    answered_max_s: float
    # From A's report to B's vector index holding it (its /metrics gauge
    # newsbot_index_passages grown); None when B serves no such gauge
    in_vectors: int | None
    vectors_p50_s: float
    vectors_max_s: float
    upload_p50_s: float  # the upload posted to A -> A's "Added" report
    probes: int  # questions sent to B in all


@dataclass(slots=True)
class ScaleResult:
    role: str
    model: str
    users: int
    questions_per_user: int
    passages: int
    cores: int
    copy_seconds: float  # the index copied into PostgreSQL (not timed below)
    rounds: list[RoundResult] = field(default_factory=list)
    add: AddResult | None = None


async def run_scale(options: ScaleOptions) -> ScaleResult:
    """Build (or reuse) the index, copy it into a fresh database, start the users' side,
    then run every replica count in turn; everything started is stopped and removed."""
    from index.bench import load_corpus

    role = replica_role()
    corpus = await asyncio.to_thread(load_corpus, str(options.corpus))
    if not corpus:
        raise ValueError(f"no articles in {options.corpus}: pass --corpus")
    plan = question_plan(corpus, options.users, options.questions)
    # The index is built in SQLite, then copied
    settings = bench_settings({"database_url": None, "redis_url": None})
    bench = BenchOptions(passages=options.passages, articles=options.articles, cache=options.cache)
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bot-scalebench-")))
        settings, _ = await prepare_index(settings, bench, corpus, None, work / "index", say)
        folder = settings.data_dir
        model_cache = settings.model_cache_dir or folder / "models"
        async with _database(options.postgres) as database_url:
            say("copying the index into a fresh PostgreSQL database…")
            copy_seconds, model = await asyncio.to_thread(_copy_index, folder, database_url)
            users = await UsersProcess.start("import bot.scalebench_users as s; s.users_side()")
            try:
                result = ScaleResult(
                    role=role,
                    model=model,
                    users=options.users,
                    questions_per_user=options.questions,
                    passages=options.passages,
                    cores=os.cpu_count() or 1,
                    copy_seconds=copy_seconds,
                )
                add_at = max((n for n in options.replicas if n >= 2), default=0)
                for number, count in enumerate(options.replicas):
                    prefix = f"newsbot-scalebench-{uuid.uuid4().hex[:8]}-{count}:"
                    env = {
                        "DATABASE_URL": database_url,
                        "REDIS_URL": options.redis,
                        "REDIS_PREFIX": prefix,
                        "MODEL_CACHE_DIR": str(model_cache),
                        "BOT_API_URL": users.base_url,
                    }
                    say(f"starting {count} replica(s)…")
                    try:
                        async with _replicas(
                            role, count, env, folder, work / f"round-{number}"
                        ) as replicas:
                            say(f"asking through {count} replica(s)…")
                            result.rounds.append(
                                await _round(options, plan, users, replicas, number)
                            )
                            if count == add_at and options.adds and result.add is None:
                                say("/add through one replica, looked for on another…")
                                result.add = await _adds(options, users, replicas)
                    finally:  # once the replicas are gone: they write until they stop
                        await asyncio.to_thread(_forget_keys, options.redis, prefix)
            finally:
                await users.close()
    return result


def say(line: str) -> None:
    """Progress, on stderr (the figures go to stdout)."""
    print(line, file=sys.stderr, flush=True)


def replica_role() -> str:
    """``web`` when ``python -m bot`` has it, else ``run`` (a whole bot in webhook mode)."""
    from bot.__main__ import COMMANDS

    return "web" if "web" in COMMANDS else "run"


# ------------------------------------------------------------------- the index and stores


def _copy_index(folder: Path, url: str) -> tuple[float, str]:
    """Copy the SQLite index in ``folder`` into the database at ``url`` (ids kept, so the
    saved vector index still matches); the seconds it took and the vectors' model."""
    from index.database import SQLITE_FILE, database_url
    from index.store import Store
    from index.transfer import copy_articles

    started = time.perf_counter()
    source = Store(folder / SQLITE_FILE)
    target = Store(database_url(folder, url))
    try:
        copy_articles(source, target)
        model = source.get_meta("vectors_model") or "?"
    finally:
        source.close()
        target.close()
    return time.perf_counter() - started, model


@contextlib.asynccontextmanager
async def _database(server: str) -> Any:
    """A fresh database on ``server`` (its URL), dropped on exit, connections and all."""
    import psycopg
    from psycopg import sql

    name = f"newsbot_scalebench_{uuid.uuid4().hex[:12]}"
    try:
        async with await psycopg.AsyncConnection.connect(server, autocommit=True) as admin:
            await admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as error:
        raise ValueError(f"--postgres {_hide(server)}: {' '.join(str(error).split())}") from None
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        async with await psycopg.AsyncConnection.connect(server, autocommit=True) as admin:
            drop = "DROP DATABASE IF EXISTS {} WITH (FORCE)"
            await admin.execute(sql.SQL(drop).format(sql.Identifier(name)))


def _hide(url: str) -> str:
    return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)


def _forget_keys(url: str, prefix: str) -> None:
    """Delete every Redis key under ``prefix``."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        batch = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(batch), 1000):
            client.delete(*batch[start : start + 1000])
    finally:
        client.close()


# ------------------------------------------------------------------- the replicas


@dataclass
class _Replica:
    process: asyncio.subprocess.Process
    url: str  # where updates are posted
    data_dir: Path
    log_path: Path

    def counters(self) -> dict[str, Any]:
        path = self.data_dir / COUNTERS_FILE
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class _Replicas(list[_Replica]):
    async def snapshot(self) -> list[dict[str, Any]]:
        """Every replica's counters now (each writes them on SIGUSR1)."""
        for replica in self:
            (replica.data_dir / COUNTERS_FILE).unlink(missing_ok=True)
            replica.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 30.0
        while not all((r.data_dir / COUNTERS_FILE).exists() for r in self):
            if time.monotonic() > deadline:
                raise RuntimeError("a replica did not report its counters within 30 s")
            await asyncio.sleep(0.05)
        return [replica.counters() for replica in self]


@contextlib.asynccontextmanager
async def _replicas(
    role: str, count: int, env: dict[str, str], index_folder: Path, work: Path
) -> Any:
    """Start ``count`` replicas, wait until each answers /healthz, yield them; stop them."""
    started = _Replicas()
    try:
        for number in range(count):
            started.append(await _start_replica(role, number, env, index_folder, work))
        await _wait_ready(started)
        yield started
    finally:
        await _stop(started)


async def _start_replica(
    role: str, number: int, shared: dict[str, str], index_folder: Path, work: Path
) -> _Replica:
    data_dir = work / f"replica-{number}"
    await asyncio.to_thread(_copy_vectors, index_folder, data_dir)
    port = _free_port()
    env = {
        **os.environ,
        "LOG_LEVEL": "WARNING",
        **shared,
        "DATA_DIR": str(data_dir),
        "BOT_TOKEN": TOKEN,
        "WEBHOOK_URL": WEBHOOK_URL,
        "WEBHOOK_HOST": "127.0.0.1",
        "WEBHOOK_PORT": str(port),
        "WEBHOOK_SECRET": SECRET,
        "ADMIN_IDS": ",".join(str(ADMIN_ID + n) for n in range(ADMINS)),
        "SAMPLES_DIR": str(data_dir / "no-samples"),
        "FEEDS": "",
        "LOG_FORMAT": "text",
    }
    env.pop("METRICS_PORT", None)
    log_path = work / f"replica-{number}.log"
    with log_path.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import bot.scalebench as s; s.replica()",
            role,
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
    return _Replica(process, f"http://127.0.0.1:{port}/webhook", data_dir, log_path)


def _copy_vectors(index_folder: Path, data_dir: Path) -> None:
    """The saved vector index (and its metadata): it matches the copied database, so the
    replica loads it instead of rebuilding it from PostgreSQL."""
    data_dir.mkdir(parents=True)
    for path in index_folder.glob("passages.faiss*"):
        shutil.copy2(path, data_dir / path.name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _wait_ready(replicas: Sequence[_Replica]) -> None:
    """Until every replica answers ``GET /healthz``; a replica that exits fails the run."""
    import aiohttp

    deadline = time.monotonic() + REPLICA_STARTUP
    async with aiohttp.ClientSession() as session:
        for replica in replicas:
            health = replica.url.rsplit("/", 1)[0] + "/healthz"
            while True:
                if replica.process.returncode is not None:
                    raise RuntimeError(
                        f"a replica exited ({replica.process.returncode}) while starting:\n"
                        f"{replica.tail()}"
                    )
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(health) as response:
                        if response.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"a replica did not start in time:\n{replica.tail()}")
                await asyncio.sleep(0.2)


async def _stop(replicas: Sequence[_Replica]) -> None:
    """SIGTERM, then SIGKILL after `STOP_GRACE` seconds."""
    for replica in replicas:
        if replica.process.returncode is None:
            replica.process.terminate()
    for replica in replicas:
        try:
            await asyncio.wait_for(replica.process.wait(), STOP_GRACE)
        except TimeoutError:
            replica.process.kill()
            await replica.process.wait()


# ------------------------------------------------------------------- one round, the adds


async def _round(
    options: ScaleOptions,
    plan: list[list[str]],
    users: UsersProcess,
    replicas: _Replicas,
    number: int,
) -> RoundResult:
    """Questions one at a time, then every user at once, through the replicas in turn."""
    first_user = FIRST_USER + number * USERS_PER_ROUND
    alone = [[plan[u % len(plan)][0]] for u in range(options.alone)]
    command = {"targets": [r.url for r in replicas], "patience": options.timeout}
    return RoundResult(
        replicas=len(replicas),
        alone=await _phase(
            users,
            replicas,
            {**command, "plan": alone, "first_user": first_user, "one_at_a_time": True},
        ),
        load=await _phase(
            users,
            replicas,
            {**command, "plan": plan, "first_user": first_user + options.alone},
        ),
    )


async def _phase(users: UsersProcess, replicas: _Replicas, command: dict[str, Any]) -> Phase:
    """Ask as ``command`` says; the replies, and what the replicas spent meanwhile."""
    asked = sum(map(len, command["plan"]))
    before = await replicas.snapshot()
    tally = await users.call({"cmd": "load", **command}, command["patience"] + 60.0)
    after = await replicas.snapshot()
    cpu = sum(a["cpu_s"] - b["cpu_s"] for a, b in zip(after, before, strict=True))
    spent = _spent(after) - _spent(before)
    figures = reply_figures(tally, asked, tail=95)
    per = 1 / max(figures["replied"], 1)
    return Phase(
        **figures,
        refused=tally["refused"],
        postgres_ms_per_question=1000 * spent.seconds("postgres") * per,
        postgres_calls_per_question=spent.calls("postgres") * per,
        redis_ms_per_question=1000 * spent.seconds("redis") * per,
        redis_calls_per_question=spent.calls("redis") * per,
        replica_cpu_ms_per_question=1000 * cpu * per,
        load_average=os.getloadavg()[0],
        top_calls=spent.top(per),
    )


class _Spent(dict[tuple[str, str], tuple[float, int]]):
    """(kind, statement or command) -> (seconds, calls), summed over replicas."""

    def __sub__(self, other: _Spent) -> _Spent:
        return _Spent(
            {
                key: (s - other.get(key, (0.0, 0))[0], n - other.get(key, (0.0, 0))[1])
                for key, (s, n) in self.items()
            }
        )

    def seconds(self, kind: str) -> float:
        return sum(s for (k, _), (s, _) in self.items() if k == kind)

    def calls(self, kind: str) -> int:
        return sum(n for (k, _), (_, n) in self.items() if k == kind)

    def top(self, per: float, count: int = 6) -> list[str]:
        """The calls that took longest, as lines: ms and calls per question, what."""
        ranked = sorted(self.items(), key=lambda item: -item[1][0])[:count]
        return [
            f"{kind} {1000 * s * per:.2f} ms ({n * per:.2f} calls): {what}"
            for (kind, what), (s, n) in ranked
            if n
        ]


def _spent(snapshots: list[dict[str, Any]]) -> _Spent:
    total = _Spent()
    for snapshot in snapshots:
        for kind, what, seconds, calls in snapshot["spent"]:
            s, n = total.get((kind, what), (0.0, 0))
            total[kind, what] = (s + seconds, n + calls)
    return total


async def _adds(options: ScaleOptions, users: UsersProcess, replicas: _Replicas) -> AddResult:
    """``options.adds`` uploads, each to replica k and looked for on replica k + 1."""
    answered: list[float] = []
    vectors: list[float] = []
    uploads: list[float] = []
    probes, watched = 0, False
    for attempt in range(options.adds):
        ask_at = replicas[(attempt + 1) % len(replicas)].url
        outcome = await users.call(
            {
                "cmd": "add",
                "upload_to": replicas[attempt % len(replicas)].url,
                "ask_at": ask_at,
                "metrics_at": ask_at.rsplit("/", 1)[0] + "/metrics",
                "attempt": attempt,
                "patience": options.add_timeout,
            },
            2 * options.add_timeout + 60.0,
        )
        probes += outcome["probes"]
        watched = watched or outcome["vectors_seen"]
        for seconds, kept in (
            (outcome["report_s"], uploads),
            (outcome["answered_s"], answered),
            (outcome["vectors_s"], vectors),
        ):
            if seconds is not None:
                kept.append(seconds)
        if outcome["why"]:
            log.warning("/add try %d: %s", attempt + 1, outcome["why"])
    nan = float("nan")
    return AddResult(
        replicas=len(replicas),
        tries=options.adds,
        answered=len(answered),
        answered_p50_s=statistics.median(answered) if answered else nan,
        answered_max_s=max(answered) if answered else nan,
        in_vectors=len(vectors) if watched else None,
        vectors_p50_s=statistics.median(vectors) if vectors else nan,
        vectors_max_s=max(vectors) if vectors else nan,
        upload_p50_s=statistics.median(uploads) if uploads else nan,
        probes=probes,
    )


# ------------------------------------------------------------------- inside a replica


class _Timers:
    """Seconds and calls spent in PostgreSQL (psycopg) and Redis (redis-py), summed per
    statement (its first words) or command."""

    def __init__(self) -> None:
        self.spent: dict[tuple[str, str], list[float]] = {}  # (kind, what) -> [seconds, calls]
        self._lock = threading.Lock()

    def add(self, kind: str, what: str, seconds: float) -> None:
        with self._lock:
            sums = self.spent.setdefault((kind, what), [0.0, 0])
            sums[0] += seconds
            sums[1] += 1

    def install(self) -> None:
        """Wrap the drivers' calls that reach the server (class attributes, so every
        connection, pooled or not, made before or after, is timed)."""
        import psycopg

        self._wrap(psycopg.Cursor, ("execute", "executemany"), "postgres")
        self._wrap(psycopg.Connection, ("commit", "rollback"), "postgres")
        self._wrap(psycopg.AsyncCursor, ("execute", "executemany"), "postgres", awaited=True)
        self._wrap(psycopg.AsyncConnection, ("commit", "rollback"), "postgres", awaited=True)
        self._wrap_psycopg_connect(psycopg.Connection, awaited=False)
        self._wrap_psycopg_connect(psycopg.AsyncConnection, awaited=True)
        try:
            import redis.asyncio.client as async_redis
            import redis.client as sync_redis
        except ImportError:  # nothing to time
            return
        self._wrap(sync_redis.Redis, ("execute_command",), "redis")
        self._wrap(sync_redis.Pipeline, ("execute",), "redis")
        self._wrap(async_redis.Redis, ("execute_command",), "redis", awaited=True)
        self._wrap(async_redis.Pipeline, ("execute",), "redis", awaited=True)
        self._wrap_redis_connect()

    def _wrap_psycopg_connect(self, owner: type, awaited: bool) -> None:
        """New connections (a pool grows, or replaces one it dropped) among the calls,
        so their count and cost show."""
        original = owner.__dict__["connect"].__func__
        timed = self._timed_async if awaited else self._timed
        # owner is psycopg.Connection or AsyncConnection, typed as any class here
        owner.connect = classmethod(timed(original, "postgres", "connect"))  # type: ignore[attr-defined]

    def _wrap_redis_connect(self) -> None:
        """redis-py calls ``connect`` before each command; only real connections count."""
        from redis.asyncio.connection import AbstractConnection

        original = AbstractConnection.connect
        timed = self._timed_async(original, "redis", "connect")

        async def connect(connection: Any) -> None:
            if connection.is_connected:
                return
            await timed(connection)

        AbstractConnection.connect = connect  # type: ignore[method-assign]

    def _wrap(self, owner: type, names: Sequence[str], kind: str, *, awaited: bool = False) -> None:
        for name in names:
            original = owner.__dict__.get(name)
            if original is not None:
                timed = self._timed_async if awaited else self._timed
                setattr(owner, name, timed(original, kind, name))

    @staticmethod
    def _what(name: str, args: tuple[Any, ...]) -> str:
        """The statement's first words, the Redis command, or the method's name."""
        if name in ("execute", "executemany", "execute_command") and len(args) > 1:
            statement = args[1]
            if isinstance(statement, bytes):
                statement = statement.decode(errors="replace")
            return " ".join(str(statement).split())[:60]
        return name

    def _timed(self, original: Callable[..., Any], kind: str, name: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.add(kind, self._what(name, args), time.perf_counter() - started)

        return timed

    def _timed_async(
        self, original: Callable[..., Awaitable[Any]], kind: str, name: str
    ) -> Callable[..., Awaitable[Any]]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                self.add(kind, self._what(name, args), time.perf_counter() - started)

        return timed

    def dump(self, path: Path) -> None:
        """The sums and the process's CPU time so far, written atomically (no lock: this
        runs in a signal handler, which may interrupt a thread holding it)."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        data = {
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "spent": [[kind, what, *sums] for (kind, what), sums in dict(self.spent).items()],
        }
        aside = path.with_suffix(".tmp")
        aside.write_text(json.dumps(data))
        os.replace(aside, path)


def replica() -> None:
    """A replica's entry: ``python -m bot`` with the role in ``sys.argv``, its PostgreSQL
    and Redis calls timed, the sums written to DATA_DIR on SIGUSR1; it dies with the bench."""
    die_with_parent()
    timers = _Timers()
    timers.install()
    path = Path(os.environ["DATA_DIR"]) / COUNTERS_FILE
    signal.signal(signal.SIGUSR1, lambda *_: timers.dump(path))
    from bot.__main__ import main

    sys.exit(main(sys.argv[1:]))


def die_with_parent() -> None:
    """Linux: ask for SIGTERM when the parent dies; exit now if it already has."""
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        sys.exit(1)


# ------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bot bench replicas``: parse, run, print (or ``--json``)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m bot bench replicas",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = ScaleOptions()
    parser.add_argument(
        "--replicas",
        default=",".join(map(str, defaults.replicas)),
        help="replica counts to measure in turn, comma-separated (default %(default)s)",
    )
    parser.add_argument("--users", type=int, default=defaults.users, help="users asking at once")
    parser.add_argument(
        "--questions", type=int, default=defaults.questions, help="questions per user (in turn)"
    )
    parser.add_argument(
        "--alone",
        type=int,
        default=defaults.alone,
        help="questions asked one at a time first (the cost of a question without queueing)",
    )
    parser.add_argument(
        "--passages", type=int, default=defaults.passages, help="passages in the index"
    )
    parser.add_argument(
        "--articles", type=int, default=defaults.articles, help="real BBC articles embedded"
    )
    parser.add_argument(
        "--timeout", type=float, default=defaults.timeout, help="seconds to wait for replies"
    )
    parser.add_argument(
        "--adds",
        type=int,
        default=defaults.adds,
        help="/add tries, on the largest replica count of at least 2 (0: none)",
    )
    parser.add_argument("--corpus", type=Path, default=defaults.corpus, help="the BBC corpus")
    parser.add_argument(
        "--cache",
        type=Path,
        metavar="DIR",
        help="keep the built index under DIR (shared with `python -m bot bench --cache`)",
    )
    parser.add_argument(
        "--postgres",
        default=defaults.postgres,
        metavar="URL",
        help="the PostgreSQL server; a fresh database is made there and dropped "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--redis", default=defaults.redis, metavar="URL", help="Redis (default %(default)s)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        counts = tuple(int(part) for part in args.replicas.split(",") if part.strip())
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        print("error: --replicas takes counts like 1,2,3", file=sys.stderr)
        return 2
    if args.users < 1 or args.alone < 1:
        print("error: --users and --alone must be at least 1", file=sys.stderr)
        return 2
    if not 1 <= args.questions <= 6:
        print("error: --questions must be 1 to 6 (RATE_LIMIT's default)", file=sys.stderr)
        return 2
    for url in (args.postgres, args.redis):
        if not re.match(r"^[a-z+]+://(?:[^@/]*@)?(127\.0\.0\.1|localhost)[:/]", url):
            print(f"error: {_hide(url)}: the bench targets 127.0.0.1 only", file=sys.stderr)
            return 2
    options = ScaleOptions(
        replicas=counts,
        users=args.users,
        questions=args.questions,
        alone=args.alone,
        passages=args.passages,
        articles=args.articles,
        timeout=args.timeout,
        adds=args.adds,
        corpus=args.corpus,
        cache=args.cache,
        postgres=args.postgres,
        redis=args.redis,
    )
    signal.signal(signal.SIGTERM, _interrupt)  # cleans up as Ctrl-C does
    try:
        result = asyncio.run(run_scale(options))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: replicas stopped, database and Redis keys removed", file=sys.stderr)
        return 130
    print(json.dumps(asdict(result)) if args.json else report(result))
    phases = [phase for r in result.rounds for phase in (r.alone, r.load)]
    clean = all(f.dropped == 0 and f.duplicates == 0 for f in phases)
    add = result.add
    found = add is None or (add.answered == add.tries and add.in_vectors in (None, add.tries))
    return 0 if clean and found else 1


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def report(result: ScaleResult) -> str:
    """The figures as two small tables and a few lines."""
    first = result.rounds[0] if result.rounds else None
    lines = [
        f"{result.passages:,} passages in PostgreSQL (copied in {result.copy_seconds:.1f} s), "
        f"model {result.model}; replicas run `python -m bot {result.role}`, updates posted "
        f"to them in turn; {result.cores} CPU cores",
    ]
    for title, phase in (
        (f"{first.alone.questions if first else 0} questions, one at a time", "alone"),
        (f"{result.users} users x {result.questions_per_user} question(s) at once", "load"),
    ):
        lines += [
            "",
            title,
            "replicas   q/s  p50 ms  p95 ms  max ms    replied  dropped  dup  "
            "PG ms/q (calls)  Redis ms/q (calls)  CPU ms/q  load",
        ]
        for r in result.rounds:
            f = getattr(r, phase)
            lines.append(
                f"{r.replicas:>8}  {f.questions_per_s:4.1f}  {f.reply_p50_ms:6.0f}  "
                f"{f.reply_p95_ms:6.0f}  {f.reply_max_ms:6.0f}  {f.replied:>4}/{f.questions:<4}"
                f"{f.dropped:>7}  {f.duplicates:>3}  "
                f"{f.postgres_ms_per_question:7.1f} ({f.postgres_calls_per_question:4.1f})  "
                f"{f.redis_ms_per_question:9.2f} ({f.redis_calls_per_question:4.1f})  "
                f"{f.replica_cpu_ms_per_question:8.0f}  {f.load_average:4.1f}"
            )
    lines += [
        "",
        "latency: update posted -> sendMessage received; PG and Redis: wall time of their "
        "calls (until the caller resumes), summed over every replica, per question; CPU: "
        "every replica's process",
    ]
    for r in result.rounds:
        for phase in ("alone", "load"):
            lines.append(f"longest calls per question, {r.replicas} replica(s), {phase}:")
            lines += [f"  {line}" for line in getattr(r, phase).top_calls]
    if result.add is not None:
        a = result.add
        vectors = (
            "no newsbot_index_passages gauge on B's /metrics"
            if a.in_vectors is None
            else f"{a.in_vectors}/{a.tries}, p50 {a.vectors_p50_s:.2f} s, "
            f"max {a.vectors_max_s:.2f} s"
        )
        lines += [
            f"/add on replica A -> found on replica B ({a.replicas} replicas, {a.tries} tries, "
            f'from A\'s "Added" report):',
            f"  B answers quoting it   {a.answered}/{a.tries}, p50 {a.answered_p50_s:.2f} s, "
            f"max {a.answered_max_s:.2f} s (B asked every {PROBE_INTERVAL} s, {a.probes} "
            "questions in all)",
            f"  B's vector index has it  {vectors}",
            f"  upload posted -> A's report  p50 {a.upload_p50_s:.2f} s",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
