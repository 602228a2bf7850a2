"""A scaled deployment in separate OS processes, for end-to-end tests: ``python -m bot web``
replicas and ``python -m bot worker`` processes sharing one PostgreSQL database and one
Redis, with the test playing Telegram: the fake Bot API (`tests.fake_telegram`) answers the
processes' calls, and `LoadBalancer` posts each update to one replica's webhook with the
secret token header, as Telegram and a reverse proxy would.

    web = await start_bot_process("a", "web", env, work)
    await wait_ready([web])
    balancer = LoadBalancer(api, [web, other])
    await balancer.deliver(api.message_update(chat, user, "question"))

Each process writes its log to a file in its folder (`BotProcess.log_tail` shows the end in
failure messages); `BotProcess.stop` and `BotProcess.kill` end it, and every process dies
with the test process should that be killed itself (Linux).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import aiohttp

from bot.webhook import SECRET_HEADER
from tests.fake_telegram import FakeBotAPI

__all__ = [
    "WEBHOOK_PATH",
    "WEBHOOK_SECRET",
    "BotProcess",
    "LoadBalancer",
    "free_port",
    "start_bot_process",
    "wait_ready",
]

WEBHOOK_PATH = "/telegram/hook"
WEBHOOK_SECRET = "replicas-test-secret"
PR_SET_PDEATHSIG = 1

Role = Literal["web", "worker"]
JsonDict = dict[str, Any]


def free_port() -> int:
    """A TCP port of 127.0.0.1 free at this moment."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class BotProcess:
    """One ``python -m bot web`` or ``worker`` process. ``port``: a replica's WEBHOOK_PORT,
    a worker's METRICS_PORT (each serves ``/readyz`` and ``/metrics`` there)."""

    name: str
    role: Role
    port: int
    folder: Path
    process: asyncio.subprocess.Process
    log: IO[bytes] = field(repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def webhook(self) -> str:
        return self.url(WEBHOOK_PATH)

    def log_tail(self, lines: int = 40) -> str:
        """The end of the process's log, for failure messages."""
        try:
            text = (self.folder / "bot.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return f"--- {self.name} ({self.role}) log ---\n" + "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (its claims stay until their leases pass)."""
        if self.alive:
            self.process.send_signal(signal.SIGKILL)

    async def stop(self, grace: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it has not stopped within ``grace`` seconds."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), grace)
            except TimeoutError:
                self.kill()
        await self.process.wait()
        self.log.close()


async def start_bot_process(
    name: str, role: Role, env: Mapping[str, str], folder: Path, *, port: int | None = None
) -> BotProcess:
    """Start ``python -m bot <role>`` with ``env`` (added to this process's environment) and
    DATA_DIR ``folder/data``, its log in ``folder/bot.log``. A web replica listens on
    ``port`` (WEBHOOK_PORT), a worker serves its health routes there (METRICS_PORT)."""
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    port = port or free_port()
    settings = {"DATA_DIR": str(folder / "data"), "WEBHOOK_HOST": "127.0.0.1"}
    settings["WEBHOOK_PORT" if role == "web" else "METRICS_PORT"] = str(port)
    log = (folder / "bot.log").open("ab")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        role,
        env={**os.environ, **env, **settings},
        cwd=folder,  # no .env of the project's is read
        stdin=asyncio.subprocess.DEVNULL,
        stdout=log,
        stderr=asyncio.subprocess.STDOUT,
        preexec_fn=_die_with_parent,
    )
    return BotProcess(name, role, port, folder, process, log)


def _die_with_parent() -> None:
    """In the child: receive SIGKILL when the test process dies (Linux), so no bot outlives
    a test run that was killed itself."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


async def wait_ready(
    processes: Iterable[BotProcess],
    timeout: float = 300.0,  # noqa: ASYNC109 - a test helper's deadline
) -> None:
    """Wait until every process answers ``GET /readyz`` with 200 (model and index loaded,
    databases and Redis reachable, index current); fail with the log of one that exited or
    is still not ready after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        for process in processes:
            reason = "no answer"
            while True:
                if not process.alive:
                    raise AssertionError(
                        f"{process.name} exited with {process.process.returncode} before it "
                        f"was ready\n{process.log_tail()}"
                    )
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(process.url("/readyz")) as response:
                        if response.status == 200:
                            break
                        reason = await response.text()
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{process.name} not ready after {timeout:g} s ({reason})\n"
                        f"{process.log_tail()}"
                    )
                await asyncio.sleep(0.2)


class LoadBalancer:
    """Telegram and the reverse proxy in front of the web replicas: each update is posted
    to a live replica's webhook in turn (or to the one asked for). A request that fails
    (the replica died before answering 200) is posted again to another replica, as
    Telegram retries an update its webhook did not acknowledge and the proxy routes around
    a dead replica. ``in_flight[name]``: requests a replica is handling now."""

    def __init__(self, api: FakeBotAPI, replicas: Sequence[BotProcess]) -> None:
        self.api = api
        self.replicas = list(replicas)
        self.in_flight = {replica.name: 0 for replica in replicas}
        self.failed: list[tuple[int, str]] = []  # (update id, replica) of failed posts
        self.handled: dict[int, list[str]] = {}  # update id -> replicas that answered 200
        self._turn = 0
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))

    async def close(self) -> None:
        await self._http.close()

    def record(self, update: Mapping[str, Any]) -> JsonDict:
        """Give ``update`` its update id and make its message and query known to the fake
        Bot API (so the bot can reply to them and answer them); returns it as posted."""
        update_id = self.api.push_update(update)
        # Nobody polls getUpdates in webhook mode: the fake's queue only records it
        return {**update, "update_id": update_id}

    def live(self) -> list[BotProcess]:
        return [replica for replica in self.replicas if replica.alive]

    async def post(self, update: Mapping[str, Any], replica: BotProcess) -> bool:
        """Post a recorded update to one replica; True when it answered 200."""
        self.in_flight[replica.name] += 1
        try:
            async with self._http.post(
                replica.webhook, json=update, headers={SECRET_HEADER: WEBHOOK_SECRET}
            ) as response:
                await response.read()
                ok = response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        finally:
            self.in_flight[replica.name] -= 1
        if ok:
            self.handled.setdefault(int(update["update_id"]), []).append(replica.name)
        else:
            self.failed.append((int(update["update_id"]), replica.name))
        return ok

    async def deliver(
        self, update: Mapping[str, Any], to: BotProcess | None = None, *, attempts: int = 5
    ) -> str:
        """Record ``update`` and post it to ``to`` (default: the next live replica in turn)
        until a replica takes it; returns that replica's name."""
        recorded = self.record(update)
        target = to
        for _ in range(attempts):
            if target is None or not target.alive:
                target = self._next()
            if await self.post(recorded, target):
                return target.name
            target = None  # Telegram tries again; the proxy picks a live replica
            await asyncio.sleep(0.2)
        raise AssertionError(f"no replica took update {recorded['update_id']}")

    def _next(self) -> BotProcess:
        live = self.live()
        if not live:
            raise AssertionError("every web replica is dead")
        self._turn += 1
        return live[self._turn % len(live)]
