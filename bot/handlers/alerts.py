"""The routers of feeds, subscriptions and alerts, in the order to include them (before
the router whose catch-all answers any private text). The handlers import the service,
never the other way round."""

from __future__ import annotations

from aiogram import Router

from bot.handlers import feeds, subscriptions

__all__ = ["create_routers"]


def create_routers() -> list[Router]:
    """/feeds, then /subscribe and friends with the buttons under alerts."""
    return [feeds.create_router(), subscriptions.create_router()]
