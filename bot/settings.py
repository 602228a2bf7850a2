"""The bot's settings: the index settings plus Telegram's, read from the environment or ``.env``.

``load_settings`` turns any missing or malformed value into one ``SettingsError`` line that
names the variable and says how to fix it. The token is a ``SecretStr``: it never appears
in ``repr``, logs or error messages.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from bot.alerts.settings import AlertSettings

__all__ = ["BotSettings", "SettingsError", "load_settings"]

# A bot token is the bot's numeric id, a colon, and a secret in the URL-safe base64 alphabet
# (35 characters from @BotFather today; test and self-hosted servers may differ, and getMe
# at start-up is the real check). It is sent in every request's URL path, so nothing else.
TOKEN_PATTERN = re.compile(r"[0-9]+:[A-Za-z0-9_-]+")
TOKEN_SHAPE = (
    "a token is the bot's numeric id, a colon and the secret (letters, digits, _ and -), "
    "like 123456789:AAH… from @BotFather"
)
OFFICIAL_API = "https://api.telegram.org"
# The sample articles beside the package (in a clone or an editable install), found
# wherever the bot is started from; a plain `pip install` has none, which start-up says.
BUNDLED_SAMPLES = Path(__file__).resolve().parent.parent / "samples"


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line naming it and the fix."""


class BotSettings(AlertSettings):
    """Everything the bot reads at start-up. Field names are the environment variables."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    bot_token: SecretStr | None = Field(
        None, description="Token from @BotFather (required except for `python -m bot chat`)."
    )
    admin_ids: Annotated[frozenset[int], NoDecode] = Field(
        frozenset(), description='Telegram user ids of admins: "111,222" or a JSON list.'
    )
    bot_api_url: str = Field(
        OFFICIAL_API, description="Base URL of the Bot API server (official or self-hosted)."
    )
    webhook_url: str | None = Field(
        None, description="Public HTTPS URL for webhook mode; unset means long polling."
    )
    webhook_host: str = Field("0.0.0.0", description="Address the webhook server listens on.")
    webhook_port: int = Field(8080, gt=0, lt=65536, description="Port the webhook server uses.")
    webhook_secret: SecretStr | None = Field(
        None, description="Secret every webhook request must carry (required with WEBHOOK_URL)."
    )
    answer_hits: int = Field(3, ge=1, le=5, description="Hits per answer page (1-5).")
    max_question_chars: int = Field(
        300, ge=20, le=3000, description="Longest question accepted, in characters."
    )
    rate_limit: int = Field(
        6,
        ge=1,
        description="Messages and button presses a user may send per RATE_WINDOW "
        "(inline queries: three times as many).",
    )
    rate_window: float = Field(10.0, gt=0, description="Rate-limit window, in seconds.")
    query_ttl: int = Field(
        3600, ge=60, description="Seconds the More/Full article buttons of an answer stay valid."
    )
    samples_dir: Path | None = Field(
        BUNDLED_SAMPLES,
        description="Folder ingested on first run when the index is empty "
        "(default: the samples shipped with the bot).",
    )
    log_level: str = Field("INFO", description="Logging level: DEBUG, INFO, WARNING, ERROR.")
    log_format: Literal["text", "json"] = Field(
        "text", description="text (human-readable) or json (one JSON object per line)."
    )
    redis_url: SecretStr | None = Field(
        None,
        description="redis://host:6379/0 keeps the state replicas share (button queries, rate "
        "limits, the global alert rate) in Redis; unset: in this process's memory.",
    )
    redis_prefix: str = Field(
        "newsbot:", description="Prefix of every Redis key the bot writes (one per deployment)."
    )
    metrics_port: int | None = Field(
        None,
        gt=0,
        lt=65536,
        description="Port serving /metrics, /healthz and /readyz in polling mode and for "
        "`worker` (webhook mode serves them on WEBHOOK_PORT); unset: off.",
    )

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _parse_admin_ids(cls, value: Any) -> Any:
        """Accept "111,222", "111 222" or a JSON list."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part for part in re.split(r"[,\s]+", text) if part]

    @field_validator("bot_token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        token = value.get_secret_value().strip() if value is not None else None
        if token is None or TOKEN_PATTERN.fullmatch(token):
            return value
        if token.lower().startswith("bot") and TOKEN_PATTERN.fullmatch(token[3:]):
            raise ValueError(f"drop the leading 'bot' (that belongs to the API URL); {TOKEN_SHAPE}")
        raise ValueError(TOKEN_SHAPE)

    @field_validator("bot_api_url", "webhook_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and urlparse(value).scheme not in ("http", "https"):
            raise ValueError("it must be an http:// or https:// URL")
        return value.rstrip("/") if value else value

    @field_validator("webhook_secret")
    @classmethod
    def _check_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(
            r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()
        ):
            raise ValueError("use 1-256 characters among A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("use DEBUG, INFO, WARNING or ERROR")
        return value.upper()

    @property
    def token(self) -> str:
        """The bot token; raises SettingsError when it is not set."""
        if self.bot_token is None:
            raise SettingsError(
                "BOT_TOKEN is not set: get a token from @BotFather and set BOT_TOKEN in the "
                "environment or .env (or run `python -m bot chat` to try the bot locally)"
            )
        return self.bot_token.get_secret_value().strip()

    @property
    def webhook_path(self) -> str:
        """The path part of WEBHOOK_URL, where the webhook server listens."""
        return urlparse(self.webhook_url or "").path or "/"


def load_settings(*, require_token: bool = True, **overrides: Any) -> BotSettings:
    """Read the settings; raise SettingsError (one line, no secret values) when one is bad."""
    try:
        settings = BotSettings(**overrides)
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "a setting"
        reason = str(first["msg"]).removeprefix("Value error, ")
        raise SettingsError(
            f"{name} is invalid: {reason}. Fix it in the environment or .env "
            f"(see `python -m bot --help`)"
        ) from None
    if require_token:
        settings.token  # noqa: B018 - raises SettingsError when missing
        if settings.webhook_url and settings.webhook_secret is None:
            raise SettingsError(
                "WEBHOOK_SECRET is not set: webhook mode needs a secret token "
                "(letters, digits, _ and -); set WEBHOOK_SECRET or unset WEBHOOK_URL"
            )
        if settings.webhook_url and not settings.webhook_url.startswith("https://"):
            raise SettingsError("WEBHOOK_URL is invalid: Telegram only calls https:// webhooks")
    return settings
