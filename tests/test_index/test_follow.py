"""One index everywhere: processes on one database hold the same passages. What one writes
(add, replace, remove, reindex) the others follow through the change log
(``index/changes.py``); one that was closed, or fell behind, catches up."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest

from index import ArticleIndex, IndexCore, IndexSettings
from index import service as service_module
from tests.factories import article
from tests.fakes import HashEmbedder

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 10.0  # how long another process may take to see a change, at most

OpenCore = Callable[..., IndexCore]


def _settings(base: Path, url: str | None, name: str, **overrides: object) -> IndexSettings:
    """A process's settings: on PostgreSQL each its own DATA_DIR; on SQLite the database
    lives in DATA_DIR, so they share it (and the saved vector index with it)."""
    data_dir = base / (name if url else "shared")
    return IndexSettings(  # type: ignore[call-arg]
        data_dir=data_dir, database_url=url, min_relevance=0.2, _env_file=None, **overrides
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> str | None:
    """The database several processes share: None for SQLite, else a PostgreSQL URL."""
    return request.getfixturevalue("postgres_url") if request.param == "postgresql" else None


@pytest.fixture
def open_core(tmp_path: Path, database: str | None) -> Iterator[OpenCore]:
    """Opens an IndexCore per simulated process, all on one database; closed afterwards."""
    opened: list[IndexCore] = []

    def open_(name: str, embedder: HashEmbedder | None = None) -> IndexCore:
        core = IndexCore.open(_settings(tmp_path, database, name), embedder or HashEmbedder())
        opened.append(core)
        return core

    yield open_
    for core in opened:
        core.close()


@pytest.fixture
def on_postgres(postgres_url: str, tmp_path: Path) -> Iterator[OpenCore]:
    """As ``open_core``, on PostgreSQL only."""
    opened: list[IndexCore] = []

    def open_(name: str, embedder: HashEmbedder | None = None) -> IndexCore:
        settings = _settings(tmp_path, postgres_url, name)
        core = IndexCore.open(settings, embedder or HashEmbedder())
        opened.append(core)
        return core

    yield open_
    for core in opened:
        core.close()


def _titles(core: IndexCore, question: str) -> list[str]:
    """What the process's vector index finds, by title (the keyword index lives in the
    shared database and finds a new article at once: only the vectors show following)."""
    ids, _ = core.vectors.search(core.embedder.encode([question])[0], 3)
    rows = core.store.passages(ids.tolist())
    return [rows[i].title if i in rows else "(a removed passage)" for i in ids.tolist()]


def _matches_database(core: IndexCore) -> bool:
    """The vector index holds exactly the stored passages, with the stored vectors."""
    ids = core.store.passage_ids()
    if sorted(core.vectors.ids().tolist()) != ids:
        return False
    stored_ids, stored = core.store.vectors(ids)
    return not ids or np.allclose(core.vectors.vectors(stored_ids), stored, atol=1e-6)


def test_sync_applies_what_another_process_added_replaced_and_removed(
    open_core: OpenCore,
) -> None:
    one, other = open_core("one"), open_core("other")
    one.add_articles([article("volcano")])
    one.add_articles([article("bank")])
    assert other.sync_lag() == 2 and one.sync_lag() == 0  # its own writes are applied
    assert _titles(other, "volcano erupted ash") == []

    assert other.sync() == 2
    assert other.sync_lag() == 0
    assert _titles(other, "volcano erupted ash")[0] == "Volcano erupts near village"

    one.add_articles([article("volcano", text="The lava reached the coast road.")])
    removed = one.remove(one.search("central bank interest rates").hits[0].article_id)
    assert removed is not None
    assert other.sync() == 2
    assert _titles(other, "lava coast road")[0] == "Volcano erupts near village"
    assert not {"Central bank raises interest rates", "(a removed passage)"} & set(
        _titles(other, "central bank interest rates")
    )
    assert _matches_database(other) and _matches_database(one)


def test_a_process_does_not_apply_its_own_writes_again(open_core: OpenCore) -> None:
    one = open_core("one")
    one.add_articles([article("volcano"), article("bank")])
    one.remove(one.search("central bank interest rates").hits[0].article_id)
    assert one.sync() == 0 and one.replayed == 0
    assert one.sync_lag() == 0 and _matches_database(one)


def test_a_reindex_in_one_process_swaps_the_vectors_of_the_others(open_core: OpenCore) -> None:
    one, other = open_core("one"), open_core("other")
    one.add_articles([article("volcano"), article("bank")])
    other.sync()
    before = other.store.vectors(other.store.passage_ids())[1]
    one.embedder = RetrainedEmbedder()  # same model name, other vectors: a reindex shows
    one.reindex()
    after = one.store.vectors(one.store.passage_ids())[1]
    assert not np.allclose(before, after)

    rebuilds = other.rebuilds
    other.sync()
    assert other.rebuilds == rebuilds + 1  # it loaded the stored vectors ...
    assert _matches_database(other)  # ... which are the new ones
    assert _matches_database(one) and one.sync() == 0  # the reindexer swapped its own


def test_a_reopened_index_catches_up_by_replay_without_rebuilding(
    on_postgres: OpenCore, caplog: pytest.LogCaptureFixture
) -> None:
    one, other = on_postgres("one"), on_postgres("other")
    one.add_articles([article("volcano"), article("football")])
    other.sync()
    other.close()  # saves its index with the last change applied
    one.add_articles([article("bank")])
    one.remove(one.search("volcano erupted ash").hits[0].article_id)

    with caplog.at_level(logging.INFO, logger="index.core"):
        again = on_postgres("other")
    assert "Caught up with 2 change(s)" in caplog.text and "Rebuilding" not in caplog.text
    assert again.rebuilds == 0 and again.replayed == 2
    assert _titles(again, "central bank interest rates")[0] == "Central bank raises interest rates"
    assert not {"Volcano erupts near village", "(a removed passage)"} & set(
        _titles(again, "volcano erupted ash")
    )
    assert _matches_database(again)


def test_an_index_behind_the_pruned_change_log_rebuilds_from_stored_vectors(
    on_postgres: OpenCore, caplog: pytest.LogCaptureFixture
) -> None:
    one, other = on_postgres("one"), on_postgres("other")
    one.add_articles([article("volcano")])
    other.sync()
    one.add_articles([article("bank")])
    one.add_articles([article("football")])
    assert one.store.prune_changes(keep=0) == 2  # the newest entry always stays
    embedded, rebuilds = other.embedder.calls, other.rebuilds  # type: ignore[attr-defined]

    with caplog.at_level(logging.WARNING, logger="index.core"):
        other.sync()
    assert "pruned past entry" in caplog.text and "no re-embedding" in caplog.text
    assert other.embedder.calls == embedded  # type: ignore[attr-defined]
    assert other.rebuilds == rebuilds + 1 and other.sync_lag() == 0
    assert _titles(other, "central bank interest rates")[0] == "Central bank raises interest rates"
    assert _titles(other, "cup final penalties")[0] == "Cup final won on penalties"
    assert _matches_database(other)


def test_a_writer_that_commits_late_is_never_skipped(on_postgres: OpenCore) -> None:
    """Entries become visible in the order of their numbers: a writer that took a number
    first and commits last holds back the ones after it (else a follower past the later
    number would never read the earlier one)."""
    slow, fast, follower = on_postgres("slow"), on_postgres("fast"), on_postgres("follower")
    appended, commit = threading.Event(), threading.Event()
    real_append = slow.store.changes.append

    def append_then_wait(*args, **kwargs):  # type: ignore[no-untyped-def]
        seq = real_append(*args, **kwargs)
        appended.set()
        commit.wait(WAIT_SECONDS)  # the transaction stays open until released
        return seq

    slow.store.changes.append = append_then_wait  # type: ignore[method-assign]
    writers = [
        threading.Thread(target=slow.add_articles, args=([article("volcano")],)),
        threading.Thread(target=fast.add_articles, args=([article("bank")],)),
    ]
    writers[0].start()
    assert appended.wait(WAIT_SECONDS)
    writers[1].start()
    _wait_for_an_advisory_lock_waiter(follower)
    assert follower.sync() == 0  # neither is visible: the later one waits for the earlier
    commit.set()
    for writer in writers:
        writer.join()
    assert follower.sync() == 2
    assert _titles(follower, "volcano erupted ash")[0] == "Volcano erupts near village"
    assert _titles(follower, "central bank interest rates")[0].startswith("Central bank")


def _wait_for_an_advisory_lock_waiter(core: IndexCore) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        with core.store.read() as db:
            waiting = db.exec_driver_sql(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).scalar()
        if waiting:
            return
        time.sleep(0.02)
    pytest.fail("the second writer never waited for the first one's commit")


# -- in the background: ArticleIndex -------------------------------------------------------


@pytest.fixture
async def indexes(tmp_path: Path, database: str | None) -> AsyncIterator[list[ArticleIndex]]:
    """Two ArticleIndex following each other. On PostgreSQL they poll once a minute, so
    only NOTIFY can wake them in time; on SQLite, polling is the only way."""
    interval = 60.0 if database else 0.1
    opened = [
        await ArticleIndex.open(
            _settings(tmp_path, database, name, index_sync_interval=interval), HashEmbedder()
        )
        for name in ("one", "other")
    ]
    yield opened
    for index in opened:
        await index.close()


async def _found(index: ArticleIndex, question: str, title: str) -> bool:
    """The article is among what the index's vectors find, and the answer's first hit."""
    if title not in await asyncio.to_thread(_titles, index.core, question):
        return False
    hits = (await index.search(question)).hits
    return bool(hits) and hits[0].title == title


async def _gone(index: ArticleIndex, question: str, title: str) -> bool:
    """Neither the index's vectors nor its answer show the article."""
    titles = await asyncio.to_thread(_titles, index.core, question)
    hits = (await index.search(question)).hits
    return not {title, "(a removed passage)"} & {*titles, *(hit.title for hit in hits)}


async def _eventually(check: Callable[[], object], what: str) -> None:
    """Poll ``check`` (an async callable) until it is true, for at most WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if await check():  # type: ignore[misc]
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"not within {WAIT_SECONDS:.0f} s: {what}")


async def test_an_article_added_through_one_index_is_found_through_the_other(
    indexes: list[ArticleIndex],
) -> None:
    one, other = indexes
    title = "Volcano erupts near village"
    await one.add_articles([article("volcano")])
    await _eventually(lambda: _found(other, "volcano erupted ash", title), "added there")
    assert await other.sync_lag() == 0

    assert await one.remove((await one.latest(1))[0].id) is not None
    await _eventually(lambda: _gone(other, "volcano erupted ash", title), "removed there too")


async def test_a_lost_listening_connection_is_made_again(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_module, "LISTEN_RETRY_SECONDS", 0.1)
    settings = _settings(tmp_path, postgres_url, "other", index_sync_interval=60.0)
    other = await ArticleIndex.open(settings, HashEmbedder())
    one = IndexCore.open(_settings(tmp_path, postgres_url, "one"), HashEmbedder())
    try:
        first = await _listener_pids(postgres_url, exclude=set())
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
            await admin.execute("SELECT pg_terminate_backend(%s)", (first.pop(),))
        await _listener_pids(postgres_url, exclude={*first})
        one.add_articles([article("bank")])
        await _eventually(
            lambda: _found(other, "central bank rates", "Central bank raises interest rates"),
            "added after the listening connection was lost",
        )
    finally:
        one.close()
        await other.close()


async def _listener_pids(url: str, exclude: set[int]) -> set[int]:
    """The backends listening for index changes (waits for one not in ``exclude``)."""
    deadline = time.monotonic() + WAIT_SECONDS
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as db:
        while time.monotonic() < deadline:
            cursor = await db.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND query LIKE 'LISTEN%'"
            )
            pids = {row[0] for row in await cursor.fetchall()} - exclude
            if pids:
                return pids
            await asyncio.sleep(0.05)
    pytest.fail("no connection listens for index changes")


WRITER = """
import sys
from index import IndexCore, IndexSettings
from tests.factories import article
from tests.fakes import HashEmbedder

settings = IndexSettings(data_dir=sys.argv[1], database_url=sys.argv[2], _env_file=None)
core = IndexCore.open(settings, HashEmbedder())
core.add_articles([article("football")])
core.close()
"""


async def test_an_article_written_by_another_os_process_is_found(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, postgres_url, "reader", index_sync_interval=60.0)
    reader = await ArticleIndex.open(settings, HashEmbedder())
    try:
        writer = await asyncio.create_subprocess_exec(
            sys.executable, "-c", WRITER, str(tmp_path / "writer"), postgres_url, cwd=ROOT
        )
        assert await writer.wait() == 0
        await _eventually(
            lambda: _found(reader, "cup final penalties", "Cup final won on penalties"),
            "written by another process",
        )
    finally:
        await reader.close()


class RetrainedEmbedder(HashEmbedder):
    """The same model name with other vectors, as after new weights of the same name."""

    def _word(self, word: str) -> np.ndarray:
        return super()._word(word + "'")


def test_check_says_a_saved_index_behind_the_database_is_caught_up_at_the_next_start(
    open_core: OpenCore, database: str | None, tmp_path: Path
) -> None:
    from index.maintenance import check

    one = open_core("one")
    one.add_articles([article("volcano")])  # the first change is saved at once
    one.add_articles([article("bank")])  # the next within 30 s: not yet
    assert check(_settings(tmp_path, database, "one")).vectors.endswith(
        "change(s) behind the database: caught up from the change log at the next start"
    )
    one.sync()  # this process's entries applied: the saved index records them
    one.save()
    assert check(_settings(tmp_path, database, "one")).vectors == (
        f"ok, {one.vectors.count} vectors match the database"
    )
