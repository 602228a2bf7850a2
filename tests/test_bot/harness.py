"""Shared pieces of the bot tests: users, articles, and the handle of a running bot."""

from __future__ import annotations

import time
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


async def longest_help_wait_during_upload(
    running: RunningBot, name: str, data: bytes, mime: str, limit: float = 60
) -> float:
    """Seconds of the longest wait between two answers to another user's /help, sent again
    and again while the admin's upload ``name`` is handled (until its report arrives)."""
    admin, other = running.chat(ADMIN), running.chat(OTHER)
    document = running.api.add_file(data, name, mime)
    running.api.push_update(running.api.message_update(admin.chat, ADMIN, document=document))
    longest, last, deadline = 0.0, time.monotonic(), time.monotonic() + limit
    while not any(m.text.startswith(("Added", "Failed")) for m in admin.messages):
        [answer] = await other.send("/help")
        assert "send your question" in answer.text
        now = time.monotonic()
        longest, last = max(longest, now - last), now
        assert now < deadline, (
            f"no upload report in {limit:g} s; /help waited up to {longest:.1f} s"
        )
    return longest
