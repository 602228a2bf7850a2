"""Shared pieces of the bot tests: users, articles, and the handle of a running bot."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from aiogram import Bot, Dispatcher

from bot.services import Services
from index.formats import make_article
from tests import factories
from tests.conversation import Conversation
from tests.fake_telegram import FakeBotAPI, FakeChat, FakeUser

USER = FakeUser(id=1001, first_name="Ann", username="ann")
ADMIN = FakeUser(id=4242, first_name="Ada", username="ada")
OTHER = FakeUser(id=1002, first_name="Bob", username="bob")

LONG_PARAGRAPH = (
    "The harbour authority published its annual report on shipping traffic and dredging. " * 12
).strip()
LONG_ARTICLE = make_article(
    title="Harbour authority annual report",
    text="\n\n".join(f"Section {n}. {LONG_PARAGRAPH}" for n in range(1, 11)),
    url="https://news.example.org/harbour-report",
    outlet="Port Gazette",
    author="R. Long",
    published=date(2024, 4, 2),
    source="harbour.txt",
)


def sample_articles() -> list[Any]:
    """The three factory topics (with URLs), the long harbour article."""
    articles = [
        factories.article(topic, url=f"https://news.example.org/{topic}")
        for topic in factories.TOPICS
    ]
    return [*articles, LONG_ARTICLE]


@dataclass
class RunningBot:
    """A polling bot and what it was built from."""

    api: FakeBotAPI
    bot: Bot
    dispatcher: Dispatcher
    services: Services

    def chat(self, user: FakeUser = USER, chat: FakeChat | None = None) -> Conversation:
        """A conversation of ``user`` in ``chat`` (their private chat by default)."""
        return Conversation(self.api, chat or FakeChat.private(user), user)


StartBot = Callable[..., Awaitable[RunningBot]]
"""The ``start_bot`` fixture: ``await start_bot(**settings_overrides)``."""
