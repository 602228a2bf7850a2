"""Health, readiness and metrics over HTTP, for load balancers, orchestrators and Prometheus.

- ``GET /healthz``: 200 while the process's event loop answers (liveness).
- ``GET /readyz``: 200 ``{"ready": true}`` when this process can serve: the model and the
  index are loaded, the index is current with the store (its change log), the index's and
  the bot's databases answer ``SELECT 1`` and Redis answers ``PING`` (when REDIS_URL is
  set), each within ``CHECK_TIMEOUT`` seconds; else 503 ``{"ready": false, "reason": …}``,
  one line naming the first check that failed (no URL passwords, no token). 503 too while
  the process starts and once it begins to stop, so a load balancer drains it first.
- ``GET /metrics``: `bot.metrics`.

``add_routes`` puts the three on an app (the webhook server's); ``start_metrics_server``
serves them on METRICS_PORT for polling mode and ``worker``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy import text

from bot.log import settings_secrets
from bot.metrics import metrics_handler
from bot.settings import BotSettings

if TYPE_CHECKING:
    from bot.services import Services

__all__ = [
    "CHECK_TIMEOUT",
    "Readiness",
    "add_routes",
    "health_app",
    "start_metrics_server",
]

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 2.0  # seconds each readiness check may take
# The index may trail the change log for a moment after another process writes (it looks
# every INDEX_SYNC_INTERVAL seconds); it counts as behind when it has not been current at
# any check for this long, or is this many changes behind.
LAG_GRACE = 30.0
LAG_LIMIT = 1000

Check = Callable[[], Awaitable[str | None]]
"""A readiness check: None when fine, else the reason (one line)."""


class Readiness:
    """Whether this process should get traffic; ``await readiness.reason()`` is None when it
    should, else why not. ``stopping()`` makes it refuse from then on."""

    def __init__(self, services: Services | None, settings: BotSettings) -> None:
        self.services = services
        self.settings = settings
        self.secrets = settings_secrets(settings)
        self._stopping = False
        self._current_at = time.monotonic()  # when the index was last seen current
        self._index_ping: asyncio.Future[None] | None = None

    def stopping(self) -> None:
        """The process is shutting down: not ready any more."""
        self._stopping = True

    async def reason(self) -> str | None:
        """None when ready; else the first failing check's reason, one line, no secrets."""
        if self._stopping:
            return "shutting down"
        if self.services is None:
            return "starting: the model and the index are not loaded yet"
        checks: list[tuple[str, Check]] = [
            ("index database", self._index_database),
            ("bot database", self._bot_database),
        ]
        if self.services.shared is not None:  # REDIS_URL
            checks.append(("redis", self.services.shared.check))
        checks.append(("index change log", self._index_current))  # after its database
        results = await asyncio.gather(*(self._run(name, check) for name, check in checks))
        return next((reason for reason in results if reason), None)

    async def _run(self, name: str, check: Check) -> str | None:
        try:
            return await asyncio.wait_for(check(), CHECK_TIMEOUT)
        except TimeoutError:
            return f"{name} unreachable: no answer within {CHECK_TIMEOUT:g} s"
        except Exception as error:
            return f"{name} unreachable: {self._clean(error)}"

    def _clean(self, error: BaseException) -> str:
        reason = " ".join(str(getattr(error, "orig", None) or error).split())
        for secret in self.secrets:
            reason = reason.replace(secret, "***")
        return (reason or type(error).__name__)[:300]

    async def _index_current(self) -> str | None:
        assert self.services is not None
        lag = await self.services.index.sync_lag()
        now = time.monotonic()
        if lag <= 0:
            self._current_at = now
            return None
        behind = now - self._current_at
        if lag > LAG_LIMIT or behind > LAG_GRACE:
            changes = f"{lag} change{'' if lag == 1 else 's'}"
            return f"index behind the store by {changes} (not current for {behind:.0f} s)"
        return None

    async def _index_database(self) -> str | None:
        """``SELECT 1`` on the index's store, in a worker thread. A connection attempt to a
        host that does not answer can outlast the timeout; the next checks wait for that
        same attempt instead of starting more."""
        assert self.services is not None
        if self._index_ping is None or self._index_ping.done():
            store = self.services.index.core.store
            self._index_ping = asyncio.ensure_future(asyncio.to_thread(_select_one, store))
            # Its failure is reported by the check that awaits it; one that timed out is not
            self._index_ping.add_done_callback(lambda f: f.cancelled() or f.exception())
        await asyncio.shield(self._index_ping)
        return None

    async def _bot_database(self) -> str | None:
        assert self.services is not None
        if self.services.alerts is None:
            return None
        async with self.services.alerts.store.database.read() as connection:
            await connection.execute(text("SELECT 1"))
        return None


def _select_one(store: Any) -> None:
    with store.read() as connection:
        connection.exec_driver_sql("SELECT 1")


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"alive": True})


def _readyz(readiness: Readiness) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def readyz(request: web.Request) -> web.Response:
        reason = await readiness.reason()
        if reason is None:
            return web.json_response({"ready": True})
        body = json.dumps({"ready": False, "reason": reason}, ensure_ascii=False)
        return web.Response(text=body, status=503, content_type="application/json")

    return readyz


def add_routes(app: web.Application, services: Services | None, settings: BotSettings) -> Readiness:
    """``/healthz``, ``/readyz`` and ``/metrics`` on ``app``; readiness turns 503 when the app
    begins to shut down. Returns the `Readiness`."""
    readiness = Readiness(services, settings)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz(readiness))
    app.router.add_get("/metrics", metrics_handler(services))

    async def stop(app: web.Application) -> None:
        readiness.stopping()

    app.on_shutdown.append(stop)
    return readiness


def health_app(services: Services | None, settings: BotSettings) -> web.Application:
    """An app serving only ``/healthz``, ``/readyz`` and ``/metrics``."""
    app = web.Application()
    add_routes(app, services, settings)
    return app


async def start_metrics_server(
    settings: BotSettings, services: Services | None
) -> web.AppRunner | None:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` on WEBHOOK_HOST:METRICS_PORT (None
    when METRICS_PORT is unset). Stop it with ``await runner.cleanup()``."""
    if settings.metrics_port is None:
        return None
    runner = web.AppRunner(health_app(services, settings), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.webhook_host, settings.metrics_port).start()
    except OSError as error:
        from bot.app import StartupError  # bot.app imports this module

        await runner.cleanup()
        raise StartupError(
            f"METRICS_PORT {settings.metrics_port} cannot be used ({error.strerror or error}): "
            "choose a free port or unset METRICS_PORT"
        ) from None
    log.info("Serving /metrics, /healthz and /readyz on port %s", settings.metrics_port)
    return runner
