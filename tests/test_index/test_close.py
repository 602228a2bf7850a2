"""Closing the index while searches run in worker threads: every search either finishes
or fails with the storage error that says the index is closed, never a crash."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from index import IndexCore, IndexSettings, StorageError
from index.database import DatabaseClosedError
from tests.factories import article
from tests.fakes import HashEmbedder

QUESTIONS = ["volcano ash village", "bank interest rates", "football cup final"]


def test_closing_while_searches_run_lets_them_finish_or_fail_cleanly(
    settings: IndexSettings,
) -> None:
    core = IndexCore.open(settings, HashEmbedder())
    core.min_relevance = 0.2
    core.add_articles([article("volcano"), article("bank"), article("football")])
    answered = threading.Semaphore(0)
    give_up = threading.Event()  # on code that does not stop searches at close
    outcomes: list[str] = []

    def ask_until_closed(number: int) -> None:
        while not give_up.is_set():
            try:
                result = core.search(QUESTIONS[number % len(QUESTIONS)])
            except StorageError as error:
                outcomes.append(type(error).__name__)
                return
            assert result.hits, "a search that finished found nothing"
            outcomes.append("answered")
            answered.release()
        outcomes.append("still searching")

    with ThreadPoolExecutor(max_workers=6) as pool:
        running = [pool.submit(ask_until_closed, n) for n in range(6)]
        for _ in range(30):  # every thread is well under way
            assert answered.acquire(timeout=30)
        core.close()
        for future in running:
            try:
                future.result(timeout=30)  # re-raises anything but the clean error
            except TimeoutError:
                give_up.set()

    assert "answered" in outcomes
    assert set(outcomes) <= {"answered", "DatabaseClosedError"}, set(outcomes)
    assert outcomes.count("DatabaseClosedError") == 6  # each thread stopped by the closing


def test_a_search_after_close_says_the_index_is_closed(core: IndexCore) -> None:
    core.add_articles([article("volcano")])
    core.close()
    with pytest.raises(DatabaseClosedError, match="is closed"):
        core.search("volcano ash")
