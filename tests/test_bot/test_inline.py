"""Inline mode: ``@bot question`` offers the top hits; choosing one posts the quote."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fake_telegram import parse_html
from tests.test_bot.harness import RunningBot, StartBot


async def test_inline_query_offers_hits_with_quote_and_source(running: RunningBot) -> None:
    conv = running.chat()

    results = await conv.inline("volcano eruption village")

    first = results[0]
    assert first["type"] == "article"
    assert first["title"] == "Volcano erupts near village"
    assert first["description"].startswith("“The volcano erupted on Monday morning")
    assert first["description"].endswith("Daily Test · 1 May 2024")
    content = first["input_message_content"]
    assert content["parse_mode"] == "HTML"
    text, entities = parse_html(content["message_text"])
    assert "Volcano erupts near village · Daily Test · 1 May 2024 · A. Writer" in text
    assert {"blockquote", "bold", "text_link"} <= {entity["type"] for entity in entities}
    assert first["reply_markup"]["inline_keyboard"][0][0]["url"] == (
        "https://news.example.org/volcano"
    )
    assert len({result["id"] for result in results}) == len(results)


async def test_inline_results_page_with_the_offset(running: RunningBot) -> None:
    conv = running.chat()
    first_page = await conv.inline("the")
    assert conv.last_inline_answer is not None
    offset = conv.last_inline_answer["next_offset"]
    assert offset == "5"

    second_page = await conv.inline("the", offset=offset)

    assert {r["id"] for r in first_page}.isdisjoint({r["id"] for r in second_page})


async def test_short_or_fruitless_inline_queries_offer_a_way_to_the_bot(
    running: RunningBot,
) -> None:
    conv = running.chat()

    assert await conv.inline("") == []
    assert conv.last_inline_answer is not None
    assert conv.last_inline_answer["button"]["text"] == "Type a question about the news"

    assert await conv.inline("quantum chromodynamics lattice") == []
    button = conv.last_inline_answer["button"]
    assert button["text"] == "Nothing found: ask me in private"
    assert button["start_parameter"].startswith("q")


async def test_inline_queries_are_rate_limited_without_searching(
    start_bot: StartBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond three times RATE_LIMIT inline queries per window, a user gets an empty answer
    cached briefly for them alone, and no search runs."""
    running = await start_bot(rate_limit=2, rate_window=60)
    searches: list[str] = []
    search = running.services.index.search

    async def counting_search(question: str, *args: Any, **kwargs: Any) -> Any:
        searches.append(question)
        return await search(question, *args, **kwargs)

    monkeypatch.setattr(running.services.index, "search", counting_search)
    conv = running.chat()

    answered = [await conv.inline(f"volcano eruption village {n}") for n in range(6)]
    dropped = await conv.inline("volcano eruption village again")

    assert all(answered) and len(searches) == 6
    assert dropped == []
    assert conv.last_inline_answer is not None
    assert conv.last_inline_answer["cache_time"] <= 5 and conv.last_inline_answer["is_personal"]
    assert len(searches) == 6
