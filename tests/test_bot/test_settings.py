"""Settings and the command line: one clear line per bad setting, never the token."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.log import RedactingFilter
from bot.settings import BotSettings, SettingsError, load_settings
from tests.fake_telegram import FakeBotAPI

TOKEN = "123456789:AAHsecretSECRETsecret_-xyz"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No stray BOT_* variables or .env file from the machine running the tests."""
    for name in ("BOT_TOKEN", "ADMIN_IDS", "WEBHOOK_URL", "WEBHOOK_SECRET", "BOT_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_a_missing_token_says_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2

    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith("error: BOT_TOKEN is not set: get a token from @BotFather")
    assert "python -m bot chat" in error


def test_a_malformed_token_is_named_but_never_shown(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOT_TOKEN", "not-a-token-SECRETVALUE")

    assert main([]) == 2

    error = capsys.readouterr().err
    assert error.startswith("error: BOT_TOKEN is invalid: a token is the bot's numeric id")
    assert "SECRETVALUE" not in error


@pytest.mark.parametrize(
    ("raw", "expected"), [("111,222", {111, 222}), ("[111, 222]", {111, 222}), ("", set())]
)
def test_admin_ids_accept_a_list_or_json(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: set[int]
) -> None:
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("ADMIN_IDS", raw)

    assert load_settings().admin_ids == expected


def test_malformed_settings_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("ADMIN_IDS", "111,bob")
    with pytest.raises(SettingsError, match=r"^ADMIN_IDS is invalid: .*integer.*\.env"):
        load_settings()
    monkeypatch.setenv("ADMIN_IDS", "111")
    monkeypatch.setenv("WEBHOOK_URL", "https://bot.example.org/telegram")
    with pytest.raises(SettingsError, match=r"^WEBHOOK_SECRET is not set"):
        load_settings()
    monkeypatch.setenv("WEBHOOK_URL", "http://bot.example.org/telegram")
    monkeypatch.setenv("WEBHOOK_SECRET", "s3cret")
    with pytest.raises(SettingsError, match=r"^WEBHOOK_URL is invalid: Telegram only calls https"):
        load_settings()


def test_the_token_is_hidden_in_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKEN", TOKEN)

    settings = load_settings()

    assert TOKEN not in repr(settings) and TOKEN not in str(settings.model_dump())
    assert settings.token == TOKEN


def test_chat_mode_needs_no_token() -> None:
    settings = load_settings(require_token=False)

    assert settings.bot_token is None


def test_help_lists_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])

    out = capsys.readouterr().out
    for name in BotSettings.model_fields:
        assert name.upper() in out
    assert "chat" in out and "healthcheck" in out


def test_healthcheck_needs_a_fresh_heartbeat(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    assert main(["healthcheck"]) == 1
    assert "no heartbeat" in capsys.readouterr().err

    (tmp_path / "heartbeat").write_text(f"{time.time():.0f}\n")
    assert main(["healthcheck"]) == 0


def test_log_records_are_redacted() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "url %s", (f"/bot{TOKEN}/x",), None)

    RedactingFilter([TOKEN]).filter(record)

    assert record.getMessage() == "url /bot[redacted]/x"


@pytest.mark.parametrize("raw", ["ftp://feeds.example.org/a.rss", "feeds.example.org/a.rss", "x,"])
def test_feeds_must_be_http_urls(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    """FEEDS with anything but http(s) URLs is named in one clear line."""
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("FEEDS", f"https://feeds.example.org/ok.rss,{raw}")

    with pytest.raises(SettingsError, match=r"^FEEDS is invalid: .* is not an http:// or https://"):
        load_settings()


def test_feeds_accept_a_list_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("FEEDS", '["https://a.example.org/rss", "http://b.example.org/atom"]')

    assert load_settings().feeds == ["https://a.example.org/rss", "http://b.example.org/atom"]


@pytest.fixture
def run_main(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> Callable[..., Awaitable[tuple[int, str]]]:
    """``await run_main(**env)``: ``python -m bot`` with BOT_TOKEN=TOKEN and these settings,
    in a thread (it runs its own event loop); returns the exit code and stderr."""
    monkeypatch.setattr("bot.__main__.setup_logging", lambda *args: None)  # keep pytest's

    async def run(capsys: pytest.CaptureFixture[str], **env: str) -> tuple[int, str]:
        monkeypatch.setenv("BOT_TOKEN", TOKEN)
        monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        code = await asyncio.to_thread(main, [])
        gc.collect()  # an unclosed aiohttp session complains when collected
        error = capsys.readouterr().err
        assert "Unclosed" not in error + caplog.text
        assert TOKEN not in error + caplog.text
        return code, error

    return run


async def test_a_token_telegram_rejects_stops_before_loading_anything(
    run_main: Callable[..., Awaitable[tuple[int, str]]],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """A token the Bot API answers 401 to: one line, exit 2, no model loaded, no data written."""
    async with FakeBotAPI() as api:  # serves another token
        code, error = await run_main(
            capsys, BOT_API_URL=api.base_url, EMBEDDING_MODEL=str(tmp_path / "no-model")
        )

    assert code == 2 and error.count("\n") == 1
    assert error.startswith("error: BOT_TOKEN was rejected by the Bot API")
    assert not (tmp_path / "data").exists()


async def test_an_unreachable_bot_api_is_one_line(
    run_main: Callable[..., Awaitable[tuple[int, str]]], capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    code, error = await run_main(capsys, BOT_API_URL=f"http://127.0.0.1:{port}")

    assert code == 2 and error.count("\n") == 1
    assert error.startswith(f"error: cannot reach the Bot API at http://127.0.0.1:{port}")


async def test_a_model_that_cannot_load_is_one_line(
    run_main: Callable[..., Awaitable[tuple[int, str]]],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    async with FakeBotAPI(token=TOKEN) as api:
        code, error = await run_main(
            capsys, BOT_API_URL=api.base_url, EMBEDDING_MODEL=str(tmp_path / "no-model")
        )

    assert code == 2 and error.count("\n") == 1
    assert error.startswith("error: EMBEDDING_MODEL is unusable: cannot load embedding model")


async def test_a_data_dir_that_cannot_be_written_is_one_line(
    run_main: Callable[..., Awaitable[tuple[int, str]]],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    async with FakeBotAPI(token=TOKEN) as api:
        code, error = await run_main(
            capsys, BOT_API_URL=api.base_url, DATA_DIR=str(tmp_path / "a-file" / "data")
        )

    assert code == 2 and error.count("\n") == 1
    assert error.startswith(f"error: DATA_DIR {tmp_path / 'a-file' / 'data'} is not usable")
