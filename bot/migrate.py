"""``python -m bot migrate --to postgresql://…``: copy a SQLite DATA_DIR into PostgreSQL.

The article store goes first (articles and passages with their vectors, no re-embedding:
``index.transfer``), then the bot's data (chats, feeds, seen entries, stories,
subscriptions, the outbox, ask prompts: ``bot.storage.copy_bot_data``). Rows the target
already has are left alone, so running it twice copies nothing twice.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.storage import BotStore, copy_bot_data
from bot.storage.database import SQLITE_FILE as BOT_FILE
from bot.storage.database import sqlite_url
from index.core import database_path
from index.database import database_url
from index.errors import ArticleIndexError
from index.settings import IndexSettings
from index.store import Store
from index.transfer import copy_articles

__all__ = ["main", "migrate"]


def main(argv: list[str]) -> int:
    """``python -m bot migrate --to URL``: copy, print what was copied; errors in one line."""
    import argparse
    import sys

    from bot.storage import StorageError

    parser = argparse.ArgumentParser(
        prog="python -m bot migrate",
        description="Copy the SQLite databases in DATA_DIR (articles with their vectors, "
        "chats, feeds, subscriptions, the outbox) into PostgreSQL. Rows already there are "
        "left alone: a second run copies nothing. Then set DATABASE_URL to the same URL.",
    )
    parser.add_argument("--to", required=True, metavar="URL", help="postgresql://user:pw@host/db")
    args = parser.parse_args(argv)
    try:
        for line in migrate(IndexSettings(), args.to):
            print(line)
    except (ArticleIndexError, StorageError) as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    return 0


def migrate(settings: IndexSettings, to: str) -> list[str]:
    """Copy DATA_DIR's SQLite databases into the database at ``to``; the lines to print.
    Raises ``ArticleIndexError`` or the bot's ``StorageError`` (one line each)."""
    target_url = database_url(settings.data_dir, to)
    if target_url.get_backend_name() != "postgresql":
        raise ArticleIndexError("--to must be a postgresql://… URL")
    lines = []
    articles = database_path(settings)
    target = Store(target_url)  # connects and migrates: a wrong URL fails here
    try:
        if articles.exists():
            source = Store(articles)
            try:
                report = copy_articles(source, target)
            finally:
                source.close()
            lines.append(
                f"articles: {report.articles} copied ({report.passages} passages with their "
                f"vectors), {report.unchanged} already there"
            )
        else:
            lines.append(f"articles: none ({articles} does not exist)")
    finally:
        target.close()
    bot_file = settings.data_dir / BOT_FILE
    if bot_file.exists():
        copied = asyncio.run(_copy_bot(bot_file, to))
        lines.append(
            "bot data: " + ", ".join(f"{n} {table}" for table, n in copied.items()) + " copied"
        )
    else:
        lines.append(f"bot data: none ({bot_file} does not exist)")
    return lines


async def _copy_bot(path: Path, to: str) -> dict[str, int]:
    source = BotStore.from_url(sqlite_url(path))
    target = BotStore.from_settings(path.parent, to)
    try:
        return await copy_bot_data(source, target)
    finally:
        await source.close()
        await target.close()
