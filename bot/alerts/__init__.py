"""New-article alerts: topic matching, the outbox, the rate-limited sender, digests.

The feature's entry point is ``bot.alerts.service``: ``AlertsService`` and
``create_routers()``.
"""

from bot.alerts.settings import AlertSettings

__all__ = ["AlertSettings"]
