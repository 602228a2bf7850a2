"""Prometheus metrics: what the bot counts, and ``GET /metrics``.

The metrics live on prometheus-client's default registry, declared once per process at
import (so the many apps a test run builds share them; tests compare before and after).
Labels hold only small fixed sets (update kinds, outcomes, results, error codes): never a
user id, a chat id or a text.

- ``ObservedDispatcher`` counts each update by kind, notes when it arrived
  (``since_received``), puts its id and chat into every log record made while it is handled
  (`bot.log.log_context`) and logs one line with its duration.
- ``CountTelegramErrors``, a Bot API session middleware, counts the Bot API's refusals by
  code (each 429 too, though `bot.sending.RetryAfterMiddleware` retries it).
- ``count_question`` is called once per question, with its outcome; ``newsbot_search_seconds``
  is measured by the index itself (`index.metrics`).
- ``refresh`` sets the gauges at scrape time: passages in this process's vector index (in
  memory) and the outbox rows waiting to be sent (one indexed COUNT, at most a second).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import prometheus_client
from aiogram import Bot, Dispatcher
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import Update
from aiohttp import web
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import func, select

from bot.log import log_context
from bot.storage.schema import outbox
from index.metrics import SEARCH_SECONDS

if TYPE_CHECKING:
    from bot.services import Services

__all__ = [
    "ALERTS_SENT",
    "ANSWER_SECONDS",
    "FEED_POLLS",
    "INDEX_PASSAGES",
    "OUTBOX_PENDING",
    "QUESTIONS",
    "SEARCH_SECONDS",
    "TELEGRAM_ERRORS",
    "UPDATES",
    "CountTelegramErrors",
    "ObservedDispatcher",
    "count_question",
    "mark_received",
    "metrics_handler",
    "refresh",
    "since_received",
]

log = logging.getLogger(__name__)

# A `_created` timestamp beside every counter doubles the output and no rule here uses it
prometheus_client.disable_created_metrics()

UPDATES = Counter("newsbot_updates_total", "Updates received from Telegram, by kind.", ["kind"])
QUESTIONS = Counter(
    "newsbot_questions_total",
    "Questions asked in chats: answered with passages, refused (nothing relevant, or a "
    "question the model cannot read), or failed with an error.",
    ["outcome"],
)
ANSWER_SECONDS = Histogram(
    "newsbot_answer_seconds",
    "Seconds from an update's arrival (the webhook request, or the dispatcher getting it when "
    "polling) to the answer to its question being sent.",
    buckets=(0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 60.0),
)
INDEX_PASSAGES = Gauge(
    "newsbot_index_passages", "Passages in this process's vector index (searchable now)."
)
OUTBOX_PENDING = Gauge(
    "newsbot_outbox_pending",
    "Alerts and digests in the outbox waiting to be sent or being sent "
    "(NaN when the database did not answer within a second).",
)
ALERTS_SENT = Counter(
    "newsbot_alerts_sent_total",
    "Outbox deliveries by result: sent, retried (5xx or network; again later), "
    "rate_limited (429), failed (given up), deactivated (blocked or gone), migrated.",
    ["result"],
)
FEED_POLLS = Counter(
    "newsbot_feed_polls_total",
    "Feed polls by result: new (fetched and processed), not_modified, error, paused "
    "(failed and paused after FEED_MAX_FAILURES in a row).",
    ["result"],
)
TELEGRAM_ERRORS = Counter(
    "newsbot_telegram_errors_total",
    "Bot API calls refused or failed, by HTTP code (400 401 403 404 409 413 429 5xx), "
    "network, or other.",
    ["code"],
)

OUTCOMES = ("answered", "refused", "error")
ALERT_RESULTS = ("sent", "retried", "rate_limited", "failed", "deactivated", "migrated")
FEED_RESULTS = ("new", "not_modified", "error", "paused")
UPDATE_KINDS = ("message", "callback_query", "inline_query", "my_chat_member")
# Every series exists from the start, at 0, so that rate() and increase() see the first one
for value in OUTCOMES:
    QUESTIONS.labels(outcome=value)
for value in ALERT_RESULTS:
    ALERTS_SENT.labels(result=value)
for value in FEED_RESULTS:
    FEED_POLLS.labels(result=value)
for value in UPDATE_KINDS:
    UPDATES.labels(kind=value)

OUTBOX_WAITING = ("pending", "sending")
SCRAPE_DB_TIMEOUT = 1.0

_received: ContextVar[float | None] = ContextVar("newsbot_update_received", default=None)


def since_received() -> float | None:
    """Seconds since the update being handled here arrived (None outside an update)."""
    received = _received.get()
    return None if received is None else time.monotonic() - received


def mark_received() -> None:
    """Note that an update arrives now, in this context and the tasks it starts (the webhook
    handler calls it, so that the answer's time includes the wait for the dispatcher)."""
    _received.set(time.monotonic())


def count_question(outcome: str, started: float | None = None) -> None:
    """Count a question's outcome; for an answer or refusal sent, observe the seconds since
    its update arrived (or since ``started``, a `time.monotonic()`, outside an update)."""
    QUESTIONS.labels(outcome=outcome).inc()
    if outcome == "error":
        return
    elapsed = since_received()
    if elapsed is None and started is not None:
        elapsed = time.monotonic() - started
    if elapsed is not None:
        ANSWER_SECONDS.observe(elapsed)


def _chat_id(update: Update) -> int | None:
    event = update.event if _kind(update) != "unknown" else None
    chat = getattr(event, "chat", None) or getattr(getattr(event, "message", None), "chat", None)
    chat_id = getattr(chat, "id", None)
    return chat_id if isinstance(chat_id, int) else None


def _kind(update: Update) -> str:
    try:
        return update.event_type
    except Exception:  # aiogram raises UpdateTypeLookupError for types it does not know
        return "unknown"


class ObservedDispatcher(Dispatcher):
    """A `Dispatcher` that counts, times and labels the logs of every update it is fed
    (polling and webhook alike): the update's id and chat are in every log record made
    while it is handled, error handlers included, and one line says how long it took."""

    async def feed_update(self, bot: Bot, update: Update, **kwargs: Any) -> Any:
        kind = _kind(update)
        UPDATES.labels(kind=kind).inc()
        started = time.monotonic()
        token = _received.set(_received.get() or started)  # arrived earlier: mark_received
        result: Any = UNHANDLED
        try:
            with log_context(update_id=update.update_id, chat_id=_chat_id(update)):
                try:
                    result = await super().feed_update(bot, update, **kwargs)
                    return result
                finally:
                    duration = time.monotonic() - started
                    log.info(
                        "Update %s (%s) %s in %.0f ms",
                        update.update_id,
                        kind,
                        "not handled" if result is UNHANDLED else "handled",
                        duration * 1000,
                        extra={"kind": kind, "duration": duration},
                    )
        finally:
            _received.reset(token)


def error_code(error: TelegramAPIError) -> str:
    """The label for a Bot API error: its HTTP code, ``5xx``, ``network`` or ``other``."""
    codes: list[tuple[type[TelegramAPIError], str]] = [
        (TelegramRetryAfter, "429"),
        (TelegramMigrateToChat, "400"),
        (TelegramBadRequest, "400"),
        (TelegramUnauthorizedError, "401"),
        (TelegramForbiddenError, "403"),
        (TelegramNotFound, "404"),
        (TelegramConflictError, "409"),
        (TelegramEntityTooLarge, "413"),
        (TelegramServerError, "5xx"),
        (TelegramNetworkError, "network"),
    ]
    return next((code for kind, code in codes if isinstance(error, kind)), "other")


class CountTelegramErrors(BaseRequestMiddleware):
    """Counts each failed Bot API call by code (install it after `RetryAfterMiddleware`,
    so that every 429 is counted, retried or not)."""

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        try:
            return await make_request(bot, method)
        except TelegramAPIError as error:
            TELEGRAM_ERRORS.labels(code=error_code(error)).inc()
            raise


async def refresh(services: Services) -> None:
    """Set the gauges read at scrape time from ``services``."""
    INDEX_PASSAGES.set(services.index.core.vectors.count)
    if services.alerts is None:
        return
    database = services.alerts.store.database
    query = select(func.count()).select_from(outbox).where(outbox.c.state.in_(OUTBOX_WAITING))
    try:
        pending = await asyncio.wait_for(database.scalar(query), SCRAPE_DB_TIMEOUT)
    except Exception as error:  # a scrape must not fail for it: the gauge says "unknown"
        log.debug("Outbox count for /metrics failed: %s", error)
        OUTBOX_PENDING.set(math.nan)
    else:
        OUTBOX_PENDING.set(pending)


def metrics_handler(
    services: Services | None,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """``GET /metrics``: the gauges refreshed from ``services``, then every metric of the
    process (Prometheus text format)."""

    async def metrics(request: web.Request) -> web.Response:
        if services is not None:
            await refresh(services)
        body = prometheus_client.generate_latest(prometheus_client.REGISTRY)
        return web.Response(
            body=body, headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST}
        )

    return metrics
