"""Asking in a private chat: answers with quotes and sources, their buttons, and the replies
to messages that are not questions."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pytest

from tests.fake_telegram import utf16_len
from tests.test_bot.harness import RunningBot, StartBot


async def test_a_question_gets_quotes_in_their_passages_and_linked_sources(
    running: RunningBot,
) -> None:
    """The reply quotes the answer in bold inside its passage, then links the source."""
    conv = running.chat()

    [answer] = await conv.send("What happened when the volcano erupted?")

    assert answer.text.startswith("🔎 What happened when the volcano erupted?")
    assert (
        "<blockquote><b>The volcano erupted on Monday morning, sending ash over the village.</b>"
        in answer.html
    )
    assert (
        '1. <a href="https://news.example.org/volcano">Volcano erupts near village</a>'
        " · Daily Test · 1 May 2024 · A. Writer" in answer.html
    )
    assert [e["type"] for e in answer.entities].count("blockquote") == 3  # three hits
    assert answer.buttons[0] == ["📄 1. Volcano erupts near village"]
    assert answer.buttons[-1] == ["More results »"]
    assert all(len(b["callback_data"].encode()) <= 64 for r in answer.inline_buttons for b in r)
    [typing] = running.api.calls_of("sendChatAction")
    assert typing.params == {"chat_id": conv.chat.id, "action": "typing"}


async def test_more_results_sends_the_next_page_and_retires_its_button(
    running: RunningBot,
) -> None:
    """ "More results" continues the numbering on a new message; the old button goes away."""
    conv = running.chat()
    [first] = await conv.send("volcano eruption")

    replies = await conv.press("More results")

    page = next(m for m in replies if m.message_id != first.message_id)
    old = next(m for m in replies if m.message_id == first.message_id)
    assert "\n4. " in page.text and "\n1. " not in page.text
    assert page.buttons[0][0].startswith("📄 4. ")
    assert ["More results »"] not in old.buttons
    assert old.buttons[0] == ["📄 1. Volcano erupts near village"]


async def test_full_article_is_sent_in_parts_when_long(running: RunningBot) -> None:
    """A long article arrives as several messages, each within Telegram's limit."""
    conv = running.chat()
    await conv.send("harbour authority annual report dredging")

    parts = await conv.press("Harbour authority annual report")

    assert len(parts) >= 2
    assert parts[0].text.startswith(
        "Harbour authority annual report\nPort Gazette · 2 Apr 2024 · R. Long"
    )
    assert '<a href="https://news.example.org/harbour-report">' in parts[0].html
    assert f"Part 1 of {len(parts)}" in parts[0].text
    assert parts[-1].text.startswith(f"Part {len(parts)} of {len(parts)}")
    assert "Section 10." in parts[-1].text
    assert all(utf16_len(part.text) <= 4096 for part in parts)
    assert conv.last_callback_answer is not None


async def test_short_article_comes_whole(running: RunningBot) -> None:
    conv = running.chat()
    await conv.send("central bank interest rates")

    [article] = await conv.press("Central bank raises interest rates")

    assert "Part 1" not in article.text
    assert "Markets fell after the announcement." in article.text


async def test_an_expired_button_is_answered_politely(running: RunningBot) -> None:
    """After the query expiry, buttons answer with an alert instead of failing."""
    conv = running.chat()
    await conv.send("volcano eruption")
    running.services.queries.clock = lambda: time.monotonic() + 7200

    assert await conv.press("More results") == []

    assert conv.last_callback_answer is not None
    assert conv.last_callback_answer["text"] == (
        "This answer has expired. Please ask your question again."
    )
    assert conv.last_callback_answer["show_alert"] is True


async def test_nothing_relevant_says_so_and_suggests_what_to_try(running: RunningBot) -> None:
    conv = running.chat()

    [reply] = await conv.send("quantum chromodynamics lattice gluon")

    assert reply.text.startswith("I found nothing about quantum chromodynamics lattice gluon")
    assert "rephrasing" in reply.text and "/latest" in reply.text
    assert reply.buttons == []


async def test_oversized_questions_are_explained(start_bot: StartBot) -> None:
    running = await start_bot(max_question_chars=50)
    conv = running.chat()

    [reply] = await conv.send("volcano " * 20)

    assert reply.text.startswith("That message is too long for a question")
    assert "50 characters" in reply.text
    assert running.api.calls_of("sendChatAction") == []  # no search was run


async def test_command_only_ask_and_unknown_commands_get_help(running: RunningBot) -> None:
    conv = running.chat()

    [hint] = await conv.send("/ask")
    [unknown] = await conv.send("/frobnicate now")

    assert hint.text.startswith("Ask me a question about the news")
    assert unknown.text == "I don't know the command /frobnicate. See /help for what I can do."


async def test_unknown_commands_are_echoed_as_typed_even_with_html(running: RunningBot) -> None:
    """An unknown command with HTML-like characters is shown as typed, not parsed as HTML."""
    conv = running.chat()

    [unknown] = await conv.send("/a<b>c&d")

    assert unknown.text == "I don't know the command /a<b>c&d. See /help for what I can do."


async def test_messages_without_text_are_explained(running: RunningBot) -> None:
    conv = running.chat()
    update = running.api.message_update(conv.chat, conv.user)
    update["message"]["sticker"] = {
        "file_id": "s1",
        "file_unique_id": "s1u",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
    }
    running.api.push_update(update)

    reply = await conv.wait_for(lambda m: "only read text" in m.text)

    assert reply.text == "I can only read text. Send me your question as a message."


async def test_a_slow_answer_sends_typing_once(
    running: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search slower than the 5 s Telegram shows "typing" for still sends one chat action:
    repeating it for every waiting question made an overloaded bot slower still."""
    embedder = running.services.index.core.embedder
    encode = embedder.encode

    def slow_encode(texts: Sequence[str]) -> np.ndarray:
        time.sleep(5.5)
        return encode(texts)

    monkeypatch.setattr(embedder, "encode", slow_encode)
    conv = running.chat()
    api = running.api
    api.push_update(api.message_update(conv.chat, conv.user, "Did the volcano erupt?"))

    await api.wait_until(lambda: api.calls_of("sendMessage"), 20, what="the answer")

    [answer] = api.calls_of("sendMessage")
    assert answer.params["text"].startswith("🔎")
    assert len(api.calls_of("sendChatAction")) == 1
