"""``python -m bot chat``: the same bot in a terminal, driven here by scripted input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from bot.app import StartupError
from bot.chat import render_html, run_chat
from bot.settings import BotSettings
from tests import factories
from tests.fakes import HashEmbedder


def chat_settings(tmp_path: Path) -> BotSettings:
    samples = tmp_path / "samples"
    samples.mkdir()
    records = [
        {
            "title": title,
            "text": text,
            "url": f"https://news.example.org/{topic}",
            "outlet": "Daily Test",
            "published": "2024-05-01",
        }
        for topic, (title, text) in factories.TOPICS.items()
    ]
    (samples / "topics.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    return BotSettings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        samples_dir=samples,
        min_relevance=0.2,
        min_hit_share=0.0,
    )


async def chat(settings: BotSettings, *lines: str) -> str:
    out = io.StringIO()
    await run_chat(settings, lines=lines, out=out, embedder=HashEmbedder(), color=False)
    return out.getvalue()


async def test_chat_answers_questions_readably_and_presses_buttons(tmp_path: Path) -> None:
    settings = chat_settings(tmp_path)

    out = await chat(settings, "what erupted near the village?", ":1", ":7", "/quit", "ignored")

    assert "First run: indexing the sample articles" in out
    assert "🔎 *what erupted near the village?*" in out
    assert "  │ *The volcano erupted on Monday morning, sending ash over the village.*" in out
    assert (
        "1. Volcano erupts near village (https://news.example.org/volcano) · Daily Test · "
        "1 May 2024" in out
    )
    assert "  [1] 📄 1. Volcano erupts near village" in out
    assert "  [1] 📄 1. Volcano erupts near village\n  [2] 📄 2. " in out
    assert "\n*Volcano erupts near village (https://news.example.org/volcano)*\n" in out  # :1
    assert "ⓘ There is no button 7." in out
    assert "ignored" not in out


async def test_chat_runs_commands_with_the_local_user_as_admin(tmp_path: Path) -> None:
    settings = chat_settings(tmp_path)
    await chat(settings, "/quit")  # first run: seeds the index

    out = await chat(settings, "/stats", "/reindex", "/frobnicate", "<b>?</b> & volcano")

    assert "First run" not in out
    assert "*Articles:* 3" in out
    assert "🔄 Reindexing" in out
    assert "I don't know the command /frobnicate." in out
    assert "🔎 *<b>?</b> & volcano*" in out  # user text shown verbatim, not as markup


def test_terminal_rendering_of_telegram_html() -> None:
    shown, plain = render_html(
        'A <b>bold</b> <i>word</i> and <a href="https://x.org/a?b=1&amp;c=2">a link</a>'
        "<blockquote>quoted <b>part</b></blockquote>\n&lt;tag&gt;",
        color=True,
    )

    assert shown == (
        "A \x1b[1mbold\x1b[22m \x1b[3mword\x1b[23m and a link (https://x.org/a?b=1&c=2)"
        "  │ quoted \x1b[1mpart\x1b[22m\n<tag>"
    )
    assert plain == "A bold word and a linkquoted part\n<tag>"


async def test_chat_has_subscriptions_and_feeds_wired_in(tmp_path: Path) -> None:
    """The full app wiring: subscription and feed commands work in the local chat."""
    settings = chat_settings(tmp_path)

    out = await chat(settings, "/subscribe volcano eruptions", "/subscriptions", "/feeds", "/quit")

    assert "Subscribed: about “volcano eruptions”" in out
    assert "1. about “volcano eruptions”" in out
    assert "I don't know the command" not in out
    assert (tmp_path / "data" / "bot.sqlite3").exists()


async def test_chat_with_an_unusable_model_stops_with_one_clear_error(tmp_path: Path) -> None:
    """A bad EMBEDDING_MODEL in chat mode is a StartupError (one line), not a traceback."""
    settings = chat_settings(tmp_path).model_copy(update={"embedding_model": "/no/such/model"})
    with pytest.raises(StartupError, match="EMBEDDING_MODEL is unusable"):
        await run_chat(settings, lines=["/quit"], out=io.StringIO(), color=False)
