"""``python -m bot chat``: the same bot in a terminal, driven here by scripted input."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.app import StartupError
from bot.chat import chat_language, render_html, run_chat
from bot.settings import BotSettings
from tests import factories
from tests.fakes import HashEmbedder

CYRILLIC_QUESTION = "Что извергалось возле деревни?"


@pytest.fixture(autouse=True)
def english_locale(monkeypatch: pytest.MonkeyPatch) -> None:
    """A C locale, whatever the machine's: the chat speaks the locale's language."""
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)


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


async def chat(settings: BotSettings, *lines: str, language: str | None = None) -> str:
    out = io.StringIO()
    await run_chat(
        settings, lines=lines, out=out, embedder=HashEmbedder(), color=False, language=language
    )
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


async def test_chat_in_russian_says_everything_in_russian(tmp_path: Path) -> None:
    """--language ru: the chat's own lines, the bot's replies, and the honest reply to a
    Cyrillic question, all in Russian; the choice is kept for the next chat."""
    settings = chat_settings(tmp_path)

    out = await chat(settings, "/start", CYRILLIC_QUESTION, "/frobnicate", ":9", language="ru")

    assert out.startswith("Открываю индекс (при первом запуске модель загружается не сразу)…")
    assert "Новостной бот, чат в терминале. Задайте вопрос; /help — список команд" in out
    assert "Здравствуйте, *читатель*! Спросите меня" in out
    assert "Я понимаю вопросы только на английском: статьи, по которым я ищу" in out
    assert "🔎" not in out  # the Cyrillic question was not searched
    assert "Я не знаю команды /frobnicate." in out
    assert "  ⓘ Кнопки 9 нет." in out
    assert "I don't know" not in out and "There is no button" not in out

    again = await chat(settings, "/frobnicate")  # no --language: the kept choice

    assert "Я не знаю команды /frobnicate." in again


async def test_chat_follows_the_locale_and_switches_with_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LANG=az_AZ.UTF-8 makes an Azerbaijani chat; /language en inside it switches the bot
    and the chat's own lines to English from the next line on."""
    monkeypatch.setenv("LANG", "az_AZ.UTF-8")
    settings = chat_settings(tmp_path)

    out = await chat(settings, CYRILLIC_QUESTION, ":9", "/language en", ":9", "/frobnicate")
    azerbaijani, english = out.split("/language ru (en, ru, az)", 1)

    assert "İndeks açılır (ilk dəfə modelin yüklənməsi bir az vaxt aparır)…" in azerbaijani
    assert "Xəbər botu, terminalda çat. Sual yazın; /help — əmrlərin siyahısı" in azerbaijani
    assert "Mən yalnız ingilis dilində olan sualları başa düşürəm" in azerbaijani
    assert "  ⓘ 9 nömrəli düymə yoxdur." in azerbaijani
    assert "I speak English here. Choose a language" in azerbaijani  # /language en's reply
    assert "  [1] ✅ English\n  [2] Русский\n  [3] Azərbaycanca" in english
    assert "  ⓘ There is no button 9." in english
    assert "I don't know the command /frobnicate." in english


async def test_chat_prompt_is_in_the_chat_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Typed at the terminal: the prompt follows the language too."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("/language ru\n/quit\n"))
    settings = chat_settings(tmp_path)

    await run_chat(settings, out=sys.stdout, embedder=HashEmbedder(), color=False, language="az")

    out = capsys.readouterr().out
    assert "siz> /language ru\n" in out  # the piped line echoed after the prompt
    assert "вы> /quit\n" in out


@pytest.mark.parametrize(
    ("environ", "language"),
    [
        ({"LANG": "ru_RU.UTF-8"}, "ru"),
        ({"LANG": "az_AZ.UTF-8", "LC_MESSAGES": "ru_RU.UTF-8"}, "ru"),
        ({"LANG": "ru_RU.UTF-8", "LC_ALL": "az_AZ.UTF-8"}, "az"),
        ({"LANG": "ru_RU.UTF-8", "LC_ALL": ""}, "ru"),  # set but empty: not a locale
        ({"LANG": "fr_FR.UTF-8"}, "en"),  # a language the bot does not speak
        ({"LANG": "C.UTF-8"}, "en"),
        ({}, "en"),
    ],
)
def test_the_chat_language_is_the_locale_s_when_the_bot_speaks_it(
    environ: dict[str, str], language: str
) -> None:
    assert chat_language(None, environ) == language
    assert chat_language("az", environ) == "az"  # --language wins


def test_an_unknown_language_option_is_one_clear_error(tmp_path: Path) -> None:
    """``python -m bot chat --language fr`` says which languages there are, and exits 2."""
    env = {"PATH": os.environ.get("PATH", ""), "DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "chat", "--language", "fr"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 2
    assert done.stderr == "error: --language takes one of en, ru, az, not 'fr'\n"
    assert done.stdout == ""  # stopped before opening the index
