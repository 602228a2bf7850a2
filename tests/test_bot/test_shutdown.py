"""SIGTERM stops the bot within seconds even when every worker thread is stuck in a
download from a server that sends one byte at a time."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.fake_telegram import FakeBotAPI, FakeChat, FakeUser

pytestmark = pytest.mark.real_model  # the bot process loads the model at start-up

TOKEN = "123456789:AAHshutdownTESTtoken_-xyz"
ADMIN = FakeUser(id=4242, first_name="Ada")
SLOW_ADDS = 8  # more than the worker threads (min(32, cores + 4))


class TrickleServer:
    """Pages that send one byte a second, for as long as the client listens."""

    def __init__(self) -> None:
        self.open_requests = 0
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{name}", self._trickle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()

    async def _trickle(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/html"})
        await response.prepare(request)
        self.open_requests += 1
        try:
            for _ in range(600):
                await response.write(b" ")
                await asyncio.sleep(1)
        finally:
            self.open_requests -= 1
        return response


@pytest.fixture
async def trickle() -> AsyncIterator[TrickleServer]:
    server = TrickleServer()
    await server.start()
    yield server
    await server.stop()


async def test_sigterm_with_every_worker_stuck_stops_within_seconds(
    tmp_path: Path, trickle: TrickleServer
) -> None:
    async with FakeBotAPI(token=TOKEN) as api:
        env = {
            **os.environ,
            "BOT_TOKEN": TOKEN,
            "BOT_API_URL": api.base_url,
            "ADMIN_IDS": str(ADMIN.id),
            "DATA_DIR": str(tmp_path / "data"),
            "SAMPLES_DIR": str(tmp_path / "no-samples"),
            "EMBEDDING_BACKEND": "torch",  # no ONNX export in this fresh DATA_DIR
            "FETCH_ALLOW_PRIVATE": "true",
            "FETCH_TIMEOUT": "300",
            "LOG_LEVEL": "INFO",
        }
        bot = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            env=env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await api.wait_until(
                lambda: api.calls_of("getUpdates") or bot.returncode is not None,
                300,
                what="the bot to start polling",
            )
            chat = FakeChat.private(ADMIN)
            api.add_chat(chat)
            for number in range(SLOW_ADDS):
                url = f"http://127.0.0.1:{trickle.port}/page{number}"
                api.push_update(api.message_update(chat, ADMIN, f"/add {url}"))
            await api.wait_until(
                lambda: trickle.open_requests >= 6, 60, what="the downloads to take every worker"
            )

            stopping = time.monotonic()
            bot.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(bot.communicate(), 60)
            took = time.monotonic() - stopping
        finally:
            if bot.returncode is None:
                bot.kill()
                await bot.wait()

    log = stderr.decode()
    assert bot.returncode == 0, log[-3000:]
    assert took < 25, f"took {took:.1f} s"
    assert "worker thread(s) still busy" in log
    assert "Traceback" not in log
