"""/start (with deep links), /help, /sources, /latest and the command menus."""

from __future__ import annotations

import json

from bot.deep_links import encode_question
from tests.fake_telegram import FakeBotAPI
from tests.test_bot.harness import ADMIN, USER, RunningBot, StartBot


async def test_start_greets_by_name(running: RunningBot) -> None:
    [greeting] = await running.chat().send("/start")

    assert greeting.html.startswith("Hello, <b>Ann</b>! Ask me anything about the news")
    assert "/help" in greeting.text


async def test_a_deep_link_carries_a_question(running: RunningBot) -> None:
    payload = encode_question("who won the cup final?")
    assert payload is not None

    [answer] = await running.chat().send(f"/start {payload}")

    assert answer.text.startswith("🔎 who won the cup final?")
    assert "Cup final won on penalties" in answer.text


async def test_an_ordinary_start_payload_just_greets(running: RunningBot) -> None:
    [greeting] = await running.chat().send("/start inline")

    assert greeting.text.startswith("Hello, Ann!")


async def test_help_lists_commands_and_admin_ones_only_for_admins(running: RunningBot) -> None:
    [user_help] = await running.chat().send("/help")
    [admin_help] = await running.chat(ADMIN).send("/help")

    for text in (user_help.text, admin_help.text):
        assert "send your question" in text
        assert "@newsbot_test" in text
        assert "/ask — Ask a question about the news" in text
        assert "/latest" in text and "/sources" in text
    assert "/reindex" not in user_help.text
    assert "/reindex — Rebuild the search index" in admin_help.text


async def test_sources_lists_outlets_with_counts(running: RunningBot) -> None:
    [reply] = await running.chat().send("/sources")

    lines = reply.text.splitlines()
    assert lines[0] == "Sources"
    assert "• Daily Test — 3 articles" in lines
    assert "• Azernews — 1 article" in lines


async def test_latest_lists_newest_articles_with_links(running: RunningBot) -> None:
    [reply] = await running.chat().send("/latest")

    lines = reply.text.splitlines()
    assert lines[0] == "Latest articles"
    assert lines[2].startswith("1. ") and "Daily Test · 1 May 2024" in lines[2]
    assert '<a href="https://news.example.org/harbour-report">' in reply.html


async def test_command_menus_show_admin_commands_only_to_admins(running: RunningBot) -> None:
    """The menus are set at start-up; admins' private chats get the admin commands too."""
    api = running.api

    def menu(scope: dict[str, object]) -> list[str]:
        return [c["command"] for c in api.commands.get((json.dumps(scope, sort_keys=True), ""), [])]

    users = menu({"type": "default"})
    assert users == [
        "ask",
        "latest",
        "sources",
        "subscribe",
        "subscriptions",
        "unsubscribe",
        "alerts",
        "quiet",
        "timezone",
        "language",
        "help",
    ]
    assert menu({"type": "all_private_chats"}) == users
    assert menu({"type": "all_group_chats"}) == users
    assert menu({"type": "chat", "chat_id": ADMIN.id}) == [
        *users,
        "stats",
        "add",
        "remove",
        "reindex",
        "feeds",
    ]
    assert menu({"type": "chat", "chat_id": USER.id}) == []


async def test_refused_command_menus_do_not_stop_the_bot(
    api: FakeBotAPI, start_bot: StartBot
) -> None:
    """Telegram refuses a menu (e.g. an admin who never opened the bot): start-up goes on."""
    api.fail_next("setMyCommands", 400, "Bad Request: chat not found", times=4)
    running = await start_bot()

    [greeting] = await running.chat().send("/start")

    assert greeting.text.startswith("Hello")
