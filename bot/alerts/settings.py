"""Settings of feeds, subscriptions and alerts (environment or ``.env``).

``BotSettings`` extends these; ``AlertSettings`` also stands alone for the sender process
and the benchmark.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from index import IndexSettings

__all__ = ["DEFAULT_TOPIC_THRESHOLDS", "AlertSettings"]

# Cosine similarity between a topic (a few words) and a passage at or above which the
# passage is "about" the topic, per embedding model. Calibrated with
# `python -m bot.alerts calibrate --squad squad-v1.1-dev.json` (SQuAD article titles as
# topics): at 0.40 all-MiniLM-L6-v2 gives precision 0.89 and recall 0.67 without headline
# context (0.35: 0.82 / 0.79, best F1). Alerts favour precision: no spam. Headlines in the
# passage embeddings and the headline-words rule in matching raise recall in practice.
DEFAULT_TOPIC_THRESHOLDS = {"all-MiniLM-L6-v2": 0.40}
FALLBACK_TOPIC_THRESHOLD = 0.40


class AlertSettings(IndexSettings):
    """Feeds to poll, how often, and how fast alerts may be sent (plus the index settings:
    DATA_DIR holds bot.sqlite3 beside the index; FETCH_TIMEOUT and MAX_INPUT_BYTES bound
    feed and page fetches too)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    feeds: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Feeds polled from the start: URLs separated by commas, or a JSON list.",
    )
    feed_poll_interval: float = Field(
        600.0, gt=0, description="Seconds between polls of a feed (raised by its TTL)."
    )
    feed_max_interval: float = Field(
        6 * 3600.0, gt=0, description="Longest interval a feed's TTL/Cache-Control may ask for."
    )
    feed_max_failures: int = Field(
        8, ge=1, description="Consecutive failures after which a feed is paused (admins told)."
    )
    feed_teaser_chars: int = Field(
        400, ge=0, description="Entries with less text than this are teasers: fetch the page."
    )
    feed_alert_max_age_hours: float = Field(
        48.0, gt=0, description="Entries published longer ago are indexed but not alerted."
    )
    alert_rate: float = Field(
        25.0, ge=0, description="Messages per second overall (0 lifts the limit)."
    )
    alert_chat_interval: float = Field(
        1.0, ge=0, description="Seconds between two messages to the same chat."
    )
    alert_concurrency: int = Field(
        4, ge=1, description="Requests in flight at once (each may be re-sent after a crash)."
    )
    alert_claim_lease: float = Field(
        30.0,
        ge=1,
        description="Seconds a worker's claim on alerts lasts unless renewed: a crashed "
        "worker's alerts are sent again (by any worker) after this.",
    )
    alert_max_attempts: int = Field(
        6, ge=1, description="Attempts on transient errors (5xx, network) before giving up."
    )
    alert_topic_threshold: float | None = Field(
        None, description="Topic similarity threshold; unset uses the model's calibrated value."
    )
    alert_duplicate_similarity: float = Field(
        0.6, gt=0, le=1, description="Text resemblance above which two stories are the same."
    )
    alert_digest_items: int = Field(20, ge=1, description="Most articles listed in one digest.")

    @field_validator("feeds", mode="before")
    @classmethod
    def _split_feeds(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("feeds")
    @classmethod
    def _check_feeds(cls, value: list[str]) -> list[str]:
        for url in value:
            parts = urlsplit(url)
            if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
                raise ValueError(
                    f"{url!r} is not an http:// or https:// URL "
                    "(separate feeds with commas, or give a JSON list)"
                )
        return value

    def topic_threshold(self, model: str) -> float:
        """The configured threshold, else the calibrated one for ``model``."""
        if self.alert_topic_threshold is not None:
            return self.alert_topic_threshold
        name = model.split("@")[0].rsplit("/", 1)[-1]  # any backend: "all-MiniLM-L6-v2@onnx-int8"
        return DEFAULT_TOPIC_THRESHOLDS.get(name, FALLBACK_TOPIC_THRESHOLD)
