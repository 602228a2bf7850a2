"""Questions asked together are embedded in one model call, each caller getting its own
vector; a failing or abandoned call harms only its own callers."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest

from index import ArticleIndex, IndexSettings
from index.batching import MicroBatcher
from tests.factories import article
from tests.fakes import HashEmbedder

QUESTIONS = [f"question {n} about the volcano and {n} bank rates" for n in range(20)]


async def test_concurrent_callers_each_get_their_own_vector_from_one_call() -> None:
    embedder = HashEmbedder()
    batches: list[list[str]] = []

    def encode(texts: list[str]) -> list[np.ndarray]:
        batches.append(texts)
        return list(embedder.encode(texts))

    batcher = MicroBatcher(encode, max_batch=32, max_wait=0.01)
    vectors = await asyncio.gather(*(batcher.submit(q) for q in QUESTIONS))

    assert batches == [QUESTIONS]  # one model call for all twenty
    for question, vector in zip(QUESTIONS, vectors, strict=True):
        np.testing.assert_allclose(vector, embedder.encode([question])[0], atol=1e-6)


async def test_batches_are_capped_and_run_off_the_event_loop() -> None:
    loop_thread = threading.get_ident()
    calls: list[tuple[int, int]] = []

    def double(items: list[int]) -> list[int]:
        calls.append((len(items), threading.get_ident()))
        return [2 * item for item in items]

    batcher = MicroBatcher(double, max_batch=8, max_wait=0.01)
    results = await asyncio.gather(*(batcher.submit(n) for n in range(20)))

    assert results == [2 * n for n in range(20)]
    assert [size for size, _ in calls] == [8, 8, 4]
    assert all(thread != loop_thread for _, thread in calls)


async def test_a_lone_question_waits_only_a_few_milliseconds_for_company() -> None:
    batcher = MicroBatcher(lambda items: items, max_wait=0.002)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await batcher.submit("alone") == "alone"
    assert loop.time() - started < 1.0  # a generous bound: the wait is 2 ms


async def test_an_error_fails_only_the_callers_in_that_batch() -> None:
    def shout(items: list[str]) -> list[str]:
        if "boom" in items:
            raise ValueError("the model failed")
        return [item.upper() for item in items]

    batcher = MicroBatcher(shout, max_batch=3, max_wait=0.01)
    items = ["a", "boom", "c", "d", "e", "f"]  # batches: [a, boom, c] and [d, e, f]
    results = await asyncio.gather(*(batcher.submit(i) for i in items), return_exceptions=True)

    assert [type(r) for r in results[:3]] == [ValueError] * 3
    assert results[3:] == ["D", "E", "F"]
    assert await batcher.submit("later") == "LATER"  # the batcher keeps working


async def test_a_cancelled_caller_does_not_break_the_batch_it_is_in() -> None:
    started, release = threading.Event(), threading.Event()

    def slow(items: list[str]) -> list[str]:
        started.set()
        release.wait(timeout=10)
        return [item * 2 for item in items]

    batcher = MicroBatcher(slow, max_wait=0.01)
    tasks = [asyncio.create_task(batcher.submit(item)) for item in ("a", "b", "c")]
    await asyncio.to_thread(started.wait, 10)
    tasks[1].cancel()
    release.set()

    assert await tasks[0] == "aa" and await tasks[2] == "cc"
    with pytest.raises(asyncio.CancelledError):
        await tasks[1]


async def test_a_caller_cancelled_before_its_batch_starts_is_left_out() -> None:
    seen: list[list[str]] = []

    def record(items: list[str]) -> list[str]:
        seen.append(items)
        return items

    batcher = MicroBatcher(record, max_wait=0.05)
    tasks = [asyncio.create_task(batcher.submit(item)) for item in ("a", "b", "c")]
    await asyncio.sleep(0)  # all three are waiting for company
    tasks[0].cancel()

    assert await asyncio.gather(tasks[1], tasks[2]) == ["b", "c"]
    assert seen == [["b", "c"]]


async def test_concurrent_searches_share_one_embedding_call_and_match_single_searches(
    tmp_path: Path,
) -> None:
    """Through the bot's facade: questions asked at once get the same hits as asked alone,
    from one call to the model."""
    embedder = HashEmbedder()
    settings = IndexSettings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    index = await ArticleIndex.open(settings, embedder)
    index.core.min_relevance = 0.2  # the fake embedder's scores run lower than the model's
    try:
        await index.add_articles([article("volcano"), article("football"), article("bank")])
        questions = [
            "When did the volcano erupt?",
            "Who won the cup final?",
            "Why did the central bank raise rates?",
            "Was the airport runway closed?",
        ]
        alone = [index.core.search(q) for q in questions]
        calls_before = embedder.calls
        together = await asyncio.gather(*(index.search(q) for q in questions))
    finally:
        await index.close()

    assert embedder.calls == calls_before + 1
    assert [[h.passage for h in r.hits] for r in together] == [
        [h.passage for h in r.hits] for r in alone
    ]
    assert all(r.hits for r in together)
