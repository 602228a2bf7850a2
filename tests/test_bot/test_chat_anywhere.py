"""``python -m bot chat`` for a new user: it finds the bundled sample wherever it is started,
says so when there is none, and answers every message, even one the rate limit drops."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from pathlib import Path

import pytest

from bot.app import NO_SAMPLES
from bot.chat import run_chat
from bot.rate_limit import FLOOD_NOTICE
from bot.settings import BUNDLED_SAMPLES, BotSettings
from tests.fakes import HashEmbedder

DEMO_QUESTION = "Who is carrying out demining in the liberated lands?"
SAMPLE_QUOTE = "Azerbaijani Mine Action Agency (ANAMA)"


@pytest.fixture(autouse=True)
def elsewhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Started from an empty folder, far from the repository, with no stray settings (and the
    C locale, so the chat speaks English)."""
    for name in ("SAMPLES_DIR", "DATA_DIR", "RATE_LIMIT", "RATE_WINDOW", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    folder = tmp_path / "somewhere"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


async def chat(*lines: str, **settings: object) -> str:
    values = {"min_relevance": 0.2, "min_hit_share": 0.0, **settings}  # the fake embedder
    out = io.StringIO()
    await run_chat(
        BotSettings(_env_file=None, **values),  # type: ignore[arg-type]
        lines=lines,
        out=out,
        embedder=HashEmbedder(),
        color=False,
    )
    return out.getvalue()


async def test_chat_started_elsewhere_indexes_the_bundled_sample(elsewhere: Path) -> None:
    out = await chat(DEMO_QUESTION, "/quit")

    assert f"First run: indexing the sample articles in {BUNDLED_SAMPLES}…" in out
    assert SAMPLE_QUOTE in out.split("🔎", 1)[1]  # in the answer
    assert (elsewhere / "data").is_dir()  # DATA_DIR stays relative to where it was started


async def test_chat_without_samples_says_so_in_one_line(elsewhere: Path) -> None:
    missing = elsewhere / "no-samples-here"

    out = await chat("/sources", "/quit", samples_dir=missing)

    [line] = [line for line in out.splitlines() if "no sample articles" in line]
    assert line == NO_SAMPLES.format(folder=missing)
    assert "python -m index ingest" in line


async def test_every_message_the_rate_limit_drops_gets_the_notice() -> None:
    out = await chat("/help", "/sources", "/sources", "/latest", "/quit", rate_limit=2)

    assert out.count(FLOOD_NOTICE) == 2  # the third and the fourth message


@pytest.mark.real_model
async def test_python_m_bot_chat_from_another_folder_answers_the_demo_question(
    elsewhere: Path,
) -> None:
    """The real command, as the README gives it, from a folder with no samples in it."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BOT_", "SAMPLES_", "DATA_DIR"))
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "chat",
        cwd=elsewhere,
        env={**env, "NO_COLOR": "1", "EMBEDDING_BACKEND": "torch"},  # no ONNX export here
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(
        process.communicate(f"{DEMO_QUESTION}\n/quit\n".encode()), 600
    )
    out = stdout.decode()

    assert process.returncode == 0, stderr.decode()[-2000:]
    assert f"First run: indexing the sample articles in {BUNDLED_SAMPLES}…" in out
    answer = out.split("🔎", 1)[1]
    assert "demining" in answer and "Azernews" in answer and "📄 1." in answer
