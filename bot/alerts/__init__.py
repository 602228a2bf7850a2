"""New-article alerts: topic matching, the outbox, the rate-limited sender, digests.

The feature's entry point is ``bot.alerts.service.AlertsService``; its routers come from
``bot.handlers.alerts.create_routers()``; its data lives in ``bot.storage``.
"""

from bot.alerts.settings import AlertSettings

__all__ = ["AlertSettings"]
