"""Stories the feeds brought in (for duplicate detection), and recording a whole poll:
entries seen, stories, alerts and the feed's new state in one transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import select, update

from bot.storage.base import Repository, insert
from bot.storage.outbox import enqueue
from bot.storage.rows import Delivery, Story
from bot.storage.schema import feed_entries, feeds, outbox, stories

__all__ = ["StoryRepository"]


class StoryRepository(Repository):
    async def by_id_or_hash(self, article_id: str, content_hash: str) -> Story | None:
        """A story with this article id or this exact content."""
        rows = await self.db.rows(
            select(
                stories.c.article_id,
                stories.c.url,
                stories.c.content_hash,
                stories.c.title,
                stories.c.outlet,
                stories.c.duplicate_of,
                stories.c.signature,
            )
            .where((stories.c.article_id == article_id) | (stories.c.content_hash == content_hash))
            .limit(1)
        )
        if not rows:
            return None
        r = rows[0]
        signature = None if r[6] is None else np.frombuffer(r[6], dtype=np.uint32)
        return Story(r[0], r[1], r[2], r[3], r[4], r[5], signature)

    async def recent_signatures(self, since: float) -> tuple[list[str], np.ndarray | None]:
        """Article ids and MinHash signatures of original stories seen since ``since``."""
        rows = await self.db.rows(
            select(stories.c.article_id, stories.c.signature)
            .where(
                stories.c.seen_at >= since,
                stories.c.duplicate_of.is_(None),
                stories.c.signature.is_not(None),
            )
            .order_by(stories.c.seen_at)
        )
        if not rows:
            return [], None
        return [r[0] for r in rows], np.vstack([np.frombuffer(r[1], dtype=np.uint32) for r in rows])

    async def record_poll(
        self,
        feed_id: int,
        entries: Sequence[tuple[str, str | None]],
        new_stories: Sequence[Story],
        deliveries: Sequence[Delivery],
        feed_changes: dict[str, Any],
    ) -> int:
        """In one transaction: mark entries seen, record stories, enqueue alerts (delivery
        time from each chat's preferences), update the feed. Returns alerts enqueued."""
        now = self.now()
        async with self.db.write() as conn:
            if entries:
                await conn.execute(
                    insert(self.db, feed_entries).on_conflict_do_nothing(),
                    [
                        {
                            "feed_id": feed_id,
                            "entry_key": key,
                            "article_id": article,
                            "seen_at": now,
                        }
                        for key, article in entries
                    ],
                )
            if new_stories:
                await conn.execute(
                    insert(self.db, stories).on_conflict_do_nothing(),
                    [_story_row(s, feed_id, now) for s in new_stories],
                )
            enqueued = await enqueue(self.db, conn, deliveries, now)
            if feed_changes:
                originals = sum(s.duplicate_of is None for s in new_stories)
                await conn.execute(
                    update(feeds)
                    .where(feeds.c.id == feed_id)
                    .values(**feed_changes, articles=feeds.c.articles + originals)
                )
        return enqueued

    async def link_duplicate(self, original_id: str, other: dict[str, Any]) -> int:
        """Mention another outlet's copy of a story in its alerts still queued."""
        async with self.db.write() as conn:
            rows = (
                await conn.execute(
                    select(outbox.c.id, outbox.c.payload).where(
                        outbox.c.article_id == original_id,
                        outbox.c.kind == "alert",
                        outbox.c.state.in_(("held", "pending")),
                    )
                )
            ).all()
            for row_id, raw in rows:
                payload = json.loads(raw)
                payload["also"] = [*payload.get("also", []), other]
                await conn.execute(
                    update(outbox).where(outbox.c.id == row_id).values(payload=json.dumps(payload))
                )
        return len(rows)


def _story_row(story: Story, feed_id: int, now: float) -> dict[str, Any]:
    signature = None if story.signature is None else story.signature.tobytes()
    return {
        "article_id": story.article_id,
        "url": story.url,
        "content_hash": story.content_hash,
        "title": story.title,
        "outlet": story.outlet,
        "feed_id": feed_id,
        "duplicate_of": story.duplicate_of,
        "signature": signature,
        "seen_at": now,
    }
