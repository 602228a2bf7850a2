"""``python -m index``: ingest, ask, stats, reindex, remove, check, backup, restore, eval,
bench. A failure is one line on stderr (``error: ...``) and exit status 1, never a traceback."""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from index.errors import ArticleIndexError, DamagedDatabaseError
from index.settings import IndexSettings, describe_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m index",
        description="Index news articles and answer questions with quoted passages.",
        epilog="Settings (environment variables or a .env file):\n"
        + describe_settings(IndexSettings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ingest = commands.add_parser("ingest", help="add files, folders (recursive) or article URLs")
    ingest.add_argument("sources", nargs="+", metavar="PATH_OR_URL")

    ask = commands.add_parser("ask", help="answer a question with the best passages")
    ask.add_argument("question")
    ask.add_argument("-k", type=int, default=3, help="number of hits (default 3)")
    ask.add_argument("--json", action="store_true", help="print a JSON list of hits")
    ask.add_argument("--outlet", action="append", default=[], help="only this outlet (repeatable)")
    ask.add_argument("--since", type=date.fromisoformat, help="published on or after YYYY-MM-DD")
    ask.add_argument("--until", type=date.fromisoformat, help="published on or before YYYY-MM-DD")
    ask.add_argument("--recent", action="store_true", help="prefer recent articles")

    commands.add_parser("stats", help="what the index holds")
    commands.add_parser("reindex", help="re-embed every passage and rebuild the vector index")
    remove = commands.add_parser("remove", help="remove an article by id or URL")
    remove.add_argument("article", metavar="ARTICLE_ID_OR_URL")
    commands.add_parser(
        "check", help="full integrity check of the database, and whether the vector index matches"
    )
    backup = commands.add_parser(
        "backup", help="copy the database to FILE (safe while the bot runs)"
    )
    backup.add_argument("file", type=Path, metavar="FILE")
    restore = commands.add_parser(
        "restore",
        help="replace the database with a checked backup and rebuild the vector index "
        "(stop the bot first)",
    )
    restore.add_argument("file", type=Path, metavar="FILE")

    evaluate = commands.add_parser(
        "eval", help="retrieval, quote and refusal quality on a SQuAD-format file"
    )
    evaluate.add_argument(
        "--squad",
        required=True,
        metavar="FILE",
        help="SQuAD v1.1/v2.0 or a file in its layout (e.g. ../shared/bench/news-quiz-2023.json)",
    )
    evaluate.add_argument("--json", action="store_true", help="print the figures as JSON")
    evaluate.add_argument("--limit", type=int, help="only the first N questions")
    evaluate.add_argument(
        "--every", type=_positive, default=1, metavar="N", help="only every Nth question"
    )
    evaluate.add_argument(
        "--refusal",
        action="store_true",
        help="also measure wrong refusals and wrong answers per threshold",
    )
    evaluate.add_argument(
        "--typos",
        action="store_true",
        help="also search the questions with one or two typos each (fixed seed)",
    )
    evaluate.add_argument("--typo-seed", type=int, default=2026, help="seed of the typos")
    evaluate.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="keep the embedded index here between runs (reused when file and settings match)",
    )

    bench = commands.add_parser("bench", help="ingestion throughput and query latency")
    bench.add_argument(
        "what",
        nargs="?",
        choices=["follow"],
        help="follow (with --postgres URL): how soon an article written by one process is "
        "searchable in another on the same database",
    )
    bench.add_argument("--corpus", default="../shared/corpus/bbc-news-2005")
    bench.add_argument("--sizes", default="10000,100000", help="passage counts to measure")
    bench.add_argument("--queries", type=int, default=300)
    bench.add_argument(
        "--articles", type=int, default=400, help="articles ingested for the throughput figure"
    )
    bench.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    bench.add_argument("--quick", action="store_true", help="skip the 1M-passage point")
    bench.add_argument(
        "--postgres",
        metavar="URL",
        help="instead: the store on SQLite next to PostgreSQL at URL (an empty database; "
        "its newsbot_index schema is dropped afterwards), ingestion and latency at the "
        "largest size",
    )
    return parser


def _positive(text: str) -> int:
    """A whole number of at least 1 (argparse turns the error into one line)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = IndexSettings()
    except Exception as error:  # pydantic's ValidationError names the setting
        print(f"error: invalid setting: {error}", file=sys.stderr)
        return 2
    if args.command == "eval":
        from index.evaluate import run_eval

        return run_eval(
            args.squad,
            settings,
            as_json=args.json,
            limit=args.limit,
            every=args.every,
            refusal=args.refusal,
            typos=args.typos,
            typo_seed=args.typo_seed,
            cache_dir=args.cache_dir,
        )
    if args.command == "bench" and args.what == "follow":
        from index.followbench import run_follow_bench

        if not args.postgres:
            print("error: bench follow needs --postgres URL (an empty database)", file=sys.stderr)
            return 2
        return run_follow_bench(
            args.corpus,
            settings,
            args.postgres,
            max(int(s) for s in args.sizes.split(",")),
            as_json=args.json,
        )
    if args.command == "bench" and args.postgres:
        from index.storebench import run_store_bench

        return run_store_bench(
            args.corpus,
            settings,
            args.postgres,
            max(int(s) for s in args.sizes.split(",")),
            args.queries,
            args.articles,
            as_json=args.json,
        )
    if args.command == "bench":
        from index.bench import run_bench

        return run_bench(
            args.corpus,
            settings,
            [int(s) for s in args.sizes.split(",")],
            args.queries,
            args.articles,
            as_json=args.json,
            million=not args.quick,
        )
    from sqlalchemy.exc import SQLAlchemyError

    from index.core import IndexCore

    try:
        if args.command in _MAINTENANCE:
            return _MAINTENANCE[args.command](settings, args)
        core = IndexCore.open(settings)
        try:
            return _COMMANDS[args.command](core, args)
        finally:
            core.close()
    except (ArticleIndexError, sqlite3.Error, OSError, SQLAlchemyError) as error:
        print(f"error: {_one_line(error, settings)}", file=sys.stderr)
        return 1


def _one_line(error: Exception, settings: IndexSettings) -> str:
    """What went wrong with the index's storage, and what to do, in one line."""
    from index.core import database_path
    from index.database import unwrap

    error = unwrap(error)  # type: ignore[assignment]
    if isinstance(error, sqlite3.DatabaseError) and error.sqlite_errorcode in (
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
    ):
        error = DamagedDatabaseError(database_path(settings), str(error))
    if isinstance(error, ArticleIndexError):
        return " ".join(str(error).split())
    if isinstance(error, OSError) and error.filename:
        return f"{error.filename}: {error.strerror or error}: DATA_DIR must be a writable folder"
    return (
        f"{database_path(settings)}: {' '.join(str(error).split())}: DATA_DIR must be a "
        "writable folder and the database a readable file"
    )


def _ingest(core, args) -> int:  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    with tqdm(total=0, unit="file", desc="ingesting", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        report = core.ingest(args.sources, progress=progress)
    for name, reason in report.failed:
        print(f"failed: {name}: {reason}", file=sys.stderr)
    for name, kept in report.duplicates:
        print(f"duplicate: {name}: same article as {kept}", file=sys.stderr)
    if report.skipped:
        names = ", ".join(report.skipped[:5]) + (", \u2026" if len(report.skipped) > 5 else "")
        print(
            f"skipped {len(report.skipped)} file(s) that are not articles by their names: "
            f"{names} (name a file explicitly to ingest it)",
            file=sys.stderr,
        )
    print(f"{report.summary()} ({report.passages} passages indexed)")
    return 1 if report.failed and not (report.added or report.updated or report.unchanged) else 0


def _ask(core, args) -> int:  # type: ignore[no-untyped-def]
    from index.models import SearchFilters

    filters = SearchFilters(
        outlets=tuple(args.outlet), since=args.since, until=args.until, prefer_recent=args.recent
    )
    result = core.search(args.question, k=max(args.k, 1), filters=filters)
    if args.json:
        print(json.dumps([hit.to_json() for hit in result.hits], ensure_ascii=False, indent=2))
        return 0
    if not result.hits:
        print("Nothing relevant found. Try other words, or fewer filters.")
        return 0
    for number, hit in enumerate(result.hits, start=1):
        source = ", ".join(str(part) for part in (hit.outlet, hit.published, hit.author) if part)
        print(f"{number}. {hit.title}" + (f" ({source})" if source else ""))
        if hit.url:
            print(f"   {hit.url}")
        print(f"   \u201c{hit.quote}\u201d  [score {hit.score:.3f}]\n")
    return 0


def _stats(core, args) -> int:  # type: ignore[no-untyped-def]
    stats = core.stats()
    last = f"{stats.last_ingest:%Y-%m-%d %H:%M} UTC" if stats.last_ingest else "never"
    print(
        f"articles     {stats.articles}\n"
        f"passages     {stats.passages}\n"
        f"outlets      {stats.outlets}\n"
        f"vectors      {stats.vectors}\n"
        f"model        {stats.model} ({stats.dimension} dimensions)\n"
        f"index size   {stats.index_bytes / 1e6:.1f} MB, built {stats.built_at:%Y-%m-%d %H:%M}\n"
        f"last ingest  {last}"
    )
    return 0


def _reindex(core, args) -> int:  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    with tqdm(total=0, unit="passage", desc="re-embedding", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        report = core.reindex(progress)
    print(
        f"reindexed {report.articles} articles, {report.passages} passages "
        f"in {report.seconds:.1f} s"
    )
    return 0


def _remove(core, args) -> int:  # type: ignore[no-untyped-def]
    info = core.remove(args.article)
    if info is None:
        print(f"no article matches {args.article!r}", file=sys.stderr)
        return 1
    print(f"removed {info.title!r} ({info.passages} passages)")
    return 0


def _check(settings: IndexSettings, args: argparse.Namespace) -> int:
    from index.maintenance import check

    report = check(settings)
    if not report.exists:
        print(f"database   {report.database}: none yet (created by the first ingest)")
        return 0
    if not report.sound:
        print(f"database   {report.database}: DAMAGED")
        for problem in report.problems:
            print(f"  {problem}")
        print(
            "what to do: restore a backup with `python -m index restore FILE`; the damaged "
            "file is kept beside as articles.sqlite3.before-restore"
        )
        return 1
    how = "integrity_check" if isinstance(report.database, Path) else "connected"
    print(
        f"database   {report.database}: ok ({how}), "
        f"{report.articles} articles, {report.passages} passages\n"
        f"vectors    {report.vectors}"
    )
    return 0


def _backup(settings: IndexSettings, args: argparse.Namespace) -> int:
    from index.maintenance import backup

    articles, passages = backup(settings, args.file)
    print(f"backed up {articles} articles, {passages} passages to {args.file}")
    return 0


def _restore(settings: IndexSettings, args: argparse.Namespace) -> int:
    from index.maintenance import restore

    report = restore(settings, args.file)
    kept = f"; the replaced database is kept as {report.previous}" if report.previous else ""
    print(f"restored {report.articles} articles, {report.passages} passages from {args.file}{kept}")
    return 0


_COMMANDS = {
    "ingest": _ingest,
    "ask": _ask,
    "stats": _stats,
    "reindex": _reindex,
    "remove": _remove,
}
_MAINTENANCE = {"check": _check, "backup": _backup, "restore": _restore}
