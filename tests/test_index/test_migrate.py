"""``python -m bot migrate --to``: a SQLite DATA_DIR moves into PostgreSQL with its
vectors (nothing re-embedded) and the bot's data; answers, subscriptions and pending
alerts are the same after, and a second run copies nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

from bot.migrate import main as migrate_main
from bot.storage import BotStore
from bot.storage.rows import Delivery
from index import IndexCore, IndexSettings
from tests.factories import SAMPLE, article
from tests.fakes import HashEmbedder

QUESTIONS = ["volcano erupted ash", "interest rates bank", "demining liberated lands"]


def _answers(core: IndexCore) -> list[list[tuple[str, str]]]:
    core.min_relevance = 0.2
    return [[(h.article_id, h.quote) for h in core.search(q, k=3).hits] for q in QUESTIONS]


async def _bot_state(store: BotStore) -> dict[str, Any]:
    subscriptions = await store.subscriptions.of_chat(42)
    return {
        "subscriptions": [(s.id, s.topic, s.outlet, s.muted) for s in subscriptions],
        "vectors": [s.vector.tolist() if s.vector is not None else None for s in subscriptions],
        "outbox": [(r.id, r.article_id, r.state, r.payload) for r in await store.outbox.rows()],
        "chat": await store.chats.get(42),
    }


async def _fill_bot(path: Path, article_id: str) -> dict[str, Any]:
    store = BotStore.from_settings(path, None)
    try:
        await store.chats.ensure(42)
        subscription, _ = await store.subscriptions.subscribe(
            42, 0, "volcano", "", np.ones(64, dtype=np.float32) / 8, created_by=42
        )
        await store.outbox.enqueue(
            [Delivery(42, 0, article_id, subscription.id, {"title": "Volcano erupts"})]
        )
        return await _bot_state(store)
    finally:
        await store.close()


async def _read_bot(url: str, data_dir: Path) -> dict[str, Any]:
    store = BotStore.from_settings(data_dir, url)
    try:
        return await _bot_state(store)
    finally:
        await store.close()


def test_migrate_copies_articles_vectors_and_bot_data_once(
    settings: IndexSettings,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    core = IndexCore.open(settings, HashEmbedder())
    core.ingest([str(SAMPLE)])
    core.add_articles([article("volcano"), article("bank")])
    core.remove(core.add_articles([article("football")]).article_ids[0])  # a gap in the ids
    before = _answers(core)
    volcano = core.latest(5)[-1].id
    core.close()
    bot_before = asyncio.run(_fill_bot(settings.data_dir, volcano))
    monkeypatch.setenv("DATA_DIR", str(settings.data_dir))

    assert migrate_main(["--to", postgres_url]) == 0
    out = capsys.readouterr().out
    assert "articles: 3 copied (" in out and ", 0 already there" in out
    assert "bot data: " in out and "1 subscriptions" in out and "1 outbox" in out

    on_postgres = settings.model_copy(update={"database_url": SecretStr(postgres_url)})
    embedder = HashEmbedder()
    moved = IndexCore.open(on_postgres, embedder)
    try:
        assert embedder.calls == 0  # the vectors came along: nothing re-embedded
        assert moved.store.dialect == "postgresql" and moved.stats().articles == 3
        assert _answers(moved) == before
        moved.add_articles([article("football")])  # new passages get new ids
        assert len(set(moved.store.passage_ids())) == moved.vectors.count
    finally:
        moved.close()
    assert asyncio.run(_read_bot(postgres_url, settings.data_dir)) == bot_before

    assert migrate_main(["--to", postgres_url]) == 0  # again: nothing copied twice
    out = capsys.readouterr().out
    assert "articles: 0 copied (0 passages with their vectors), 3 already there" in out
    counts = out.split("bot data: ")[1].strip().removesuffix(" copied").split(", ")
    assert len(counts) > 3 and all(c.startswith("0 ") for c in counts)
    assert asyncio.run(_read_bot(postgres_url, settings.data_dir)) == bot_before


def test_migrate_to_an_unreachable_server_is_one_line_without_the_password(
    settings: IndexSettings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATA_DIR", str(settings.data_dir))
    assert migrate_main(["--to", "postgresql://ann:s3cret@127.0.0.1:1/news"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "s3cret" not in err and err.startswith("error: cannot use")
