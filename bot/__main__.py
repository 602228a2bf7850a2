"""``python -m bot``: run the bot (polling, or webhook when WEBHOOK_URL is set), all in one
process; ``python -m bot web`` and ``python -m bot worker`` for the roles of a scaled
deployment; ``python -m bot chat`` for the local terminal chat, ``python -m bot healthcheck``
for Docker."""

from __future__ import annotations

import argparse
import asyncio
import sys

from bot.heartbeat import healthcheck
from bot.log import settings_secrets, setup_logging
from bot.settings import BotSettings, SettingsError, load_settings
from index.settings import describe_settings

COMMANDS = {
    "run": "serve Telegram: long polling, or a webhook server when WEBHOOK_URL is set, plus "
    "feeds, alert delivery, digests and /reindex, all in one process (default)",
    "web": "a webhook replica (WEBHOOK_URL, WEBHOOK_SECRET): answers updates only; run any "
    "number behind a load balancer, sharing DATABASE_URL (and REDIS_URL) with the workers",
    "worker": "feeds, alert delivery, digests and /reindex jobs, no updates; run any number "
    "beside web replicas, sharing DATABASE_URL (and REDIS_URL)",
    "chat": "chat with the bot in this terminal: no token, no network",
    "healthcheck": "exit 0 if the running bot answers /healthz (with --ready: /readyz) on "
    "WEBHOOK_PORT or METRICS_PORT, or else its heartbeat file is fresh",
    "bench": "load benchmark: many users ask at once (`python -m bot bench --help`); "
    "`bench replicas`: the webhook path with 1, 2, 3 replicas on PostgreSQL and Redis; "
    "`bench alerts`: worker processes sharing one outbox",
    "migrate": "copy DATA_DIR's SQLite data into PostgreSQL: migrate --to postgresql://…",
}


def parser() -> argparse.ArgumentParser:
    """The command line, with every setting listed in --help."""
    commands = "\n".join(f"  {name:<12} {about}" for name, about in COMMANDS.items())
    return argparse.ArgumentParser(
        prog="python -m bot",
        description="A Telegram bot that answers questions about news articles "
        "with quoted passages and their sources.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"commands:\n{commands}\n\nsettings (environment variables or .env):\n"
        f"{describe_settings(BotSettings)}",
    )


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, load the settings, run the command; return the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["bench", "replicas"]:  # the webhook path with 1, 2, 3… replicas
        from bot.scalebench import main as replicas_bench

        return replicas_bench(argv[2:])
    if argv[:2] == ["bench", "alerts"]:  # worker processes sharing one outbox
        from bot.alerts.workers_bench import main as alerts_bench

        return alerts_bench(argv[2:])
    if argv[:1] == ["bench"]:  # its own options; loads the benchmark only when asked
        from bot.bench import main as bench

        return bench(argv[1:])
    if argv[:1] == ["migrate"]:  # its own options (--to)
        from bot.migrate import main as migrate

        return migrate(argv[1:])
    args = parser()
    args.add_argument("command", nargs="?", default="run", choices=list(COMMANDS))
    args.add_argument("--ready", action="store_true", help="healthcheck: ask /readyz")
    args.add_argument(
        "--language",
        metavar="CODE",
        help="chat: speak en, ru or az, kept like a /language choice (default: the locale's, "
        "LC_ALL or LANG, when the bot speaks it, else English)",
    )
    options = args.parse_args(argv)
    command = options.command
    try:
        settings = load_settings(require_token=command != "chat")
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if command == "healthcheck":
        return healthcheck(settings, ready=options.ready)
    level = "WARNING" if command == "chat" else settings.log_level
    setup_logging(level, settings_secrets(settings), settings.log_format)
    # Imported here: aiogram, aiohttp and the index take seconds to load, which --help and
    # healthcheck should not wait for.
    from aiohttp import web

    from bot.app import StartupError, run_polling, run_worker, webhook_app
    from bot.chat import run_chat
    from bot.shutdown import exit_without_stuck_workers, run
    from bot.storage import StorageError

    if command == "web" and not (settings.webhook_url and settings.webhook_secret):
        print(
            "error: python -m bot web takes updates by webhook only: set WEBHOOK_URL and "
            "WEBHOOK_SECRET (or run python -m bot for long polling)",
            file=sys.stderr,
        )
        return 2
    try:
        if command == "chat":
            asyncio.run(run_chat(settings, language=options.language))
        elif command == "worker":
            run(run_worker(settings))
        elif command == "web":
            web.run_app(
                webhook_app(settings, role="web"),
                host=settings.webhook_host,
                port=settings.webhook_port,
            )
        elif settings.webhook_url:
            web.run_app(
                webhook_app(settings), host=settings.webhook_host, port=settings.webhook_port
            )
        else:
            run(run_polling(settings))
    except (StartupError, StorageError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    if command != "chat":  # stopped by a signal: do not wait for stuck downloads at exit
        exit_without_stuck_workers(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
