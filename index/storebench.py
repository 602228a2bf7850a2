"""``python -m index bench --postgres URL``: the article store on SQLite next to PostgreSQL,
in the same run, with the same embedder and the same vectors.

1. Ingestion: a slice of the BBC corpus goes through the whole pipeline (parse, chunk,
   embed, store, FAISS) into both backends, a few articles to one, then the same to the
   other, in turns, so both see the same machine load. Passages per second each.
2. Latency: the SQLite store is filled with synthetic passages (``index.bench``), copied
   into PostgreSQL with their ids and vectors (``index.transfer``), and each backend gets
   a vector index built from its own store; questions are then searched one at a time,
   embedding included, on SQLite and PostgreSQL in turn. p50/p99 each, and the difference.

The PostgreSQL database must hold no articles; its ``newsbot_index`` schema is dropped at
the end.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr

from index.bench import _fill, _percentiles, _questions, _sentence_pool, _timed, load_corpus
from index.core import IndexCore, vector_index_from_store
from index.embedding import create_embedder
from index.errors import StorageError
from index.models import Article
from index.schema import SCHEMA
from index.settings import IndexSettings
from index.transfer import copy_articles

__all__ = ["run_store_bench"]

TURN_ARTICLES = 10  # articles ingested into one backend before the other's turn


def run_store_bench(
    folder: str,
    settings: IndexSettings,
    postgres_url: str,
    size: int,
    queries: int,
    ingest_articles: int = 400,
    *,
    as_json: bool = False,
) -> int:
    """Print the figures (a table, or one JSON object with ``as_json``)."""
    say: Callable[[str], None] = (lambda _: None) if as_json else print
    articles = load_corpus(folder)
    embedder = create_embedder(settings)
    embedder.encode(["warm-up"])
    with tempfile.TemporaryDirectory(prefix="store-bench-") as scratch:
        lite = IndexCore.open(
            settings.model_copy(
                update={"data_dir": Path(scratch) / "sqlite", "database_url": None}
            ),
            embedder,
        )
        pg = IndexCore.open(
            settings.model_copy(
                update={"data_dir": Path(scratch) / "pg", "database_url": SecretStr(postgres_url)}
            ),
            embedder,
        )
        try:
            if pg.stats().articles:
                raise StorageError(f"{pg.store.where} holds articles: give an empty database")
            figures = _ingestion(lite, pg, articles[:ingest_articles], say)
            say(f"\nquery latency at {size:,} passages, {queries} questions (ms):")
            pool = _sentence_pool(lite.store)
            started = time.perf_counter()
            _fill(lite.store, size, pool)
            filled = time.perf_counter() - started
            pg.close()  # the copy goes into the empty store, keeping the ids
            pg = _emptied(pg)
            started = time.perf_counter()
            report = copy_articles(lite.store, pg.store)
            copied = time.perf_counter() - started
            say(
                f"  filled SQLite in {filled:.0f} s; copied {report.passages:,} passages into "
                f"PostgreSQL in {copied:.0f} s"
            )
            for core in (lite, pg):
                core.vectors = vector_index_from_store(
                    core.store, embedder.dimension, embedder.name
                )
            figures |= _latency(lite, pg, _questions(articles, queries), say)
        finally:
            lite.close()
            pg.close()
            _drop_schema(pg)
    if as_json:
        print(json.dumps(figures))
    return 0


def _ingestion(
    lite: IndexCore, pg: IndexCore, sample: list[Article], say: Callable[[str], None]
) -> dict[str, object]:
    seconds = {"sqlite": 0.0, "postgresql": 0.0}
    passages = {"sqlite": 0, "postgresql": 0}
    for start in range(0, len(sample), TURN_ARTICLES):
        turn = sample[start : start + TURN_ARTICLES]
        for name, core in (("sqlite", lite), ("postgresql", pg)):
            began = time.perf_counter()
            passages[name] += core.add_articles(turn).passages
            seconds[name] += time.perf_counter() - began
    rates = {name: passages[name] / seconds[name] for name in seconds}
    say(f"ingestion of {len(sample)} articles, {passages['sqlite']} passages, whole pipeline:")
    for name, rate in rates.items():
        say(f"  {name:<11} {rate:8.1f} passages/s  ({seconds[name]:.1f} s)")
    say(f"  PostgreSQL / SQLite  {rates['postgresql'] / rates['sqlite']:.3f}")
    return {
        "ingest_sqlite_passages_per_s": round(rates["sqlite"], 1),
        "ingest_postgresql_passages_per_s": round(rates["postgresql"], 1),
        "ingest_ratio": round(rates["postgresql"] / rates["sqlite"], 3),
    }


def _latency(
    lite: IndexCore, pg: IndexCore, questions: list[str], say: Callable[[str], None]
) -> dict[str, object]:
    times: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
    for question in questions:
        for name, core in (("sqlite", lite), ("postgresql", pg)):
            times[name].append(_timed(core, question)[0])
    figures: dict[str, object] = {"passages": lite.vectors.count}
    say(f"  {'':<11} {'p50':>7} {'p99':>7} {'mean':>7}")
    for name, values in times.items():
        point = _percentiles(values)
        say(f"  {name:<11} {point['p50']:>7.2f} {point['p99']:>7.2f} {point['mean']:>7.2f}")
        figures[f"query_{name}"] = point
    differences = [b - a for a, b in zip(times["sqlite"], times["postgresql"], strict=True)]
    extra = statistics.median(differences)
    say(f"  PostgreSQL adds {extra:.2f} ms per question (median of the paired differences)")
    figures["postgresql_extra_p50_ms"] = round(extra, 2)
    return figures


def _emptied(core: IndexCore) -> IndexCore:
    """The PostgreSQL core again, on an emptied store (the ingestion step filled it)."""
    _drop_schema(core)
    return IndexCore.open(core.settings, core.embedder)


def _drop_schema(core: IndexCore) -> None:
    from index.store import Store

    store = Store(core.store.database.url, read_only=True)
    try:
        with store.database.write() as db:
            db.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
    finally:
        store.close()
