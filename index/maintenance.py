"""Looking after the data folder: integrity check, backup and restore of the database.

None of these loads the embedding model. ``check`` and ``backup`` may run while the bot
runs; ``restore`` replaces the database file, so stop the bot first. Backup and restore
copy the SQLite file; on PostgreSQL (DATABASE_URL) they refuse in one line pointing at
``pg_dump``, and ``check`` connects and compares the vector index with the database.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from index.core import database_path, index_path, open_store, vector_index_from_store
from index.database import LEGACY_VERSION, head_revision
from index.errors import StorageError
from index.settings import IndexSettings
from index.store import Store
from index.vectors import StaleIndexError, VectorIndex, meta_path

__all__ = ["CheckReport", "RestoreReport", "backup", "check", "restore"]


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What ``check`` found: the database's problems (none when it is sound), its size,
    and one line on the saved vector index."""

    database: Path | str
    exists: bool
    problems: list[str]
    articles: int = 0
    passages: int = 0
    vectors: str = ""

    @property
    def sound(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class RestoreReport:
    articles: int
    passages: int
    previous: Path | None  # where the replaced database was kept


def check(settings: IndexSettings) -> CheckReport:
    """SQLite's full ``integrity_check`` of the database, then whether the saved vector
    index matches it. Reads only. On PostgreSQL: connects (PostgreSQL checks its own
    pages), then the vector index."""
    if settings.database_url is not None:
        store = open_store(settings)
        try:
            counts = store.counts()
            return CheckReport(
                store.where,
                exists=True,
                problems=[],
                articles=counts.articles,
                passages=counts.passages,
                vectors=_vectors_state(store, index_path(settings)),
            )
        finally:
            store.close()
    path = database_path(settings)
    if not path.exists():
        return CheckReport(path, exists=False, problems=[])
    if path.stat().st_size == 0:
        problem = "empty file" + (
            f", but {index_path(settings)} exists" if index_path(settings).exists() else ""
        )
        return CheckReport(path, exists=True, problems=[problem])
    store = Store(path, read_only=True)
    try:
        problems = store.check(full=True)
        if problems:
            return CheckReport(path, exists=True, problems=problems)
        counts = store.counts()
        return CheckReport(
            path,
            exists=True,
            problems=[],
            articles=counts.articles,
            passages=counts.passages,
            vectors=_vectors_state(store, index_path(settings)),
        )
    finally:
        store.close()


def _vectors_state(store: Store, path: Path) -> str:
    counts = store.counts()
    model = store.get_meta("vectors_model") or ""
    try:
        loaded = VectorIndex.load(path, model=model, count=None, id_sum=None)
        behind = _changes_behind(store, loaded)
        if behind:
            return (
                f"{loaded.count} vectors, {behind} change(s) behind the database: caught up "
                "from the change log at the next start"
            )
        actual = loaded.meta()
        if (actual.count, actual.id_sum) != (counts.passages, counts.id_sum):
            raise StaleIndexError(
                f"index holds {actual.count} passages, the database {counts.passages}"
            )
    except StaleIndexError as reason:
        return f"{reason}: it is rebuilt from the database at the next start"
    return f"ok, {loaded.count} vectors match the database"


def _changes_behind(store: Store, loaded: VectorIndex) -> int | None:
    """How many change log entries the saved index lacks, when it can catch up by replay
    (None: it cannot, or the database predates the change log)."""
    if loaded.followed is None or "changes" not in store.tables():
        return None
    state = store.change_state()
    log_id, seq = loaded.followed
    if log_id != state.log_id or not state.pruned_to <= seq <= state.head:
        return None
    return store.pending_changes(seq)[0]


def backup(settings: IndexSettings, destination: Path) -> tuple[int, int]:
    """Copy the database to ``destination`` with SQLite's online backup API (a consistent
    copy even while the bot writes). Returns its (articles, passages). A damaged database
    is refused: its copy would be damaged too."""
    _sqlite_only(settings)
    source = database_path(settings)
    if not source.exists() or source.stat().st_size == 0:
        raise StorageError(f"there is no database to back up at {source}")
    if destination.is_dir():
        raise StorageError(f"{destination} is a folder: name the backup file to write")
    store = Store(source)  # checked on opening
    try:
        store.backup(destination)
        counts = store.counts()
    finally:
        store.close()
    return counts.articles, counts.passages


def restore(settings: IndexSettings, backup_file: Path) -> RestoreReport:
    """Replace the database with a backup, after checking the backup: a copy of it is
    integrity-checked, then renamed into place (the database it replaces is kept beside,
    as ``articles.sqlite3.before-restore``). The vector index is then rebuilt from the
    restored vectors, so the next start loads it without re-embedding."""
    _sqlite_only(settings)
    if not backup_file.is_file():
        raise StorageError(f"no backup file at {backup_file}")
    target = database_path(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(target.name + ".restoring")
    _remove_database(staged)
    shutil.copyfile(backup_file, staged)
    try:
        articles, passages = _verify_backup(staged, backup_file)
    except BaseException:
        _remove_database(staged)
        raise
    previous = _keep_aside(target)
    for suffix in ("-wal", "-shm"):  # the old database's journal must not replay into the new
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    os.replace(staged, target)
    _remove_database(staged)  # journal files a read-only check may have left beside it
    _rebuild_vectors(target, index_path(settings))
    return RestoreReport(articles, passages, previous)


def _verify_backup(staged: Path, original: Path) -> tuple[int, int]:
    """(articles, passages) of a sound backup of this program's database, else raises."""
    store = Store(staged, read_only=True)
    try:
        problems = store.check(full=True)
        if problems:
            raise StorageError(f"{original} is not a usable backup (damaged: {problems[0]})")
        if not {"meta", "articles", "passages"} <= store.tables():
            raise StorageError(f"{original} is not a backup of an article index")
        revision = store.database.revision()
        legacy = int(store.get_meta("schema_version") or 0) if revision is None else 0
        if legacy > LEGACY_VERSION or (revision is not None and revision > head_revision()):
            raise StorageError(
                f"{original} has schema {revision or legacy}, newer than this program's "
                f"{head_revision()}: upgrade the program"
            )
        counts = store.counts()
    finally:
        store.close()
    return counts.articles, counts.passages


def _sqlite_only(settings: IndexSettings) -> None:
    if settings.database_url is not None:
        raise StorageError(
            "backup and restore copy the SQLite file; with DATABASE_URL (PostgreSQL) use "
            "pg_dump --schema=newsbot_index and pg_restore"
        )


def _keep_aside(target: Path) -> Path | None:
    """Keep the database about to be replaced as ``<name>.before-restore``."""
    if not target.exists():
        return None
    aside = target.with_name(target.name + ".before-restore")
    aside.unlink(missing_ok=True)
    try:
        os.link(target, aside)  # instant, and the database stays in place until replaced
    except OSError:
        shutil.copyfile(target, aside)
    return aside


def _rebuild_vectors(database: Path, path: Path) -> None:
    store = Store(database)
    try:
        counts = store.counts()
        model = store.get_meta("vectors_model") or ""
        with contextlib.suppress(StaleIndexError):
            VectorIndex.load(path, model=model, count=counts.passages, id_sum=counts.id_sum)
            return  # the saved index already matches the restored database
        first = next(store.iter_vectors(batch=1), None)
        if first is None:  # nothing to index: the next start builds an empty index
            for stale in (path, meta_path(path)):
                stale.unlink(missing_ok=True)
            return
        dimension = first[1].shape[1]
        vector_index_from_store(store, dimension, model).save(path)
    finally:
        store.close()


def _remove_database(path: Path) -> None:
    for name in (str(path), f"{path}-wal", f"{path}-shm", f"{path}-journal"):
        Path(name).unlink(missing_ok=True)
