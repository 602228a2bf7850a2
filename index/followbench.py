"""``python -m index bench follow --postgres URL``: how soon an article written by one
process is searchable in another on the same PostgreSQL database (``index/changes.py``).

Process A (this one, an ``IndexCore``) holds a slice of the BBC corpus and synthetic
passages up to the largest ``--sizes``; process B (a child, an ``ArticleIndex`` as the bot
runs it: LISTEN/NOTIFY and a poll every INDEX_SYNC_INTERVAL) opens the same database.
Then, 20 times: A adds one real article, and the time from A's commit to B's vector index
holding all its passages (checked every 2 ms; the keyword index lives in the database,
so only the vectors show following) is measured; a search in B then confirms the article
is its best hit. Also measured: one ``sync`` with nothing to do, and B's restart after A
removed 20 articles: caught up by replay, next to a rebuild from the stored vectors.

The database must hold no articles; its ``newsbot_index`` schema is dropped at the end.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import SecretStr

from index.bench import _fill, _percentiles, _sentence_pool, load_corpus
from index.core import IndexCore
from index.embedding import create_embedder
from index.errors import StorageError
from index.settings import IndexSettings
from index.storebench import _drop_schema

__all__ = ["run_follow_bench"]

TRIES = 20
BASE_ARTICLES = 40  # real articles A holds before the synthetic fill
NOOP_SYNCS = 200
POLL_SECONDS = 0.002
GIVE_UP_SECONDS = 30.0


def run_follow_bench(
    folder: str, settings: IndexSettings, postgres_url: str, size: int, *, as_json: bool = False
) -> int:
    """Print the figures (a table, or one JSON object with ``as_json``)."""
    say: Callable[[str], None] = (lambda _: None) if as_json else print
    articles = load_corpus(folder)
    base, added = articles[:BASE_ARTICLES], articles[BASE_ARTICLES : BASE_ARTICLES + TRIES]
    cache = (settings.model_cache_dir or settings.data_dir / "models").absolute()
    embedder = create_embedder(settings.model_copy(update={"model_cache_dir": cache}))
    embedder.encode(["warm-up"])
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="follow-bench-") as scratch:

        def process(name: str) -> IndexSettings:
            return settings.model_copy(
                update={
                    "data_dir": Path(scratch) / name,
                    "database_url": SecretStr(postgres_url),
                    "model_cache_dir": cache,
                }
            )

        a = IndexCore.open(process("a"), embedder)
        try:
            if a.stats().articles:
                raise StorageError(f"{a.store.where} holds articles: give an empty database")
            a.add_articles(base)
            _fill(a.store, size, _sentence_pool(a.store))
            a.sync()  # the fill wrote to the store directly: A follows it like any process
            say(f"process A holds {a.vectors.count:,} passages ({a.vectors.kind})")
            figures |= _follow(a, added, process("b"), say)
            figures |= _noop_sync(a, say)
            figures |= _restart(a, process, say)
        finally:
            a.close()
            _drop_schema(a)
    if as_json:
        print(json.dumps(figures))
    return 0


def _follow(
    a: IndexCore, added: list[Any], b_settings: IndexSettings, say: Callable[[str], None]
) -> dict[str, Any]:
    """A adds each article; B reports when its vector index holds the article's passages."""
    committed: list[float] = []
    replace_article = a.store.replace_article

    def timed_replace(*args: Any) -> Any:
        written = replace_article(*args)
        committed.append(time.time())  # the transaction has just committed
        return written

    a.store.replace_article = timed_replace  # type: ignore[method-assign,assignment]  # timed, restored below
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(target=_follower_main, args=(b_settings, theirs), daemon=True)
    child.start()
    try:
        opened = ours.recv()
        say(f"process B opened in {opened:.1f} s (vectors built from the database)")
        latencies: list[float] = []
        missed = 0
        for article in added:
            a.add_articles([article])
            ids = a.store.article_passage_ids(article.id)
            ours.send(("expect", ids, article.id, article.title))
            found, best = ours.recv()
            if found is None:
                missed += 1
                continue
            latencies.append(1000 * (found - committed[-1]))
            if not best:
                say(f"  note: B's best hit for {article.title!r} was another article")
        ours.send(("close",))
        ours.recv()
    finally:
        child.join(timeout=60)
        a.store.replace_article = replace_article  # type: ignore[method-assign]  # restored
    point = _percentiles(latencies) if latencies else {"p50": None, "p99": None}
    worst = round(max(latencies), 1) if latencies else None
    say(
        f"commit in A to searchable in B, {len(latencies)} articles (ms): "
        f"p50 {point['p50']}, max {worst}" + (f", {missed} never found" if missed else "")
    )
    return {
        "follow_p50_ms": point["p50"],
        "follow_max_ms": worst,
        "follow_missed": missed,
        "b_open_s": round(opened, 2),
    }


def _noop_sync(a: IndexCore, say: Callable[[str], None]) -> dict[str, Any]:
    a.sync()
    times = []
    for _ in range(NOOP_SYNCS):
        started = time.perf_counter()
        a.sync()
        times.append(1000 * (time.perf_counter() - started))
    point = _percentiles(times)
    say(f"one sync with nothing to do (ms): p50 {point['p50']}, p99 {point['p99']}")
    return {"noop_sync_p50_ms": point["p50"], "noop_sync_p99_ms": point["p99"]}


def _restart(
    a: IndexCore, process: Callable[[str], IndexSettings], say: Callable[[str], None]
) -> dict[str, Any]:
    """B was closed (its index saved); A removes articles; B reopens, and a process
    without a saved index opens, for comparison."""
    for info in a.latest(TRIES):
        a.remove(info.id)
    started = time.perf_counter()
    b = IndexCore.open(process("b"), a.embedder)
    replay = time.perf_counter() - started
    replayed, rebuilds = b.replayed, b.rebuilds
    b.close()
    quiet = logging.getLogger("index.core")
    level, quiet.level = quiet.level, logging.ERROR  # its rebuild is what is measured here
    try:
        started = time.perf_counter()
        fresh = IndexCore.open(process("c"), a.embedder)
        rebuild = time.perf_counter() - started
    finally:
        quiet.setLevel(level)
    fresh.close()
    how = "by replay" if not rebuilds else "REBUILT"
    say(
        f"B reopened after {TRIES} removals: caught up {how} of {replayed} entries in "
        f"{replay:.2f} s; a process without a saved index built its vectors in {rebuild:.2f} s"
    )
    return {
        "restart_replay_s": round(replay, 2),
        "restart_replayed": replayed,
        "restart_rebuilt": bool(rebuilds),
        "open_rebuild_s": round(rebuild, 2),
    }


def _follower_main(settings: IndexSettings, pipe: Connection) -> None:
    """Process B: an ArticleIndex following A; answers A's requests over ``pipe``."""
    logging.basicConfig(level=logging.ERROR)  # its first start rebuilds, as expected
    asyncio.run(_follower(settings, pipe))


async def _follower(settings: IndexSettings, pipe: Connection) -> None:
    from index.service import ArticleIndex

    started = time.perf_counter()
    index = await ArticleIndex.open(settings)
    pipe.send(time.perf_counter() - started)
    try:
        while True:
            request = await asyncio.to_thread(pipe.recv)
            if request[0] == "close":
                break
            _, ids, article_id, title = request
            wanted = np.array(ids, dtype=np.int64)
            deadline = time.monotonic() + GIVE_UP_SECONDS
            found = None
            while time.monotonic() < deadline:
                if np.isin(wanted, index.core.vectors.ids()).all():
                    found = time.time()
                    break
                await asyncio.sleep(POLL_SECONDS)
            hits = (await index.search(title, k=1)).hits
            pipe.send((found, bool(hits) and hits[0].article_id == article_id))
    finally:
        await index.close()
        pipe.send("closed")
