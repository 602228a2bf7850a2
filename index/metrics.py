"""The index's Prometheus metric: how long searches take (prometheus-client's default
registry; the bot serves it at ``/metrics``, a script may ignore it)."""

from __future__ import annotations

from prometheus_client import Histogram

__all__ = ["SEARCH_SECONDS"]

SEARCH_SECONDS = Histogram(
    "newsbot_search_seconds",
    "Seconds per search: embedding the question (batched with others), FAISS, the keyword "
    "index and ranking.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0),
)
