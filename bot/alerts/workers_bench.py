"""Benchmark: several ``python -m bot worker`` processes share one outbox on PostgreSQL.

    python -m bot bench alerts --postgres URL [--workers 2] [--alerts 10000] [--rate 100]
                               [--redis URL] [--no-kill] [--json]

A temporary database on the server of ``--postgres`` (dropped afterwards) gets ``--alerts``
alerts, two per chat (so chats are sent to one message at a time, ALERT_CHAT_INTERVAL
apart); ``--workers`` worker processes send them to a local Bot API stand-in that records
every sendMessage (no validation: it should cost the workers nothing). Unless ``--no-kill``,
one worker is killed with SIGKILL once a third is sent; the others take over its rows when
its lease (``--lease``) passes. Reported: messages/s (first to last send), duplicates (a
chat getting the same alert twice) against the rows the killed worker held at the kill, the
most sends in any one-second window against ALERT_RATE (with ``--redis`` the workers share
one pace; without, each paces itself), and each worker's share.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import json
import os
import signal
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from aiohttp import web
from psycopg import sql
from sqlalchemy import func, select

from bot.alerts.rendering import alert_payload
from bot.storage import BotStore, Delivery
from bot.storage.database import database_url
from bot.storage.schema import outbox

__all__ = ["main", "run"]

TOKEN = "123456:bench-TOKEN_abcdefghijklmnopqrstuvwxyz"
FIRST_CHAT = 7_000_000
ALERTS_PER_CHAT = 2


@dataclass
class Result:
    workers: int
    alerts: int
    rate: float
    shared_pace: bool  # REDIS_URL given: one pace for every worker
    concurrency: int
    seconds: float = 0.0  # first send to last
    msg_per_s: float = 0.0
    sends: int = 0
    duplicates: int = 0  # sends beyond the first of the same alert to the same chat
    held_at_kill: int | None = None  # rows the killed worker had claimed, not marked
    max_per_second: int = 0  # most sends in any one-second window
    per_worker: dict[str, int] = field(default_factory=dict)  # rows each worker marked sent
    lost: int = 0  # alerts never received

    def lines(self) -> list[str]:
        pace = "one pace in Redis" if self.shared_pace else "each worker paces itself"
        rows = [
            f"workers: {self.workers}; alerts: {self.alerts:,} ({ALERTS_PER_CHAT} per chat); "
            f"ALERT_RATE {self.rate:g} ({pace}); ALERT_CONCURRENCY {self.concurrency}",
            f"sent:               {self.sends:,} sends in {self.seconds:.1f} s = "
            f"{self.msg_per_s:.1f} msg/s",
            f"lost:               {self.lost}",
            f"duplicates:         {self.duplicates}"
            + (
                f" (the killed worker held {self.held_at_kill} rows claimed, not marked)"
                if self.held_at_kill is not None
                else ""
            ),
            f"busiest second:     {self.max_per_second} sends (ALERT_RATE {self.rate:g})",
            "marked sent by:     "
            + ", ".join(f"{name} {count:,}" for name, count in self.per_worker.items()),
        ]
        return rows


class RecordingBotAPI:
    """Answers getMe and sendMessage like the Bot API and records each send's time, chat
    and first line; any other method gets ``true``."""

    def __init__(self) -> None:
        self.sends: list[tuple[float, int, str]] = []
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._message_id = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"].lower()
        if method == "getme":
            me = {"id": 123456, "is_bot": True, "first_name": "Bench", "username": "bench_bot"}
            return web.json_response({"ok": True, "result": me})
        if method != "sendmessage":
            return web.json_response({"ok": True, "result": True})
        form = await request.post()
        chat_id, text = int(str(form["chat_id"])), str(form.get("text", ""))
        self.sends.append((time.monotonic(), chat_id, text.split("\n")[0]))
        self._message_id += 1
        message = {
            "message_id": self._message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "S"},
            "text": text,
        }
        return web.json_response({"ok": True, "result": message})


def _server_url(url: str, database: str) -> str:
    """The same server, another database."""
    return url.rsplit("/", 1)[0] + "/" + database


async def run(
    postgres: str,
    *,
    workers: int = 2,
    alerts: int = 10_000,
    rate: float = 100.0,
    concurrency: int = 4,
    lease: float = 5.0,
    redis: str | None = None,
    kill: bool = True,
    patience: float = 1800.0,
) -> Result:
    result = Result(workers, alerts, rate, redis is not None, concurrency)
    name = f"newsbot_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = _server_url(postgres, name)
        with tempfile.TemporaryDirectory(prefix="newsbot-bench-") as folder:
            await _run(result, url, Path(folder), lease, redis, kill, patience)
    finally:
        with psycopg.connect(postgres, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    return result


async def _run(
    result: Result,
    url: str,
    folder: Path,
    lease: float,
    redis: str | None,
    kill: bool,
    patience: float,
) -> None:
    store = BotStore.from_url(database_url(folder, url))
    chats = result.alerts // ALERTS_PER_CHAT
    await store.outbox.enqueue(
        [
            Delivery(FIRST_CHAT + c, 0, f"{n:016x}", None, _payload(n))
            for n in range(ALERTS_PER_CHAT)
            for c in range(chats)
        ]
    )
    total = chats * ALERTS_PER_CHAT
    api = RecordingBotAPI()
    await api.start()
    env = {
        **os.environ,
        "BOT_TOKEN": TOKEN,
        "BOT_API_URL": api.base_url,
        "DATABASE_URL": url,
        "ALERT_RATE": str(result.rate),
        "ALERT_CONCURRENCY": str(result.concurrency),
        "ALERT_CLAIM_LEASE": str(lease),
        "SAMPLES_DIR": str(folder / "no-samples"),
        "MODEL_CACHE_DIR": str(folder / "models"),
        "LOG_LEVEL": "WARNING",
        "FEEDS": "",
    }
    for unwanted in ("METRICS_PORT", "WEBHOOK_URL"):
        env.pop(unwanted, None)
    if redis:
        env.update(REDIS_URL=redis, REDIS_PREFIX=f"newsbot-bench-{uuid.uuid4().hex[:8]}:")
    else:
        env.pop("REDIS_URL", None)
    (folder / "no-samples").mkdir()
    processes = []
    try:
        for number in range(result.workers):
            data = folder / f"worker{number}"
            processes.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bot",
                    "worker",
                    env={**env, "DATA_DIR": str(data)},
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE,
                )
            )
        deadline = time.monotonic() + patience
        victim = processes[0] if kill and result.workers > 1 else None
        while True:
            sent = await store.database.scalar(
                select(func.count()).where(outbox.c.state == "sent")
            )
            if sent >= total:
                break
            if victim is not None and len(api.sends) >= total // 3:
                victim.send_signal(signal.SIGKILL)
                await victim.wait()
                result.held_at_kill = await store.database.scalar(
                    select(func.count()).where(
                        outbox.c.state == "sending",
                        outbox.c.claimed_by.like(f"%:{victim.pid}:%"),
                    )
                )
                victim = None
            for process in processes:
                if process.returncode not in (None, -signal.SIGKILL):
                    error = await process.stderr.read() if process.stderr else b""
                    raise RuntimeError(f"a worker stopped: {error.decode()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {sent} of {total} sent after {patience:g} s")
            await asyncio.sleep(0.25)
        owners = await store.database.rows(
            select(outbox.c.claimed_by, func.count())
            .where(outbox.c.state == "sent")
            .group_by(outbox.c.claimed_by)
        )
        pids = {str(p.pid): f"worker {n + 1}" for n, p in enumerate(processes)}
        result.per_worker = {
            pids.get(str(owner).split(":")[1], str(owner)): count for owner, count in owners
        }
    finally:
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
        await api.stop()
        await store.close()
    _tally(result, api.sends, total)


def _tally(result: Result, sends: list[tuple[float, int, str]], total: int) -> None:
    times = sorted(t for t, _, _ in sends)
    result.sends = len(sends)
    if times:
        result.seconds = times[-1] - times[0]
        result.msg_per_s = (len(times) - 1) / result.seconds if result.seconds else 0.0
        result.max_per_second = max(
            bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times)
        )
    received = collections.Counter((chat, line) for _, chat, line in sends)
    result.duplicates = sum(count - 1 for count in received.values())
    result.lost = total - len(received)


def _payload(n: int) -> dict[str, Any]:
    return alert_payload(
        article_id=f"{n:016x}",
        title=f"Story number {n}",
        url=f"https://news.example/{n}",
        outlet="Daily Bench",
        published=date(2024, 5, 1),
        quote="The volcano erupted on Monday morning, sending ash over the village.",
        topic="volcano",
        source="",
        sub_id=1,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot bench alerts",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--postgres", required=True, help="a PostgreSQL server (any database)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=100.0, help="ALERT_RATE (msg/s overall)")
    parser.add_argument("--concurrency", type=int, default=4, help="ALERT_CONCURRENCY")
    parser.add_argument("--lease", type=float, default=5.0, help="ALERT_CLAIM_LEASE (s)")
    parser.add_argument("--redis", help="REDIS_URL: the workers share one pace")
    parser.add_argument("--no-kill", action="store_true", help="kill no worker")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.alerts < ALERTS_PER_CHAT:
        parser.error("--workers must be at least 1 and --alerts at least 2")
    result = asyncio.run(
        run(
            args.postgres,
            workers=args.workers,
            alerts=args.alerts,
            rate=args.rate,
            concurrency=args.concurrency,
            lease=args.lease,
            redis=args.redis,
            kill=not args.no_kill,
        )
    )
    print(json.dumps(asdict(result)) if args.json else "\n".join(result.lines()))
    return 0 if result.lost == 0 else 1
