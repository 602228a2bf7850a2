"""The command line contract, run as a user would, with the real model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import SAMPLE, write_text

pytestmark = pytest.mark.real_model


def _run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "index", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_ingest_then_ask_as_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    other = write_text(tmp_path, "bank.txt", "bank")
    ingest = _run(tmp_path / "data", "ingest", str(SAMPLE), str(other), str(bad))
    assert ingest.returncode == 0, ingest.stderr
    assert "added 2, updated 0, unchanged 0, failed 1" in ingest.stdout
    assert f"failed: {bad}: invalid JSON" in ingest.stderr

    ask = _run(
        tmp_path / "data",
        "ask",
        "Who is clearing landmines in the liberated territories?",
        "--json",
        "-k",
        "2",
    )
    assert ask.returncode == 0, ask.stderr
    hits = json.loads(ask.stdout)
    assert 1 <= len(hits) <= 2
    assert set(hits[0]) == {
        "title",
        "outlet",
        "author",
        "published",
        "url",
        "passage",
        "quote",
        "score",
    }
    assert hits[0]["outlet"] == "Azernews" and hits[0]["published"] == "2022-06-21"
    assert "demining" in hits[0]["quote"].lower() or "mine" in hits[0]["quote"].lower()
    assert hits[0]["quote"] in hits[0]["passage"]

    text = _run(tmp_path / "data", "ask", "What is the recipe for banana bread?")
    assert "Nothing relevant found" in text.stdout

    stats = _run(tmp_path / "data", "stats")
    assert "articles     2" in stats.stdout and "all-MiniLM-L6-v2" in stats.stdout

    removed = _run(tmp_path / "data", "remove", "https://no.such/article")
    assert removed.returncode == 1 and "no article matches" in removed.stderr


def test_help_lists_every_setting() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "index", "--help"], capture_output=True, text=True, check=True
    )
    for name in (
        "DATA_DIR",
        "EMBEDDING_MODEL",
        "MAX_INPUT_BYTES",
        "PASSAGE_CHARS",
        "MIN_RELEVANCE",
        "FETCH_TIMEOUT",
    ):
        assert name in result.stdout
