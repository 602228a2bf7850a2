"""The vector index survives crashes and mismatches: it is rebuilt from SQLite."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from index import IndexCore, IndexSettings
from index import database as database_module
from index import vectors as vectors_module
from index.errors import StorageError
from index.schema import SCHEMA_VERSION
from tests.factories import SAMPLE, article
from tests.fakes import HashEmbedder


def _reopen(settings: IndexSettings, embedder: HashEmbedder | None = None) -> IndexCore:
    core = IndexCore.open(settings, embedder or HashEmbedder())
    core.min_relevance = 0.2
    return core


def test_reopening_loads_the_saved_index_without_rebuilding(
    core: IndexCore, settings: IndexSettings, caplog: pytest.LogCaptureFixture
) -> None:
    core.ingest([str(SAMPLE)])
    core.close()
    with caplog.at_level(logging.WARNING):
        again = _reopen(settings)
    assert "Rebuilding" not in caplog.text
    assert again.vectors.count == again.stats().passages == 5
    assert again.search("mine clearance in Azerbaijan").hits


def test_crash_between_index_and_metadata_rename_is_rebuilt_on_start(
    core: IndexCore,
    settings: IndexSettings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    core.save_interval = 0  # write the index after every change
    core.add_articles([article("volcano")])
    renames: list[str] = []
    real_replace = os.replace

    def crash_on_metadata(src: str, dst: str) -> None:
        renames.append(str(dst))
        if str(dst).endswith(".meta.json"):
            raise KeyboardInterrupt("simulated crash")  # the process dies here
        real_replace(src, dst)

    monkeypatch.setattr(vectors_module.os, "replace", crash_on_metadata)
    with pytest.raises(KeyboardInterrupt):
        core.add_articles([article("bank")])
    monkeypatch.undo()
    assert renames[-1].endswith(".meta.json")
    core.store.close()  # the process died: no close(), no final save
    with caplog.at_level(logging.WARNING):
        again = _reopen(settings)
    assert "Rebuilding the vector index" in caplog.text
    assert sorted(again.vectors.ids().tolist()) == again.store.passage_ids()
    assert again.search("interest rates inflation").hits[0].title.startswith("Central bank")


def test_crash_while_writing_the_index_leaves_the_old_file_loadable(
    core: IndexCore,
    settings: IndexSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    core.save_interval = 0  # write the index after every change
    core.add_articles([article("volcano")])
    before = (settings.data_dir / "passages.faiss").read_bytes()

    def crash_mid_write(path: Path, data: bytes) -> None:
        path.with_name(path.name + ".tmp").write_bytes(data[: len(data) // 2])
        raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(vectors_module, "_atomic_write", crash_mid_write)
    with pytest.raises(KeyboardInterrupt):
        core.add_articles([article("football")])
    monkeypatch.undo()
    assert (settings.data_dir / "passages.faiss").read_bytes() == before
    core.close()
    again = _reopen(settings)
    assert again.stats().articles == 2  # the database committed both
    assert sorted(again.vectors.ids().tolist()) == again.store.passage_ids()


def test_index_file_is_written_at_most_every_interval_and_at_close(
    core: IndexCore, settings: IndexSettings, caplog: pytest.LogCaptureFixture
) -> None:
    index_file = settings.data_dir / "passages.faiss"
    core.add_articles([article("volcano")])  # the first change is written at once
    first = index_file.read_bytes()
    core.add_articles([article("bank")])  # within the interval: not yet
    assert index_file.read_bytes() == first
    core.close()
    assert index_file.read_bytes() != first
    with caplog.at_level(logging.WARNING):
        again = _reopen(settings)
    assert "Rebuilding" not in caplog.text and again.vectors.count == again.stats().passages


def test_index_lagging_the_database_after_a_crash_catches_up_from_the_change_log(
    core: IndexCore, settings: IndexSettings, caplog: pytest.LogCaptureFixture
) -> None:
    core.add_articles([article("volcano")])
    core.add_articles([article("bank")])  # committed to SQLite, index file not yet written
    core.store.close()  # the process dies: no close(), no final save
    with caplog.at_level(logging.INFO, logger="index.core"):
        again = _reopen(settings)
    assert "Caught up with" in caplog.text and "Rebuilding" not in caplog.text
    assert again.rebuilds == 0
    assert again.search("central bank interest rates").hits[0].title.startswith("Central")


def test_damaged_index_file_is_rebuilt(
    core: IndexCore, settings: IndexSettings, caplog: pytest.LogCaptureFixture
) -> None:
    core.ingest([str(SAMPLE)])
    core.close()
    (settings.data_dir / "passages.faiss").write_bytes(b"garbage" * 10)
    with caplog.at_level(logging.WARNING):
        again = _reopen(settings)
    assert "unreadable" in caplog.text
    assert again.vectors.count == 5


def test_changed_model_re_embeds_every_passage(
    core: IndexCore, settings: IndexSettings, caplog: pytest.LogCaptureFixture
) -> None:
    core.ingest([str(SAMPLE)])
    core.close()
    other = HashEmbedder(dimension=32, name="another-model")
    with caplog.at_level(logging.WARNING):
        again = _reopen(settings, other)
    assert "Re-embedding 5 passages" in caplog.text
    assert again.vectors.dimension == 32 and again.vectors.count == 5
    assert again.stats().model == "another-model"
    assert again.search("mine clearance").hits


def test_schema_upgrade_migrates_in_place_keeping_data(
    core: IndexCore, settings: IndexSettings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    core.ingest([str(SAMPLE)])
    core.close()
    migrations = tmp_path / "migrations"  # today's revisions and one more
    shutil.copytree(database_module.MIGRATIONS, migrations)
    (migrations / "versions" / "9000_language.py").write_text(
        f'revision = "9000"\ndown_revision = "{SCHEMA_VERSION}"\n'
        "from alembic import op\nimport sqlalchemy as sa\n\n"
        "def upgrade():\n    op.add_column('articles', sa.Column('language', sa.Text))\n"
    )
    monkeypatch.setattr(database_module, "MIGRATIONS", migrations)
    again = _reopen(settings)
    assert again.store.database.revision() == "9000"
    assert again.stats().articles == 1
    assert "language" in [c[1] for c in _sqlite_rows(settings, "PRAGMA table_info(articles)")]


def test_database_from_a_newer_program_is_refused_clearly(
    core: IndexCore, settings: IndexSettings
) -> None:
    core.close()
    with sqlite3.connect(settings.data_dir / "articles.sqlite3") as db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")
    db.close()
    with pytest.raises(StorageError, match="upgrade the program"):
        _reopen(settings)


def _sqlite_rows(settings: IndexSettings, sql: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(settings.data_dir / "articles.sqlite3")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_reindex_swaps_in_a_new_index_while_searches_go_on(core: IndexCore) -> None:
    core.ingest([str(SAMPLE)])
    core.add_articles([article("volcano"), article("football")])
    old_index = core.vectors
    answers: list[int] = []
    stop = threading.Event()

    def keep_searching() -> None:
        while not stop.is_set():
            answers.append(len(core.search("volcano erupted ash").hits))

    searcher = threading.Thread(target=keep_searching)
    searcher.start()
    added_during: list[bool] = []

    def progress(done: int, total: int) -> None:
        if done and not added_during:  # an article arrives in the middle of the rebuild
            added_during.append(True)
            core.add_articles([article("bank")])

    report = core.reindex(progress)
    stop.set()
    searcher.join()
    assert core.vectors is not old_index
    assert answers and min(answers) >= 1
    assert report.articles == 4
    assert sorted(core.vectors.ids().tolist()) == core.store.passage_ids()
    assert core.search("central bank interest rates").hits[0].title.startswith("Central bank")


def test_second_reindex_while_one_runs_is_refused(core: IndexCore) -> None:
    from index.errors import ArticleIndexError

    core.add_articles([article("volcano")])
    errors: list[str] = []

    def progress(done: int, total: int) -> None:
        try:
            core.reindex()
        except ArticleIndexError as error:
            errors.append(str(error))

    core.reindex(progress)
    assert errors and errors[0] == "a reindex is already running"
