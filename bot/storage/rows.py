"""The rows the bot's repositories hand out and take in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ChatPrefs", "Delivery", "FeedRow", "JobRow", "OutboxRow", "Story", "Subscription"]


@dataclass(frozen=True, slots=True)
class ChatPrefs:
    """A chat's delivery preferences and state."""

    chat_id: int
    status: str = "active"
    mode: str = "instant"
    digest_hour: int = 8
    quiet_start: int | None = None
    quiet_end: int | None = None
    tz_minutes: int = 0
    migrated_to: int | None = None

    def deliver_at(self, now: float) -> tuple[str, float]:
        """(state, not_before) for an alert created at ``now``: held for the next digest,
        delayed to the end of quiet hours, or pending right away."""
        local = now + self.tz_minutes * 60
        day_start = local - local % 86400
        if self.mode == "digest":
            due = day_start + self.digest_hour * 3600
            if due <= local:
                due += 86400
            return "held", due - self.tz_minutes * 60
        if self.quiet_start is not None and self.quiet_end is not None:
            hour = (local - day_start) / 3600
            start, end = self.quiet_start, self.quiet_end
            inside = start <= hour < end if start < end else (hour >= start or hour < end)
            if start != end and inside:
                due = day_start + end * 3600
                if due <= local:
                    due += 86400
                return "pending", due - self.tz_minutes * 60
        return "pending", now


@dataclass(frozen=True, slots=True)
class FeedRow:
    id: int
    url: str
    title: str | None
    etag: str | None
    last_modified: str | None
    min_interval: float
    next_poll_at: float
    polls: int
    last_success_at: float | None
    last_error: str | None
    last_error_at: float | None
    failures: int
    paused: bool
    articles: int
    preset: bool


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    chat_id: int
    thread_id: int
    topic: str
    outlet: str
    vector: np.ndarray | None
    muted: bool

    def describe(self) -> str:
        """How the subscription reads in lists: every article / about X / from Y."""
        parts = []
        if self.topic:
            parts.append(f"about “{self.topic}”")
        if self.outlet:
            parts.append(f"from {self.outlet}")
        return " ".join(parts) or "every new article"


@dataclass(frozen=True, slots=True)
class Story:
    """An article the feeds brought in, for duplicate detection."""

    article_id: str
    url: str | None
    content_hash: str
    title: str
    outlet: str | None
    duplicate_of: str | None
    signature: np.ndarray | None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    chat_id: int
    thread_id: int
    kind: str
    article_id: str | None
    subscription_id: int | None
    payload: dict[str, Any]
    state: str
    not_before: float
    attempts: int
    claimed_by: str | None = None  # the worker sending it
    claimed_until: float | None = None  # its lease (sending), its chat's gap (sent)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One alert to enqueue: which chat/thread gets which article, and why."""

    chat_id: int
    thread_id: int
    article_id: str
    subscription_id: int | None
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class JobRow:
    """Work one worker does for whichever replica asked (``kind`` "reindex")."""

    id: int
    kind: str
    state: str  # queued | running | done | failed
    chat_id: int | None  # the status message to edit
    message_id: int | None
    language: str | None
    done: int
    total: int
    result: str | None
    attempts: int
    claimed_by: str | None
    claimed_until: float | None
