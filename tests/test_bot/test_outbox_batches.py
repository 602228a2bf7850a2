"""An outbox claim takes at most the batch it asks for, so several workers share a big
broadcast (on PostgreSQL one claim of 16 used to take every pending row, and the other
workers sat idle while the first sent them all)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.storage import BotStore
from bot.storage.database import database_url
from tests.test_bot.test_alerts import delivery

CHATS = 200
BATCH = 16


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BotStore]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    store = BotStore.from_url(database_url(tmp_path, url))
    yield store
    await store.close()


async def test_a_claim_takes_its_batch_and_leaves_the_rest_to_other_workers(
    store: BotStore,
) -> None:
    await store.outbox.enqueue([delivery(1000 + n, 7) for n in range(CHATS)])

    first = await store.outbox.claim(BATCH, owner="w1", lease=30)
    second = await store.outbox.claim(BATCH, owner="w2", lease=30)

    assert len(first) == len(second) == BATCH
    assert not {r.id for r in first} & {r.id for r in second}
    assert await store.outbox.counts() == {"sending": 2 * BATCH, "pending": CHATS - 2 * BATCH}
