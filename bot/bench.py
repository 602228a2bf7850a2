"""``python -m bot bench``: many users ask at once; how fast does the bot answer them?

N distinct users (500 by default) each send Q questions (the next one when the previous
reply arrives) to the bot wired as in production: the real aiogram ``Bot`` and
``Dispatcher`` of `bot.app`, the services opened from DATA_DIR with the configured embedding
backend, and long polling, the default way updates arrive (webhook mode only changes how
they are fetched). The index holds synthetic passages recombined from real embedded BBC
sentences, as ``python -m index bench`` builds them.

The users and Telegram are one child process: the project's fake Bot API
(``tests/fake_telegram.py``, spec-validated) on 127.0.0.1, so its work does not run on the
bot's event loop. It queues every user's first question at once, times each question from
the getUpdates answer that delivers it to the sendMessage that answers it, and gives up on
replies after ``--timeout`` seconds. Run it from the project root (it needs ``tests/``).

Each user asks fewer questions than RATE_LIMIT allows, so the per-user rate limit never
drops one: any question without a reply is counted as dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import json
import logging
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.bench_users import ROOT, STARTUP_TIMEOUT, UsersProcess, question_plan, reply_figures

if TYPE_CHECKING:  # imported where used: the users' process needs none of them
    from bot.settings import BotSettings
    from index import Embedder

__all__ = [
    "BenchOptions",
    "BenchResult",
    "bench_settings",
    "prepare_index",
    "run_bench",
    "users_side",
]

log = logging.getLogger(__name__)

CORPUS = ROOT.parent / "shared" / "corpus" / "bbc-news-2005"
TOKEN = "123456:BENCH-TOKEN"
FIRST_USER = 7_000_000
BUILT_MARK = "bench-index-complete"  # in a --cache folder: the index there is whole


@dataclass(frozen=True, slots=True)
class BenchOptions:
    users: int = 500
    questions: int = 1  # per user, each sent when the previous one is answered
    passages: int = 100_000
    articles: int = 300  # real BBC articles embedded; their sentences make the passages
    timeout: float = 120.0  # seconds to wait for every reply once the questions are sent
    corpus: Path = CORPUS
    cache: Path | None = None  # keep the built index here and reuse it next time
    profile: Path | None = None  # write a cProfile of the event loop's CPU time here


@dataclass(frozen=True, slots=True)
class BenchResult:
    mode: str
    model: str
    users: int
    questions_per_user: int
    passages: int
    questions: int
    replied: int
    answered: int  # replies with hits
    not_found: int  # "I found nothing about ..." replies
    other: int  # any other reply (a flood notice or an apology would land here)
    dropped: int  # questions with no reply before the timeout
    duplicates: int  # replies beyond one per question
    seconds: float  # from the first questions sent to the last reply
    questions_per_s: float
    reply_p50_ms: float
    reply_p99_ms: float
    reply_max_ms: float
    typing_p50_ms: float  # update delivered -> "typing" received: dispatch, before the search
    bot_cpu_ms_per_question: float  # the bot process, every thread
    event_loop_cpu_ms_per_question: float  # of which its event loop's thread
    fake_api_cpu_ms_per_question: float  # the users' side and fake Bot API
    build_seconds: float


async def run_bench(
    options: BenchOptions,
    embedder: Embedder | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> BenchResult:
    """Build the index, start the users' side and the bot, ask, and tally the replies.
    ``embedder`` replaces the configured model and ``overrides`` any setting (tests)."""
    from index.bench import load_corpus

    settings = bench_settings(overrides)
    if options.questions > settings.rate_limit:
        raise ValueError(
            f"--questions {options.questions} is more than RATE_LIMIT ({settings.rate_limit}) "
            "allows a user: the rate limit would drop some"
        )
    corpus = load_corpus(str(options.corpus))
    if not corpus:
        raise ValueError(f"no articles in {options.corpus}: pass --corpus")
    with tempfile.TemporaryDirectory(prefix="bot-bench-") as scratch:
        started = time.perf_counter()
        settings, embedder = await prepare_index(settings, options, corpus, embedder, Path(scratch))
        for stale in settings.data_dir.glob("bot.sqlite3*"):  # the bot's state from a past run
            stale.unlink()
        build_seconds = time.perf_counter() - started
        plan = question_plan(corpus, options.users, options.questions)
        users = await UsersProcess.start(
            "import bot.bench as b; b.users_side()", {"plan": plan, "patience": options.timeout}
        )
        try:
            settings = settings.model_copy(update={"bot_api_url": users.base_url})
            profiler = cProfile.Profile(time.thread_time) if options.profile else None
            tally, bot_cpu, model = await _serve(
                settings, embedder, users, options.timeout, profiler
            )
        finally:
            await users.close()
    if profiler and options.profile:
        profiler.dump_stats(options.profile)
    return _result(options, tally, bot_cpu, build_seconds, model)


def bench_settings(overrides: Mapping[str, Any] | None = None) -> BotSettings:
    """The bot's settings in a bench: its token; no webhook, samples, feeds or admins;
    DATA_DIR to be replaced by the index's folder; ``overrides`` on top."""
    from bot.settings import BotSettings

    return BotSettings(
        **{
            "data_dir": Path(),
            "bot_token": TOKEN,
            "webhook_url": None,
            "samples_dir": None,
            "feeds": [],
            "admin_ids": [],
            **(overrides or {}),
        }
    )


async def prepare_index(
    settings: BotSettings,
    options: BenchOptions,
    corpus: Sequence[Any],
    embedder: Embedder | None,
    scratch: Path,
    say: Callable[[str], object] = lambda _: None,
) -> tuple[BotSettings, Embedder | None]:
    """The bench's index (``options.passages`` passages made of the first
    ``options.articles`` articles of ``corpus``), built in ``scratch``, or under
    ``options.cache`` unless a whole one is there; ``say`` tells of a build. The settings
    with DATA_DIR on it, and the embedder (loaded once by a build)."""
    if options.cache is None:
        folder = scratch
    else:
        folder = options.cache / _cache_name(settings, options, embedder)
    settings = settings.model_copy(update={"data_dir": folder})
    if not (folder / BUILT_MARK).exists():
        say(f"building the index ({options.passages:,} passages) in {folder}…")
        embedder = await asyncio.to_thread(
            _build_index, settings, corpus[: options.articles], options.passages, embedder
        )
    return settings, embedder


def _cache_name(settings: BotSettings, options: BenchOptions, embedder: Embedder | None) -> str:
    """A folder name per model, backend and size, so a cached index is never re-embedded."""
    model = embedder.name if embedder else settings.embedding_model
    backend = "" if embedder else getattr(settings, "embedding_backend", "")
    name = f"{model}-{backend}-{options.passages}p-{options.articles}a"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _build_index(
    settings: BotSettings, articles: Sequence[Any], passages: int, embedder: Embedder | None
) -> Embedder:
    """Embed ``articles`` and fill the index to ``passages`` with synthetic passages made of
    their sentences; save it to DATA_DIR and return the embedder (loaded once)."""
    from index import IndexCore
    from index.bench import _fill as fill_synthetic
    from index.bench import _sentence_pool as sentence_pool
    from index.core import vector_index_from_store

    shutil.rmtree(settings.data_dir, ignore_errors=True)  # a build that did not finish
    core = IndexCore.open(settings, embedder)
    try:
        core.add_articles(articles)
        fill_synthetic(core.store, passages, sentence_pool(core.store))
        core.vectors = vector_index_from_store(
            core.store, core.embedder.dimension, core.embedder.name
        )
        core.save()
    finally:
        core.close()
    (settings.data_dir / BUILT_MARK).touch()
    return core.embedder


async def _serve(
    settings: BotSettings,
    embedder: Embedder | None,
    users: UsersProcess,
    patience: float,
    profiler: cProfile.Profile | None,
) -> tuple[dict[str, Any], tuple[float, float], str]:
    """Run the bot as ``bot.app.run_polling`` does until the users' side reports (they wait
    ``patience`` seconds for their replies); return its tally, the CPU seconds of the bot
    process and of its event loop meanwhile, and the name of the embedding model.
    ``profiler`` profiles the event loop's CPU time meanwhile."""
    from bot.app import check_bot, create_bot, create_dispatcher, open_services

    bot = create_bot(settings)
    try:
        await check_bot(bot, settings)
        services = await open_services(settings, embedder)
        model = services.index.core.embedder.name
        memory = services.index.core.keywords_in_memory
        if memory is not None:  # a large index's keyword query: timed once built, as it runs
            await asyncio.to_thread(memory.wait)
        answering: set[asyncio.Task[Any]] = set()
        try:
            dispatcher = create_dispatcher(services)
            await bot.delete_webhook()
            polling = asyncio.create_task(
                dispatcher.start_polling(
                    bot,
                    handle_signals=False,
                    allowed_updates=dispatcher.resolve_used_update_types(),
                )
            )
            try:
                await users.read(STARTUP_TIMEOUT)  # the bot polls; every first question queued
                cpu, loop_cpu = _cpu_seconds(), time.thread_time()
                if profiler:
                    profiler.enable()  # this thread only: the event loop
                tally = await users.read(patience + 30.0)  # their own deadline bounds it
                if profiler:
                    profiler.disable()
                cpu, loop_cpu = _cpu_seconds() - cpu, time.thread_time() - loop_cpu
            finally:
                with contextlib.suppress(RuntimeError):  # polling never started
                    await dispatcher.stop_polling()
                await polling
                # Questions still being answered (after a timeout) use the index from worker
                # threads: closing it under them would crash. aiogram keeps their tasks here.
                answering = set(dispatcher._handle_update_tasks)
                if answering:
                    await asyncio.wait(answering, timeout=patience)
                answering = {task for task in answering if not task.done()}
        finally:
            if not answering:
                await services.index.close()
            else:
                log.warning("%d questions still being answered: index left open", len(answering))
    finally:
        await bot.session.close()
    return tally, (cpu, loop_cpu), model


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _result(
    options: BenchOptions,
    tally: dict[str, Any],
    bot_cpu: tuple[float, float],
    build_seconds: float,
    model: str,
) -> BenchResult:
    figures = reply_figures(tally, options.users * options.questions, tail=99)
    replied = figures["replied"]
    return BenchResult(
        mode="long polling",
        model=model,
        users=options.users,
        questions_per_user=options.questions,
        passages=options.passages,
        **figures,
        typing_p50_ms=1000 * statistics.median(tally["to_typing"])
        if tally["to_typing"]
        else float("nan"),
        bot_cpu_ms_per_question=1000 * bot_cpu[0] / max(replied, 1),
        event_loop_cpu_ms_per_question=1000 * bot_cpu[1] / max(replied, 1),
        fake_api_cpu_ms_per_question=1000 * tally["cpu"] / max(replied, 1),
        build_seconds=build_seconds,
    )


# ------------------------------------------------------------------- the users' process


def users_side() -> None:
    """The child process's entry: read the plan on stdin, serve, report on stdout."""
    spec = json.loads(sys.stdin.readline())
    asyncio.run(_users_side(spec["plan"], spec["patience"]))


async def _users_side(plan: list[list[str]], patience: float) -> None:
    from bot.bench_users import emit, note_reply, note_typing, tally_replies
    from tests.fake_telegram import FakeBotAPI, FakeChat, FakeUser

    class UsersAPI(FakeBotAPI):
        """The fake Bot API, timing each question from its delivery to its reply and
        sending a user's next question when the previous one is answered."""

        def __init__(self) -> None:
            super().__init__(TOKEN)
            self.delivered: dict[int, float] = {}  # update id -> when getUpdates returned it
            self.asked: dict[int, list[int]] = {}  # chat id -> update ids of its questions
            self.replies: dict[int, list[tuple[float, str]]] = {}
            self.typing: dict[int, list[float]] = {}  # chat id -> when "typing" arrived

        def ask(self, number: int) -> None:
            user = FakeUser(id=FIRST_USER + number, first_name=f"User {number}")
            chat = FakeChat.private(user)
            question = plan[number][len(self.asked.get(user.id, []))]
            update_id = self.push_update(self.message_update(chat, user, question))
            self.asked.setdefault(user.id, []).append(update_id)

        async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
            batch = await super()._get_updates(params)
            now = time.monotonic()
            for update in batch:
                self.delivered.setdefault(update["update_id"], now)
            return batch

        def _send_chat_action(self, params: dict[str, Any]) -> bool:
            note_typing(self, params)
            return super()._send_chat_action(params)

        def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
            message = super()._send_message(params)
            number = note_reply(self, params, plan, FIRST_USER)
            if number is not None and len(self.replies[FIRST_USER + number]) < len(plan[number]):
                self.ask(number)
            return message

        def done(self) -> bool:
            return sum(map(len, self.replies.values())) >= sum(map(len, plan))

    async with UsersAPI() as api:
        emit({"base_url": api.base_url})
        await api.wait_until(
            lambda: api.calls_of("getUpdates"), STARTUP_TIMEOUT, what="the bot to poll"
        )
        cpu = time.process_time()
        sent = time.monotonic()
        for number in range(len(plan)):
            api.ask(number)
        emit({"started": True})
        with contextlib.suppress(AssertionError):
            await api.wait_until(api.done, patience, what="every reply")
        cpu = time.process_time() - cpu
        emit(tally_replies(api, sent, cpu))
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF


# ------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bot bench``: parse the options, run, print (or ``--json``)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m bot bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = BenchOptions()
    parser.add_argument("--users", type=int, default=defaults.users, help="users asking at once")
    parser.add_argument(
        "--questions", type=int, default=defaults.questions, help="questions per user (in turn)"
    )
    parser.add_argument(
        "--passages", type=int, default=defaults.passages, help="passages in the index"
    )
    parser.add_argument(
        "--articles",
        type=int,
        default=defaults.articles,
        help="real BBC articles embedded to make the synthetic passages",
    )
    parser.add_argument(
        "--timeout", type=float, default=defaults.timeout, help="seconds to wait for replies"
    )
    parser.add_argument("--corpus", type=Path, default=defaults.corpus, help="the BBC corpus")
    parser.add_argument(
        "--cache",
        type=Path,
        metavar="DIR",
        help="keep the built index under DIR (one folder per model, backend and size) and "
        "reuse it next time; by default it is built in a temporary folder",
    )
    parser.add_argument(
        "--baseline",
        metavar="SETTINGS",
        help="also run with these settings, e.g. EMBEDDING_BACKEND=torch (comma-separated "
        "NAME=VALUE), and print both",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="write a cProfile of the event loop's CPU time while the users ask "
        "(python -m pstats FILE)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    options = BenchOptions(
        users=args.users,
        questions=args.questions,
        passages=args.passages,
        articles=args.articles,
        timeout=args.timeout,
        corpus=args.corpus,
        cache=args.cache,
        profile=args.profile,
    )
    try:
        baseline = _settings(args.baseline) if args.baseline else None
        result = asyncio.run(run_bench(options))
        compared = (
            asyncio.run(run_bench(options, overrides=baseline)) if baseline is not None else None
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    results = [result] if compared is None else [result, compared]
    if args.json:
        figures = asdict(result)
        if compared is not None:
            figures["baseline"] = {"settings": args.baseline, **asdict(compared)}
        print(json.dumps(figures))
    else:
        if compared is not None:
            print("== configured settings ==")
        print(report(result))
        if compared is not None:
            print(f"\n== baseline: {args.baseline} ==")
            print(report(compared))
    return 0 if all(r.dropped == 0 and r.duplicates == 0 for r in results) else 1


def _settings(text: str) -> dict[str, str]:
    """``NAME=VALUE,NAME=VALUE`` as setting overrides; unknown names are an error."""
    from bot.settings import BotSettings

    overrides = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or name.lower() not in BotSettings.model_fields:
            raise ValueError(f"--baseline: {item!r} is not NAME=VALUE for a setting")
        overrides[name.lower()] = value
    return overrides


def report(result: BenchResult) -> str:
    """The figures as a few lines of text."""
    return "\n".join(
        [
            f"{result.users} users x {result.questions_per_user} question(s) at once, "
            f"{result.passages:,} passages, model {result.model}, {result.mode}; "
            "fake Bot API on 127.0.0.1 in its own process",
            f"replies          {result.replied}/{result.questions} "
            f"({result.answered} answers, {result.not_found} nothing found, "
            f"{result.other} other), dropped {result.dropped}, duplicates {result.duplicates}",
            f"throughput       {result.questions_per_s:.1f} questions/s "
            f"({result.seconds:.2f} s for all)",
            f"reply latency    p50 {result.reply_p50_ms:.0f} ms, p99 {result.reply_p99_ms:.0f} ms, "
            f"max {result.reply_max_ms:.0f} ms (update delivered -> sendMessage received)",
            f"before search    p50 {result.typing_p50_ms:.0f} ms "
            '(update delivered -> the handler\'s "typing" received)',
            f"CPU per question bot {result.bot_cpu_ms_per_question:.1f} ms "
            f"(event loop {result.event_loop_cpu_ms_per_question:.1f} ms, worker threads "
            f"{result.bot_cpu_ms_per_question - result.event_loop_cpu_ms_per_question:.1f} ms), "
            f"fake API and users {result.fake_api_cpu_ms_per_question:.1f} ms",
            f"index build      {result.build_seconds:.1f} s (not timed above)",
        ]
    )
