"""A damaged database is found, never written to, and explained in one line; a backup
brings it back."""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from index import DamagedDatabaseError, IndexCore, IndexSettings
from index.cli import main
from tests.factories import SAMPLE, article
from tests.fakes import HashEmbedder


@pytest.fixture
def data_dir(settings: IndexSettings, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data folder holding the sample and two articles, closed; the CLI points at it."""
    core = IndexCore.open(settings, HashEmbedder())
    core.ingest([str(SAMPLE)])
    core.add_articles([article("volcano"), article("bank")])
    core.close()
    monkeypatch.setenv("DATA_DIR", str(settings.data_dir))
    return settings.data_dir


def _database(data_dir: Path) -> Path:
    return data_dir / "articles.sqlite3"


def _garble_middle(path: Path) -> None:
    """4 KB of random bytes over one page in the middle of the file."""
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.seek(size // 2 // 4096 * 4096)
        handle.write(random.Random(4).randbytes(4096))


def _integrity(path: Path) -> list[str]:
    """SQLite's own verdict, independent of the code under test."""
    try:
        with sqlite3.connect(path) as db:
            return [row[0] for row in db.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as error:
        return [str(error)]
    finally:
        db.close()


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(
            lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), id="truncated"
        ),
        pytest.param(lambda p: p.write_bytes(random.Random(1).randbytes(60_000)), id="garbage"),
        pytest.param(_garble_middle, id="4KB-garbled"),
    ],
)
def test_damaged_database_is_refused_in_one_line_and_left_untouched(
    data_dir: Path,
    settings: IndexSettings,
    capsys: pytest.CaptureFixture[str],
    damage: Callable[[Path], object],
) -> None:
    database = _database(data_dir)
    damage(database)
    assert _integrity(database) != ["ok"]
    before = database.read_bytes()

    with pytest.raises(DamagedDatabaseError) as raised:
        IndexCore.open(settings, HashEmbedder())
    assert "\n" not in str(raised.value)
    assert "python -m index restore" in str(raised.value)

    for command in (["stats"], ["ask", "volcano"], ["ingest", str(SAMPLE)], ["reindex"]):
        code, out, err = _cli(capsys, *command)
        assert code == 1 and out == ""
        [line] = err.splitlines()
        assert line.startswith(f"error: {database} is damaged (") and "python -m index" in line
    assert database.read_bytes() == before  # nothing was written into it

    code, out, _ = _cli(capsys, "check")
    assert code == 1
    assert f"database   {database}: DAMAGED" in out and "python -m index restore" in out


def test_cli_shows_no_traceback_for_a_garbage_database(data_dir: Path) -> None:
    _database(data_dir).write_bytes(b"this is not a database\n" * 1000)
    result = subprocess.run(
        [sys.executable, "-m", "index", "stats"],
        capture_output=True,
        text=True,
        env={**os.environ, "DATA_DIR": str(data_dir)},
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: {_database(data_dir)} is damaged (file is not a database); nothing was "
        "written to it: restore a backup with `python -m index restore FILE`, or see "
        "`python -m index check` for details"
    ]


def test_damage_only_the_full_check_finds_stops_reindex_and_every_write(
    data_dir: Path, settings: IndexSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    database = _database(data_dir)
    with sqlite3.connect(database) as db:  # an index whose entries no longer match its table
        db.execute("PRAGMA writable_schema=ON")
        db.execute(
            "UPDATE sqlite_master SET sql = 'CREATE INDEX articles_url ON articles(title)' "
            "WHERE name = 'articles_url'"
        )
    db.close()
    core = IndexCore.open(settings, HashEmbedder())  # quick_check does not look that deep
    try:
        with pytest.raises(DamagedDatabaseError, match="is damaged"):
            core.reindex()
        with pytest.raises(DamagedDatabaseError):
            core.add_articles([article("football")])
        with pytest.raises(DamagedDatabaseError):
            core.remove(core.latest(1)[0].id)
        assert core.stats().articles == 3
    finally:
        core.close()

    code, out, _ = _cli(capsys, "check")
    assert code == 1 and "DAMAGED" in out and "articles_url" in out


def test_empty_database_beside_a_saved_index_is_not_taken_for_a_fresh_install(
    data_dir: Path, settings: IndexSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    _database(data_dir).write_bytes(b"")
    index_file = data_dir / "passages.faiss"
    saved = index_file.read_bytes()

    with pytest.raises(DamagedDatabaseError, match=r"empty file, but .*passages\.faiss exists"):
        IndexCore.open(settings, HashEmbedder())
    code, _, err = _cli(capsys, "stats")
    assert code == 1 and len(err.splitlines()) == 1 and "empty file" in err
    assert index_file.read_bytes() == saved
    assert _database(data_dir).stat().st_size == 0


def test_unreadable_database_beside_a_saved_index_is_refused(
    data_dir: Path, settings: IndexSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    database = _database(data_dir)
    database.unlink()
    database.mkdir()  # cannot be opened as a file, whoever runs the test
    code, out, err = _cli(capsys, "stats")
    assert code == 1 and out == ""
    [line] = err.splitlines()
    assert line.startswith(f"error: {database}: unable to open database file")
    assert (data_dir / "passages.faiss").exists()


def test_check_reports_a_sound_database_and_its_vector_index(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _cli(capsys, "check")
    assert code == 0
    assert out.splitlines() == [
        f"database   {_database(data_dir)}: ok (integrity_check), 3 articles, 7 passages",
        "vectors    ok, 7 vectors match the database",
    ]


def test_backup_then_restore_brings_the_articles_back(
    data_dir: Path,
    settings: IndexSettings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    backup = tmp_path / "backups" / "articles-backup.sqlite3"
    backup.parent.mkdir()
    code, out, _ = _cli(capsys, "backup", str(backup))
    assert code == 0 and out == f"backed up 3 articles, 7 passages to {backup}\n"
    assert _integrity(backup) == ["ok"]

    core = IndexCore.open(settings, HashEmbedder())  # life goes on, then the disk fails
    core.add_articles([article("football")])
    core.close()
    _garble_middle(_database(data_dir))

    code, out, _ = _cli(capsys, "restore", str(backup))
    assert code == 0
    assert out.startswith(f"restored 3 articles, 7 passages from {backup}")
    kept = _database(data_dir).with_name("articles.sqlite3.before-restore")
    assert kept.exists() and _integrity(kept) != ["ok"]

    with caplog.at_level(logging.WARNING):
        again = IndexCore.open(settings, HashEmbedder())
    try:
        assert "Rebuilding" not in caplog.text  # restore rebuilt the vector index
        assert again.stats().articles == 3 and again.vectors.count == 7
        assert again.search("volcano erupted ash").hits[0].title == "Volcano erupts near village"
    finally:
        again.close()


def test_restore_refuses_a_damaged_backup_and_changes_nothing(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad-backup.sqlite3"
    bad.write_bytes(random.Random(2).randbytes(40_000))
    before = _database(data_dir).read_bytes()
    code, out, err = _cli(capsys, "restore", str(bad))
    assert code == 1 and out == ""
    assert err == f"error: {bad} is not a usable backup (damaged: file is not a database)\n"
    assert _database(data_dir).read_bytes() == before
    assert sorted(p.name for p in data_dir.iterdir() if "restor" in p.name) == []


def test_backup_of_a_damaged_database_is_refused(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _garble_middle(_database(data_dir))
    code, _, err = _cli(capsys, "backup", str(tmp_path / "copy.sqlite3"))
    assert code == 1 and "is damaged" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "copy.sqlite3").exists()
