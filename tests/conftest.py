"""Shared fixtures: an index on a temporary folder with the fast fake embedder."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from index import IndexCore, IndexSettings
from tests.fakes import HashEmbedder


@pytest.fixture
def settings(tmp_path: Path) -> IndexSettings:
    return IndexSettings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def core(settings: IndexSettings) -> Iterator[IndexCore]:
    core = IndexCore.open(settings, HashEmbedder())
    core.min_relevance = 0.2  # the fake embedder's scores run lower than the real model's
    yield core
    core.close()


@pytest.fixture(scope="session")
def real_embedder():  # type: ignore[no-untyped-def]
    """The real all-MiniLM-L6-v2 on torch, loaded once per test session."""
    from index.embedding import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(backend="torch")


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """MODEL_CACHE_DIR for the whole session, the command lines it runs included: the ONNX
    export of the model (half a minute) is made at most once per test run."""
    path = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODEL_CACHE_DIR", str(path))
        yield path


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for this test (dropped afterwards)."""
    from tests.postgres import fresh_database

    with fresh_database() as url:
        yield url


REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_url() -> str:
    """The Redis server of the tests: ``TEST_REDIS_URL``, default the local one."""
    return REDIS_URL


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A Redis key prefix of this test's own (on ``REDIS_URL``); its keys are deleted
    afterwards."""
    from bot.shared_state import SharedState

    prefix = f"newsbot-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    shared = SharedState.from_url(REDIS_URL, prefix)
    try:
        await shared.clear()
    finally:
        await shared.close()
