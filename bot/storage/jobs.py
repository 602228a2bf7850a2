"""Jobs: work that any replica may ask for and one worker does (``/reindex``).

The replica that takes the request inserts a ``queued`` row (at most one queued or running
job of a kind: a unique partial index refuses a second); a worker claims it (``running``,
with a lease it renews while it works, writing its progress to the row) and finishes it
(``done`` or ``failed``, with the final status text). A job whose worker died is claimed
again when its lease has passed.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from sqlalchemy import select, update

from bot.storage.base import Repository, insert, picked_once
from bot.storage.rows import JobRow
from bot.storage.schema import jobs

__all__ = ["JobRepository"]

_COLUMNS = tuple(jobs.c[field.name] for field in fields(JobRow))
ACTIVE = ("queued", "running")


class JobRepository(Repository):
    async def enqueue(
        self,
        kind: str,
        *,
        chat_id: int | None = None,
        message_id: int | None = None,
        language: str | None = None,
    ) -> JobRow | None:
        """Queue a job; None when one of this kind is already queued or running."""
        rows = await self.db.write_rows(
            insert(self.db, jobs)
            .values(
                kind=kind,
                state="queued",
                chat_id=chat_id,
                message_id=message_id,
                language=language,
                created_at=self.now(),
            )
            .on_conflict_do_nothing()
            .returning(*_COLUMNS)
        )
        return JobRow(*rows[0]) if rows else None

    async def active(self, kind: str) -> JobRow | None:
        """The job of this kind that is queued or running, if any."""
        rows = await self.db.rows(
            select(*_COLUMNS).where(jobs.c.kind == kind, jobs.c.state.in_(ACTIVE))
        )
        return JobRow(*rows[0]) if rows else None

    async def claimable(self) -> bool:
        """Whether a job waits for a worker (a cheap look before `claim`)."""
        now = self.now()
        return (
            await self.db.scalar(select(jobs.c.id).where(self._claimable(now)).limit(1)) is not None
        )

    async def claim(self, *, owner: str, lease: float) -> JobRow | None:
        """Take the oldest queued job, or a running one whose worker's lease has passed,
        for ``owner`` until ``lease`` seconds from now (one worker only)."""
        now = self.now()
        which = select(jobs.c.id).where(self._claimable(now)).order_by(jobs.c.id).limit(1)
        rows = await self.db.write_rows(
            update(jobs)
            .where(jobs.c.id.in_(picked_once(self.db, which)))
            .values(
                state="running",
                attempts=jobs.c.attempts + 1,
                claimed_by=owner,
                claimed_until=now + lease,
                started_at=now,
            )
            .returning(*_COLUMNS)
        )
        return JobRow(*rows[0]) if rows else None

    @staticmethod
    def _claimable(now: float) -> Any:
        lapsed = (jobs.c.state == "running") & (
            jobs.c.claimed_until.is_(None) | (jobs.c.claimed_until <= now)
        )
        return (jobs.c.state == "queued") | lapsed

    async def progress(
        self, job_id: int, owner: str, lease: float, done: int | None = None, total: int = 0
    ) -> bool:
        """Record progress (if given) and renew the lease; False if the job is no longer
        ``owner``'s (its lease passed and another worker took it, or it ended)."""
        values: dict[str, Any] = {"claimed_until": self.now() + lease}
        if done is not None:
            values.update(done=done, total=total)
        changed = await self.db.write_one(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.claimed_by == owner, jobs.c.state == "running")
            .values(**values)
        )
        return changed == 1

    async def finish(self, job_id: int, owner: str, state: str, result: str) -> bool:
        """``done`` or ``failed`` with the final status text; False if not ``owner``'s."""
        changed = await self.db.write_one(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.claimed_by == owner, jobs.c.state == "running")
            .values(state=state, result=result, finished_at=self.now(), claimed_until=None)
        )
        return changed == 1

    async def release(self, job_id: int, owner: str) -> bool:
        """``owner`` is stopping: the job goes back to the queue for another worker now
        (its attempt not counted) rather than when the lease passes."""
        changed = await self.db.write_one(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.claimed_by == owner, jobs.c.state == "running")
            .values(state="queued", claimed_until=None, attempts=jobs.c.attempts - 1)
        )
        return changed == 1

    async def get(self, job_id: int) -> JobRow | None:
        rows = await self.db.rows(select(*_COLUMNS).where(jobs.c.id == job_id))
        return JobRow(*rows[0]) if rows else None
