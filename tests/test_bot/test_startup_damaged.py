"""Start-up with a damaged database: the index's own one-line message, not advice about
folders that would not help."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import StartupError, open_services
from bot.settings import BotSettings
from tests.fakes import HashEmbedder


async def test_a_garbage_article_database_is_named_with_what_to_do(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    database = data / "articles.sqlite3"
    database.write_bytes(b"this is not a database, just text " * 200)
    before = database.read_bytes()
    settings = BotSettings(_env_file=None, data_dir=data, samples_dir=None)  # type: ignore[call-arg]

    with pytest.raises(StartupError) as refused:
        await open_services(settings, HashEmbedder())

    message = str(refused.value)
    assert "\n" not in message
    assert str(database) in message and "damaged" in message
    assert "writable folder" not in message
    assert database.read_bytes() == before  # left as it was
