"""Logging set-up that keeps secrets out of every log line.

Two formats (``LOG_FORMAT``): ``text``, one human-readable line per record (the default), and
``json``, one JSON object per line with ``time``, ``level``, ``logger`` and ``message``, plus
``update_id`` and ``chat_id`` while an update is being handled (``log_context``, set by
`bot.metrics.ObservedDispatcher`), ``duration`` (seconds)
where a record carries one, and ``exception`` with the traceback. Secrets are redacted from
the message and the traceback before either format sees them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import IO, Any
from urllib.parse import urlsplit

from pydantic import SecretStr

__all__ = [
    "JsonFormatter",
    "RedactingFilter",
    "current_context",
    "log_context",
    "make_handler",
    "settings_secrets",
    "setup_logging",
]

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# Record attributes a JSON line carries when set (by ``log_context`` or ``extra=``)
CONTEXT_FIELDS = ("update_id", "chat_id", "kind", "duration")

_context: ContextVar[Mapping[str, Any]] = ContextVar(
    "newsbot_log_context", default=MappingProxyType({})
)


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (``update_id=…``, ``chat_id=…``) to every record logged inside, in this
    task and the threads it hands work to (``asyncio.to_thread`` copies the context)."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> Mapping[str, Any]:
    """The fields ``log_context`` has set here."""
    return _context.get()


class RedactingFilter(logging.Filter):
    """Replace each secret in a record's final message with ``[redacted]``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [secret for secret in secrets if secret]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "[redacted]")
            record.msg, record.args = message, None
        if record.exc_info or record.exc_text:
            # Another handler may have formatted (and cached) the traceback already
            text = record.exc_text or logging.Formatter().formatException(
                record.exc_info or (None, None, None)
            )
            if any(secret in text for secret in self.secrets):
                for secret in self.secrets:
                    text = text.replace(secret, "[redacted]")
                record.exc_text = text
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_context.get())
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = round(value, 4) if isinstance(value, float) else value
        if record.exc_info and record.exc_text is None:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def make_handler(
    log_format: str = "text", secrets: Iterable[str] = (), stream: IO[str] | None = None
) -> logging.Handler:
    """A handler writing to ``stream`` (stderr) in ``log_format``, with ``secrets`` redacted."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    handler.addFilter(RedactingFilter(secrets))
    return handler


def setup_logging(level: str, secrets: Iterable[str] = (), log_format: str = "text") -> None:
    """Log to stderr at ``level`` in ``log_format`` (text or json), ``secrets`` redacted."""
    logging.basicConfig(level=level, handlers=[make_handler(log_format, secrets)], force=True)
    # aiogram logs "Update id=… is handled. Duration … ms" at INFO for every update; the
    # dispatcher (bot.metrics.ObservedDispatcher) logs that line with the
    # update's kind and chat, as fields in JSON. Its warnings and errors still show.
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)


def settings_secrets(settings: Any) -> list[str]:
    """The secret values in ``settings`` (a `BotSettings`): the token, the webhook secret,
    and the passwords inside DATABASE_URL and REDIS_URL, should a driver's message quote
    them."""
    found: list[str] = []
    for name in ("bot_token", "webhook_secret"):
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value().strip())
    for name in ("database_url", "redis_url"):
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr):
            with contextlib.suppress(ValueError):
                found.append(urlsplit(value.get_secret_value()).password or "")
    return [secret for secret in found if secret]
