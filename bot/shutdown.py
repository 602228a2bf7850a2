"""Bounded shutdown: a stopped bot exits within seconds, whatever its worker threads do.

Blocking work (fetching a page, SQLite, embedding) runs on worker threads, and a thread
cannot be interrupted: one stuck reading from a server that sends a byte every few seconds
would hold ``asyncio.run`` (which joins the default pool's threads) and the interpreter's
exit (which joins every pool thread) for as long as that server likes. So:

- `worker_pool` gives the event loop a pool of named threads, installed by `run` (long
  polling, the chat) and by the webhook app;
- `bounded` limits each shutdown step (alert delivery, background tasks, closing the index)
  to `SHUTDOWN_GRACE` seconds, with a log line when a step is abandoned;
- `run` is ``asyncio.run`` that does not join the pool's threads;
- `exit_without_stuck_workers`, called last, waits up to `SHUTDOWN_GRACE` for the threads
  and then ends the process with one log line (``os._exit``: what it abandons is no worse
  than ``kill -9``, which the index and the alert outbox are built to survive).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import Awaitable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = [
    "SHUTDOWN_GRACE",
    "WORKER_PREFIX",
    "bounded",
    "exit_without_stuck_workers",
    "run",
    "worker_pool",
]

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 5.0  # seconds each shutdown step may take
WORKER_PREFIX = "bot-worker"

T = TypeVar("T")


def worker_pool() -> ThreadPoolExecutor:
    """A pool for ``asyncio.to_thread`` whose threads `exit_without_stuck_workers` knows."""
    return ThreadPoolExecutor(thread_name_prefix=WORKER_PREFIX)


async def bounded(step: Awaitable[Any], what: str, grace: float = SHUTDOWN_GRACE) -> None:
    """Await one shutdown step for at most ``grace`` seconds; log and go on after that."""
    try:
        async with asyncio.timeout(grace):
            await step
    except TimeoutError:
        log.warning("Shutdown: %s did not finish within %.0f s; going on without it", what, grace)


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` with blocking work on `worker_pool`, whose threads are not
    joined on the way out (`exit_without_stuck_workers` deals with them)."""

    async def supervised() -> T:
        loop = asyncio.get_running_loop()
        pool = worker_pool()
        loop.set_default_executor(pool)
        try:
            return await main
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            # asyncio.run joins the default pool's threads when it ends: give it an idle one
            loop.set_default_executor(ThreadPoolExecutor(max_workers=1))

    return asyncio.run(supervised())


def exit_without_stuck_workers(code: int, grace: float = SHUTDOWN_GRACE) -> None:
    """Wait up to ``grace`` seconds for busy worker threads; if some are still busy, log it
    and end the process now with ``code`` instead of waiting for them at exit."""
    deadline = time.monotonic() + grace
    for thread in _workers():
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [thread for thread in _workers() if thread.is_alive()]
    if not stuck:
        return
    log.warning(
        "Stopped; %d worker thread(s) still busy after %.0f s (e.g. a slow download) "
        "are abandoned",
        len(stuck),
        grace,
    )
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(WORKER_PREFIX)]
