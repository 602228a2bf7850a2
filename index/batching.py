"""A micro-batcher: items that arrive together go through one call of a batch function.

Embedding one question costs nearly as much as embedding thirty, so questions that arrive
together (many bot users, inline queries as people type) share one model call. The first
item waits at most ``max_wait`` seconds for company; a batch holds at most ``max_batch``
items; one batch runs at a time, in a worker thread, and whatever arrives meanwhile forms
the next batch. A failed call fails only the callers in its batch, and a caller that gives
up (is cancelled) leaves the others' batch alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["MicroBatcher"]

Item = TypeVar("Item")
Result = TypeVar("Result")

DEFAULT_MAX_BATCH = 32
DEFAULT_MAX_WAIT = 0.002  # seconds


class MicroBatcher(Generic[Item, Result]):
    """``await batcher.submit(item)`` returns ``func(batch)[i]`` for the item's place ``i``
    in the batch it joined. ``func`` runs in a worker thread and must return one result per
    item, in order. Use from one event loop at a time."""

    def __init__(
        self,
        func: Callable[[list[Item]], Sequence[Result]],
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_wait: float = DEFAULT_MAX_WAIT,
    ) -> None:
        if max_batch < 1 or max_wait < 0:
            raise ValueError("max_batch must be at least 1 and max_wait at least 0")
        self._func = func
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._worker: asyncio.Task[None] | None = None
        self._full = asyncio.Event()  # set when enough items wait to fill a batch
        self.batches = 0  # model calls made, for tests and benchmarks

    async def submit(self, item: Item) -> Result:
        """The item's result, computed in a batch with the items submitted around it."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._worker is None:
            self._full = asyncio.Event()
            self._worker = asyncio.create_task(self._work())
        elif len(self._waiting) >= self.max_batch:
            self._full.set()
        return await future

    async def _work(self) -> None:
        """Run batches until nobody is waiting: the first waits up to ``max_wait`` for
        company; later ones take whoever arrived during the previous call."""
        try:
            if len(self._waiting) < self.max_batch:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.max_wait):
                        await self._full.wait()
            while self._waiting:
                batch = self._waiting[: self.max_batch]
                del self._waiting[: self.max_batch]
                await self._run(batch)
        finally:  # the list is empty unless this task was cancelled (the loop is closing)
            self._worker = None
            for _, future in self._waiting:
                future.cancel()
            self._waiting.clear()

    async def _run(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        live = [(item, future) for item, future in batch if not future.done()]
        if not live:
            return
        try:
            self.batches += 1
            results = await asyncio.to_thread(self._func, [item for item, _ in live])
            if len(results) != len(live):
                raise RuntimeError(
                    f"batch function returned {len(results)} results for {len(live)} items"
                )
        except asyncio.CancelledError:
            for _, future in live:
                future.cancel()
            raise
        except Exception as error:
            for _, future in live:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), result in zip(live, results, strict=True):
            if not future.done():
                future.set_result(result)
