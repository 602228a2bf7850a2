"""/reindex as a job: asked for on any replica, run once by one worker, shown to the admin.

The replica that receives /reindex sends the status message and queues a job carrying its
chat, message id and language (`JobRunner.request`; a second /reindex while one is queued or
running is told so). Whichever worker (or the single process) claims the job runs the
rebuild, writes its progress to the job's row and edits that status message itself, at most
once per `PROGRESS_INTERVAL`. It holds the job with a lease it renews while it works; a
worker that dies stops renewing, and another claims the job when the lease has passed and
starts the rebuild again (the status message says so), up to `MAX_ATTEMPTS` times. Other
processes swap to the new vectors through the index's change log.

Without a database of the bot's own (`Services` with no alerts) the reindex runs in the
process that received the command, as ``run_reindex``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.utils.formatting import Text
from aiogram.utils.i18n import I18n

from bot.i18n import N_, speaking
from bot.i18n import gettext as _
from bot.rendering import html
from bot.storage.base import new_owner
from bot.storage.jobs import JobRepository
from bot.storage.rows import JobRow
from index import ArticleIndex, ArticleIndexError

__all__ = [
    "JOB_LEASE",
    "MAX_ATTEMPTS",
    "PROGRESS_INTERVAL",
    "REINDEX",
    "JobRunner",
    "progress_text",
    "run_reindex",
]

log = logging.getLogger(__name__)

REINDEX = "reindex"
JOB_LEASE = 60.0  # seconds a worker's claim on a job lasts unless renewed
JOB_POLL = 1.0  # seconds between a worker's looks for queued jobs
MAX_ATTEMPTS = 3  # claims of one job (its workers died) before it is given up
PROGRESS_INTERVAL = 1.0  # seconds between edits of the reindex status message
FAILED = N_("❌ Reindex failed; the previous index is still in use. Details are in the log.")

Show = Callable[[str], Awaitable[None]]
"""Shows a status text (HTML) to the admin: edits the status message."""
Record = Callable[[int, int], Awaitable[None]]
"""Records progress (done, total) where other processes can see it."""


def progress_text(done: int, total: int) -> str:
    percent = 100 * done // total if total else 100
    return _("🔄 Reindexing: {done} of {total} passages ({percent}%)…").format(
        done=f"{done:,}", total=f"{total:,}", percent=percent
    )


class _Progress:
    """The latest (done, total) of a reindex, shown by editing the status message and
    recorded at most once per PROGRESS_INTERVAL."""

    def __init__(self, show: Show, record: Record | None) -> None:
        self.show, self.record = show, record
        self.changed = asyncio.Event()
        self.done = self.total = 0

    def update(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        self.changed.set()

    async def follow(self) -> None:
        shown = ""
        while True:
            await self.changed.wait()
            self.changed.clear()
            text = progress_text(self.done, self.total)
            if text != shown:
                await self.show(text)
                shown = text
            if self.record is not None:
                await self.record(self.done, self.total)
            await asyncio.sleep(PROGRESS_INTERVAL)


async def run_reindex(
    index: ArticleIndex, show: Show, record: Record | None = None
) -> tuple[bool, str]:
    """Rebuild the index, showing progress and then the outcome; returns (whether it
    finished, the outcome's text). Texts are in the language current when it is called."""
    loop = asyncio.get_running_loop()
    progress = _Progress(show, record)

    def on_progress(done: int, total: int) -> None:  # called from the index's worker thread
        loop.call_soon_threadsafe(progress.update, done, total)

    follower = asyncio.create_task(progress.follow())
    finished = False
    try:
        report = await index.reindex(on_progress)
    except ArticleIndexError as error:
        text = Text(_("Reindex not started: {error}.").format(error=error))
    except Exception:
        log.exception("Reindex failed")
        text = Text(_(FAILED))
    else:
        finished = True
        text = Text(
            _(
                "✅ Reindex finished: {articles} articles, {passages} passages in {seconds} s."
            ).format(
                articles=f"{report.articles:,}",
                passages=f"{report.passages:,}",
                seconds=f"{report.seconds:.1f}",
            )
        )
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
    await show(html(text))
    return finished, html(text)


class JobRunner:
    """Queues jobs (any replica) and runs them (workers): ``await runner.request(...)``;
    ``runner.start(bot)`` … ``await runner.stop()`` in processes that run jobs."""

    def __init__(
        self,
        jobs: JobRepository,
        index: ArticleIndex,
        i18n: I18n,
        *,
        owner: str | None = None,
        lease: float = JOB_LEASE,
        poll: float = JOB_POLL,
    ) -> None:
        self.jobs = jobs
        self.index = index
        self.i18n = i18n
        self.owner = owner or new_owner()
        self.lease = lease
        self.poll = poll
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- any replica ----------------------------------------------------------------------

    async def request(self, chat_id: int, message_id: int, language: str | None) -> bool:
        """Queue a reindex reported in that status message; False if one is queued or
        running already."""
        queued = await self.jobs.enqueue(
            REINDEX, chat_id=chat_id, message_id=message_id, language=language
        )
        self._wake.set()  # a runner in this process starts it at once
        return queued is not None

    async def reindexing(self) -> bool:
        """A reindex is queued or running, in any process."""
        return await self.jobs.active(REINDEX) is not None

    # -- processes that run jobs ----------------------------------------------------------

    def start(self, bot: Bot) -> None:
        self._task = asyncio.create_task(self.run(bot), name="jobs")

    async def stop(self) -> None:
        """Stop taking jobs; a job running here is abandoned (another worker takes it over
        when the lease passes)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run(self, bot: Bot) -> None:
        """Claim and run jobs until cancelled."""
        while True:
            self._wake.clear()
            try:
                while await self.run_one(bot):
                    pass
            except Exception:
                log.exception("Running jobs failed; trying again shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll)

    async def run_one(self, bot: Bot) -> bool:
        """Claim one job and run it; False when none was waiting."""
        if not await self.jobs.claimable():
            return False
        job = await self.jobs.claim(owner=self.owner, lease=self.lease)
        if job is None:
            return False
        log.info("Running job %s (%s, attempt %s)", job.id, job.kind, job.attempts)
        keeper = asyncio.create_task(self._keep_lease(job))
        try:
            with speaking(self.i18n, job.language):
                await self._reindex(bot, job)
        finally:
            keeper.cancel()
        return True

    async def _reindex(self, bot: Bot, job: JobRow) -> None:
        async def show(text: str) -> None:
            await self._edit(bot, job, text)

        async def record(done: int, total: int) -> None:
            await self.jobs.progress(job.id, self.owner, self.lease, done, total)

        if job.attempts > MAX_ATTEMPTS:  # its workers kept dying
            text = _(FAILED)
            log.error("Reindex job %s given up after %s attempts", job.id, job.attempts - 1)
            await self.jobs.finish(job.id, self.owner, "failed", text)
            await show(text)
            return
        try:
            finished, text = await run_reindex(self.index, show, record)
        except asyncio.CancelledError:  # this process is stopping: another worker takes it
            await self.jobs.release(job.id, self.owner)
            raise
        await self.jobs.finish(job.id, self.owner, "done" if finished else "failed", text)

    async def _edit(self, bot: Bot, job: JobRow, text: str) -> None:
        """Edit the job's status message (nothing if it is gone or unchanged)."""
        if job.chat_id is None or job.message_id is None:
            return
        try:
            await bot.edit_message_text(text=text, chat_id=job.chat_id, message_id=job.message_id)
        except TelegramBadRequest:  # not modified, or deleted by the admin
            pass
        except TelegramAPIError as error:
            log.warning("Could not show reindex progress to chat %s: %s", job.chat_id, error)

    async def _keep_lease(self, job: JobRow) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                if not await self.jobs.progress(job.id, self.owner, self.lease):
                    log.warning("Job %s was taken over by another worker", job.id)
                    return
            except Exception:
                log.exception("Renewing the lease of job %s failed; trying again", job.id)
