"""Wiring, in one place: the services, the Bot, the Dispatcher with every router, the command
menus, and the two ways to receive updates (long polling and webhook)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import aiohttp
from aiogram import Bot, Dispatcher, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.base import BaseSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError
from aiogram.webhook.aiohttp_server import setup_application
from aiohttp import web

from bot.alerts.service import AlertsService
from bot.handlers import admin, ask, buttons, errors, inline, language, results, start
from bot.handlers.alerts import create_routers as create_alert_routers
from bot.health import add_routes, start_metrics_server
from bot.heartbeat import HEARTBEAT_FILE, HEARTBEAT_INTERVAL
from bot.i18n import CachedLanguages, LanguageMiddleware, create_i18n
from bot.jobs import JobRunner
from bot.menus import set_commands
from bot.metrics import CountTelegramErrors, ObservedDispatcher
from bot.rate_limit import RateLimitMiddleware
from bot.sending import KeepResponseTypes, RetryAfterMiddleware
from bot.services import Role, Services
from bot.settings import BotSettings
from bot.shared_state import SharedState, SharedStateError
from bot.shutdown import bounded, worker_pool
from bot.storage import StorageError
from bot.webhook import UpdateRequestHandler
from index import ArticleIndex, ArticleIndexError, Embedder, ModelError

__all__ = [
    "HEARTBEAT_FILE",
    "StartupError",
    "build_services",
    "build_webhook_app",
    "check_bot",
    "create_bot",
    "create_dispatcher",
    "open_index",
    "open_services",
    "open_shared_state",
    "run_polling",
    "run_worker",
    "seed_if_empty",
    "set_commands",
    "start_background",
    "webhook_app",
]

log = logging.getLogger(__name__)

INLINE_RATE_FACTOR = 3  # inline queries allowed per RATE_WINDOW, as a multiple of RATE_LIMIT


class StartupError(Exception):
    """The bot cannot start: a one-line reason naming the setting to fix (never the token)."""


async def check_bot(bot: Bot, settings: BotSettings) -> None:
    """Ask the Bot API who we are: a rejected token or an unreachable BOT_API_URL raises
    `StartupError` at once, before the slow start (model, samples)."""
    try:
        await bot.get_me()
    except TelegramUnauthorizedError:
        raise StartupError(
            f"BOT_TOKEN was rejected by the Bot API at {settings.bot_api_url} (401 Unauthorized): "
            "copy the token again from @BotFather"
        ) from None
    except (TelegramNetworkError, aiohttp.ClientError, TimeoutError) as error:
        reason = _one_line(str(error) or type(error).__name__).replace(settings.token, "[token]")
        raise StartupError(
            f"cannot reach the Bot API at {settings.bot_api_url} ({reason}): check the network "
            "and BOT_API_URL"
        ) from None


async def open_services(settings: BotSettings, embedder: Embedder | None = None) -> Services:
    """Open the index (loading the model), seed it on first run, build the services with
    feeds, subscriptions and alerts over the bot's own database. A model that cannot load,
    a DATA_DIR that cannot be written or a REDIS_URL that cannot be reached raises
    `StartupError`."""
    shared = await open_shared_state(settings)  # first: it fails in a second, the model not
    try:
        return await _open_services(settings, embedder, shared)
    except BaseException:
        if shared is not None:
            await shared.close()
        raise


async def _open_services(
    settings: BotSettings, embedder: Embedder | None, shared: SharedState | None
) -> Services:
    index = await open_index(settings, embedder)
    try:
        await seed_if_empty(index, settings.samples_dir)
        services = build_services(settings, index, shared)
        if services.alerts is not None:
            await services.alerts.store.open()  # connects and migrates: fails here, not later
        return services
    except StorageError as error:
        await index.close()
        raise StartupError(str(error)) from None
    except ArticleIndexError as error:
        await index.close()
        raise StartupError(_one_line(str(error))) from None
    except (OSError, sqlite3.Error) as error:
        await index.close()
        raise _data_dir_error(settings, error) from None


async def open_index(settings: BotSettings, embedder: Embedder | None = None) -> ArticleIndex:
    """The article index; a model that cannot load or a DATA_DIR that cannot be written
    raises `StartupError`."""
    try:
        return await ArticleIndex.open(settings, embedder)
    except ModelError as error:
        raise StartupError(f"EMBEDDING_MODEL is unusable: {_one_line(str(error))}") from None
    except ArticleIndexError as error:  # e.g. a damaged database: its message says what to do
        raise StartupError(_one_line(str(error))) from None
    except (OSError, sqlite3.Error) as error:
        raise _data_dir_error(settings, error) from None


def _data_dir_error(settings: BotSettings, error: OSError | sqlite3.Error) -> StartupError:
    """A folder problem gets the folder advice; a database that cannot be read, not."""
    reason = _one_line(str(error))
    if isinstance(error, sqlite3.DatabaseError) and not isinstance(
        error, sqlite3.OperationalError
    ):
        return StartupError(
            f"a database in DATA_DIR {settings.data_dir} cannot be read ({reason}): "
            "restore it from a backup or move it aside"
        )
    return StartupError(
        f"DATA_DIR {settings.data_dir} is not usable ({reason}): make it a writable folder"
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


async def open_shared_state(settings: BotSettings) -> SharedState | None:
    """The Redis client of REDIS_URL, checked with a ping (None when REDIS_URL is unset);
    a malformed or unreachable REDIS_URL raises `StartupError`."""
    try:
        shared = SharedState.from_settings(settings)
    except SharedStateError as error:
        raise StartupError(str(error)) from None
    if shared is not None:
        try:
            await shared.check()
        except SharedStateError as error:
            await shared.close()
            raise StartupError(str(error)) from None
    return shared


def build_services(
    settings: BotSettings, index: ArticleIndex, shared: SharedState | None = None
) -> Services:
    """The services over an open index, alerts included; with REDIS_URL the state replicas
    share lives in Redis (``shared``, else a client made from the settings)."""
    shared = shared or SharedState.from_settings(settings)
    pace = shared.pace(settings.alert_rate) if shared is not None else None
    alerts = AlertsService(settings, index, admin_ids=settings.admin_ids, pace=pace)
    i18n = create_i18n()
    return Services.create(
        settings,
        index,
        shared=shared,
        alerts=alerts,
        jobs=JobRunner(alerts.store.jobs, index, i18n),
        i18n=i18n,
        on_blocked=alerts.chat_blocked,
        count_subscribers=alerts.count_subscribers,
        languages=CachedLanguages(alerts.store.chats.language, alerts.store.chats.set_language),
    )


NO_SAMPLES = (
    "The index is empty and there are no sample articles in {folder}: add articles with "
    "`python -m index ingest PATH` (same DATA_DIR) or set SAMPLES_DIR to a folder of articles"
)


async def seed_if_empty(
    index: ArticleIndex, folder: Path | None, say: Callable[[str], object] | None = None
) -> None:
    """Ingest ``folder`` (the bundled samples) when the index has no articles yet. What
    happens is one line to ``say`` (default: the log), a missing folder included."""
    if folder is None or (await index.stats()).articles:
        return
    if not await asyncio.to_thread(folder.is_dir):
        (say or log.warning)(NO_SAMPLES.format(folder=folder))
        return
    (say or log.info)(f"First run: indexing the sample articles in {folder}…")
    report = await index.ingest([str(folder)])
    (say or log.info)(f"Samples indexed: {report.summary()}")


def create_bot(
    settings: BotSettings, session: BaseSession | None = None, token: str | None = None
) -> Bot:
    """A Bot talking to BOT_API_URL, honouring retry_after, sending HTML without previews.
    ``session`` and ``token`` replace the network and BOT_TOKEN (the local chat uses them)."""
    session = session or AiohttpSession(api=TelegramAPIServer.from_base(settings.bot_api_url))
    session.middleware(RetryAfterMiddleware())
    session.middleware(KeepResponseTypes())
    session.middleware(buttons.ExpiredQueryMiddleware())
    session.middleware(CountTelegramErrors())  # innermost: every refusal, each 429 too
    default = DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True)
    return Bot(token or settings.token, session=session, default=default)


def create_dispatcher(
    services: Services, extra_routers: Sequence[Router] = (), *, notice_every_drop: bool = False
) -> Dispatcher:
    """The Dispatcher with every feature router, the rate limit and the services.

    The routers of feeds, subscriptions and alerts (when ``services.alerts`` is set) and
    ``extra_routers`` go before the questions router, whose catch-all takes any remaining
    private text; the last router answers any button press no other handler took.
    ``notice_every_drop`` tells the user each time the rate limit drops a message (not
    only once per flood), for the terminal chat.
    """
    if services.alerts is not None:
        extra_routers = [*create_alert_routers(), *extra_routers]
    dispatcher = ObservedDispatcher(**services.workflow_data())  # counts, times, log context
    LanguageMiddleware(services.i18n, services.languages).setup(dispatcher)
    limiter = RateLimitMiddleware(
        services.rate_limiter("chat", services.settings.rate_limit),
        notice_every_time=notice_every_drop,
    )
    dispatcher.message.middleware(limiter)
    dispatcher.callback_query.middleware(limiter)
    # Inline queries arrive as the user types: their own, more generous budget
    dispatcher.inline_query.middleware(
        RateLimitMiddleware(
            services.rate_limiter("inline", services.settings.rate_limit * INLINE_RATE_FACTOR)
        )
    )
    dispatcher.include_routers(
        errors.create_router(),
        admin.create_router(),
        start.create_router(),
        language.create_router(),
        results.create_router(),
        inline.create_router(),
        *extra_routers,
        ask.create_router(),  # private-chat catch-all
        buttons.create_router(),  # last: button presses nobody else answered
    )
    dispatcher.startup.register(_on_startup)
    dispatcher.shutdown.register(_on_shutdown)
    return dispatcher


async def _on_startup(bot: Bot, services: Services) -> None:
    """Menus, the background work of a process that does everything (`start_background`),
    and a heartbeat file for the health check."""
    await set_commands(bot, services.settings.admin_ids, services.i18n)
    if services.role == "all":
        await start_background(bot, services)
    services.spawn(_heartbeat(services.settings.data_dir / HEARTBEAT_FILE), "heartbeat")
    me = await bot.me()
    log.info("Serving @%s with %s articles", me.username, (await services.index.stats()).articles)


async def start_background(bot: Bot, services: Services) -> None:
    """What a worker does (and the process that does everything): feed polling, alert
    delivery and digests (`AlertsService`), and jobs such as /reindex (`JobRunner`)."""
    if services.alerts is not None:
        await services.alerts.start(bot)
    if services.jobs is not None:
        services.jobs.start(bot)


async def _on_shutdown(services: Services) -> None:
    """Stop background work (jobs, alerts, heartbeat, a running reindex's status updates)
    and close the Redis client, each step for a few seconds at most
    (`bot.shutdown.bounded`)."""
    if services.jobs is not None:
        await bounded(services.jobs.stop(), "stopping jobs")
    if services.alerts is not None:
        await bounded(services.alerts.stop(), "stopping feeds and alert delivery")
    for task in list(services.background):
        task.cancel()
    await bounded(
        asyncio.gather(*services.background, return_exceptions=True), "background tasks"
    )
    if services.shared is not None:
        await bounded(services.shared.close(), "closing the Redis connection")


async def _heartbeat(path: Path) -> None:
    while True:
        await asyncio.to_thread(path.write_text, f"{time.time():.0f}\n")
        await asyncio.sleep(HEARTBEAT_INTERVAL)


async def run_polling(settings: BotSettings, embedder: Embedder | None = None) -> None:
    """Long polling until SIGINT/SIGTERM. Start-up failures raise `StartupError`."""
    bot = create_bot(settings)
    try:
        await check_bot(bot, settings)
        services = await open_services(settings, embedder)
        metrics = None
        try:
            metrics = await start_metrics_server(settings, services)  # with METRICS_PORT
            dispatcher = create_dispatcher(services)
            await bot.delete_webhook()
            await dispatcher.start_polling(
                bot, allowed_updates=dispatcher.resolve_used_update_types()
            )
        finally:
            await _stop_serving(services, metrics)
    finally:
        await bot.session.close()


async def _stop_serving(services: Services, metrics: web.AppRunner | None = None) -> None:
    """The end every way of running shares: the metrics server (when METRICS_PORT started
    one), then the index, each for a few seconds at most; then the "Stopped" line."""
    if metrics is not None:
        await bounded(metrics.cleanup(), "stopping the metrics server")
    await bounded(services.index.close(), "closing the index")
    log.info("Stopped")


def build_webhook_app(dispatcher: Dispatcher, bot: Bot, settings: BotSettings) -> web.Application:
    """An aiohttp app taking updates at WEBHOOK_URL's path; requests without the secret token
    header are rejected (401), bodies that are not an Update too (400). ``/healthz``,
    ``/readyz`` and ``/metrics`` are served beside it (`bot.health`)."""
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    app = web.Application()
    handler = UpdateRequestHandler(dispatcher=dispatcher, bot=bot, secret_token=secret)
    handler.register(app, path=settings.webhook_path)
    add_routes(app, dispatcher.workflow_data.get("services"), settings)

    async def register_webhook(bot: Bot) -> None:
        assert settings.webhook_url is not None
        await bot.set_webhook(
            settings.webhook_url,
            secret_token=secret,
            allowed_updates=dispatcher.resolve_used_update_types(),
        )

    dispatcher.startup.register(register_webhook)
    setup_application(app, dispatcher, bot=bot)
    return app


async def webhook_app(
    settings: BotSettings, embedder: Embedder | None = None, *, role: Role = "all"
) -> web.Application:
    """The webhook app with its services; for ``web.run_app``, which handles signals.
    ``role`` "web": a replica that only answers updates (no feeds, alert delivery,
    digests or jobs: workers do those). Start-up failures raise `StartupError`."""
    asyncio.get_running_loop().set_default_executor(worker_pool())  # see bot.shutdown
    bot = create_bot(settings)
    try:
        await check_bot(bot, settings)
        services = await open_services(settings, embedder)
        services.role = role
    except BaseException:
        await bot.session.close()
        raise
    app = build_webhook_app(create_dispatcher(services), bot, settings)

    async def close(app: web.Application) -> None:
        with contextlib.suppress(Exception):
            await bot.session.close()
        await _stop_serving(services)

    app.on_cleanup.append(close)
    return app


async def run_worker(
    settings: BotSettings, embedder: Embedder | None = None, stop: asyncio.Event | None = None
) -> None:
    """``python -m bot worker``: feed polling, alert delivery, digests and jobs, without
    Telegram updates, until SIGINT/SIGTERM (or ``stop`` is set). It needs the Bot to send
    alerts and edit status messages. Start-up failures raise `StartupError`."""
    bot = create_bot(settings)
    try:
        await check_bot(bot, settings)
        services = await open_services(settings, embedder)
        services.role = "worker"
        metrics = None
        try:
            stop = stop or _stop_on_signals()
            metrics = await start_metrics_server(settings, services)  # with METRICS_PORT
            await start_background(bot, services)
            services.spawn(_heartbeat(settings.data_dir / HEARTBEAT_FILE), "heartbeat")
            log.info("Worker started: feeds, alert delivery, digests and jobs")
            await stop.wait()
        finally:
            await _on_shutdown(services)
            await _stop_serving(services, metrics)
    finally:
        await bot.session.close()


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop
