"""Parsing untrusted documents in child processes, each document within a time limit.

Extracting an HTML page (trafilatura, htmldate) makes long C calls that hold the GIL: a
5 MB page froze every other thread, and so the bot's event loop, for seconds. A malformed
feed sends feedparser to its loose parser, which is slower than linear. Both therefore run
here, in a few child processes:

- started from a *forkserver*, never forked from the caller (the bot has threads, ONNX
  Runtime and FAISS loaded); the server preloads only the parsers, so a child starts in
  milliseconds and imports nothing else (no torch, FAISS or aiogram);
- one document at a time per child; a document that takes longer than the time limit
  (``PARSE_TIMEOUT``) fails with "took longer than 30 s to parse" and its child is killed
  (a new one starts when next needed);
- arguments and results are plain picklable data; an exception raised by the parser (an
  ``InputError``, a ``FeedError``) is raised again in the caller.

Sync callers use `run` (it waits in the calling thread, without the GIL); async callers
use `run_async`. The pool starts on first use and `shutdown` stops its children (the index
does this when it closes); the next `run` starts it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import ParamSpec, TypeVar

from index.errors import InputError

__all__ = [
    "DEFAULT_TIMEOUT",
    "ParsingPool",
    "configure",
    "run",
    "run_async",
    "shutdown",
]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0  # seconds one document may take (PARSE_TIMEOUT)
DEFAULT_WORKERS = max(1, min(4, os.cpu_count() or 1))
# Imported once by the forkserver, so each child starts with them loaded (trafilatura alone
# takes 1.5 s to import on a busy machine). Other parsers load in the child on first use.
PRELOAD = ["index.formats", "trafilatura", "htmldate", "feedparser"]
START_TIMEOUT = 60.0  # seconds a new child may take to start (a busy machine is slow)
STOP_GRACE = 1.0  # seconds idle children have to exit before they are killed


_READY = "ready"


@dataclass(eq=False)
class _Child:
    process: BaseProcess
    connection: Connection


class ParsingPool:
    """Up to ``workers`` child processes, each parsing one document at a time."""

    def __init__(self, workers: int = DEFAULT_WORKERS, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self._context = multiprocessing.get_context("forkserver")
        self._free = threading.BoundedSemaphore(workers)
        self._lock = threading.Lock()
        self._idle: list[_Child] = []
        self._busy: set[_Child] = set()
        self._closed = False

    def run(self, func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``func(*args, **kwargs)`` in a child; raises what it raises, or ``InputError``
        when it takes longer than the time limit or its child dies."""
        with self._free:
            child = self._take()
            try:
                outcome = self._call(child, partial(func, *args, **kwargs))
            except BaseException:
                self._kill(child)
                raise
            self._give_back(child)
        if isinstance(outcome, _Failure):
            raise outcome.error
        return outcome

    def close(self) -> None:
        """Stop every child: idle ones are asked to exit, busy ones are killed (their
        callers get an ``InputError``). Takes about a second at most."""
        with self._lock:
            self._closed = True
            idle, busy = self._idle, list(self._busy)
            self._idle = []
        for child in idle:
            with contextlib.suppress(OSError):  # already gone
                child.connection.send(None)
        deadline = time.monotonic() + STOP_GRACE
        for child in idle:
            child.process.join(max(0.0, deadline - time.monotonic()))
            self._kill(child)
        for child in busy:  # its caller, woken by the end of the pipe, cleans up
            child.process.kill()

    def _take(self) -> _Child:
        with self._lock:
            if self._closed:
                raise InputError("not parsed: the index is closing")
            child = self._idle.pop() if self._idle else None
        if child is not None and not child.process.is_alive():  # died while idle
            self._kill(child)
            child = None
        if child is None:
            child = self._start()
        with self._lock:
            self._busy.add(child)
        return child

    def _give_back(self, child: _Child) -> None:
        with self._lock:
            self._busy.discard(child)
            if not self._closed:
                self._idle.append(child)
                return
        self._kill(child)

    def _start(self) -> _Child:
        if not _preload_set.is_set():  # the forkserver is one per process: set it once
            self._context.set_forkserver_preload(PRELOAD)
            _preload_set.set()
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=_serve, args=(theirs,), name="parsing-child", daemon=True
        )
        process.start()
        theirs.close()
        child = _Child(process, ours)
        try:  # the time limit is the parser's: it starts once the child is ready
            if ours.poll(START_TIMEOUT) and ours.recv() == _READY:
                return child
        except (EOFError, OSError):
            pass
        self._kill(child)
        raise InputError(f"not parsed: no parser process started within {START_TIMEOUT:g} s")

    def _call(self, child: _Child, task: Callable[[], T]) -> T | _Failure:
        try:
            child.connection.send(task)
            if not child.connection.poll(self.timeout):
                raise InputError(f"took longer than {self.timeout:g} s to parse")
            outcome: T | _Failure = child.connection.recv()
        except (EOFError, OSError):
            raise InputError(_death_reason(child, self._closed)) from None
        return outcome

    def _kill(self, child: _Child) -> None:
        with self._lock:
            self._busy.discard(child)
        if child.process.is_alive():
            child.process.kill()
        child.process.join(STOP_GRACE)
        child.connection.close()


@dataclass(frozen=True)
class _Failure:
    """An exception the parser raised, sent back to be raised in the caller."""

    error: Exception


def _death_reason(child: _Child, closing: bool) -> str:
    if closing:
        return "not parsed: the index is closing"
    child.process.join(STOP_GRACE)
    code = child.process.exitcode
    how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
    return f"the parser stopped unexpectedly ({how})"


def _serve(connection: Connection) -> None:
    """A child's loop: run each task sent, send back its result or its exception."""
    global _in_child
    _in_child = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    connection.send(_READY)
    while True:
        try:
            task = connection.recv()
        except EOFError:  # the parent is gone
            return
        except Exception as error:  # a task that cannot be unpickled here
            connection.send(_Failure(_portable(error)))
            continue
        if task is None:
            return
        try:
            outcome = task()
        except Exception as error:
            outcome = _Failure(_portable(error))
        try:
            connection.send(outcome)
        except (pickle.PicklingError, TypeError, AttributeError) as error:
            connection.send(_Failure(InputError(f"the parser's result cannot be sent: {error}")))


def _portable(error: Exception) -> Exception:
    """``error`` if it survives pickling, else an ``InputError`` with its message."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return InputError(f"{type(error).__name__}: {error}")
    return error


_preload_set = threading.Event()
_pool: ParsingPool | None = None
_pool_lock = threading.Lock()
_timeout = DEFAULT_TIMEOUT
_in_child = False  # set in the parsing children


def configure(*, timeout: float) -> None:
    """Set the time limit for documents parsed from now on (``PARSE_TIMEOUT``)."""
    global _timeout
    with _pool_lock:
        _timeout = timeout
        if _pool is not None:
            _pool.timeout = timeout


def run(func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """``func(*args, **kwargs)`` in the process-wide pool (started on first use)."""
    global _pool
    if _in_child:  # a parser that itself calls `run` (parse -> parse_html) runs here
        return func(*args, **kwargs)
    with _pool_lock:
        if _pool is None:
            _pool = ParsingPool(timeout=_timeout)
        pool = _pool
    return pool.run(func, *args, **kwargs)


async def run_async(func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """`run` from async code: the wait happens in a worker thread."""
    return await asyncio.to_thread(partial(run, func, *args, **kwargs))


def shutdown() -> None:
    """Stop the process-wide pool's children; the next `run` starts new ones."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.close()
