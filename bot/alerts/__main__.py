"""Command line of the alerts feature.

python -m bot.alerts send [--until-empty]   drain the outbox (BOT_TOKEN, BOT_API_URL,
                                            DATABASE_URL or DATA_DIR)
python -m bot.alerts bench [--database-url URL]  sender throughput and outbox overhead
                                            (SQLite in a temporary folder, or PostgreSQL)
python -m bot.alerts calibrate --squad FILE  precision and recall of the topic threshold
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.alerts.sender import OutboxSender
from bot.alerts.settings import AlertSettings
from bot.storage import BotStore, StorageError
from bot.storage.database import sqlite_url


async def send(args: argparse.Namespace) -> int:
    settings = AlertSettings()
    token = os.environ.get("BOT_TOKEN")
    if not token:
        print("BOT_TOKEN is not set: export the bot's token first.", file=sys.stderr)
        return 2
    try:
        store = _store(settings, args.db)
        await store.open()
    except StorageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    api = os.environ.get("BOT_API_URL")
    session = AiohttpSession(api=TelegramAPIServer.from_base(api)) if api else AiohttpSession()
    bot = Bot(token, session=session)
    sender = OutboxSender(
        store,
        bot,
        rate=settings.alert_rate,
        chat_interval=settings.alert_chat_interval,
        concurrency=settings.alert_concurrency,
        max_attempts=settings.alert_max_attempts,
        lease=settings.alert_claim_lease,
    )
    try:
        await sender.run(until_empty=args.until_empty)
    finally:
        await bot.session.close()
        await store.close()
    print(
        f"sent {sender.stats.sent}, failed {sender.stats.failed}, "
        f"deactivated {sender.stats.deactivated}"
    )
    return 0


def _store(settings: AlertSettings, db: str | None) -> BotStore:
    """``--db FILE`` (a bot.sqlite3), else DATABASE_URL, else DATA_DIR/bot.sqlite3."""
    if db:
        return BotStore.from_url(sqlite_url(Path(db)))
    return BotStore.from_settings(settings.data_dir, settings.database_url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.alerts",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    sender = commands.add_parser("send", help="send what the outbox holds")
    sender.add_argument(
        "--db", help="a bot.sqlite3 file (default: DATABASE_URL, else DATA_DIR/bot.sqlite3)"
    )
    sender.add_argument("--until-empty", action="store_true", help="exit when nothing is due")
    bench = commands.add_parser("bench", help="one article to many subscribers, timed")
    bench.add_argument("--subscribers", type=int, default=10_000)
    bench.add_argument("--concurrency", type=int, default=4)
    bench.add_argument(
        "--database-url",
        help="also measure the outbox on this PostgreSQL database (in a temporary schema)",
    )
    calibrate = commands.add_parser("calibrate", help="precision/recall of topic thresholds")
    calibrate.add_argument("--squad", required=True, help="a SQuAD-format JSON file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "send":
        return asyncio.run(send(args))
    if args.command == "calibrate":
        from bot.alerts.calibrate import run as run_calibration
        from index import IndexSettings, SentenceTransformerEmbedder

        model = IndexSettings().embedding_model
        return run_calibration(args.squad, SentenceTransformerEmbedder(model))
    from bot.alerts.bench import run

    return asyncio.run(run(args.subscribers, args.concurrency, args.database_url))


if __name__ == "__main__":
    raise SystemExit(main())
