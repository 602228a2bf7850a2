"""Copying the article store to another database without re-embedding
(``python -m bot migrate --to postgresql://…``).

Articles travel whole, with their passages' vectors as stored. An article the target
already holds with the same content is left alone, so a second run copies nothing; one it
holds with other content is replaced by the source's. Into an empty target the passages
keep their ids, so the vector index saved in DATA_DIR still matches them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, text

from index.errors import StorageError
from index.schema import articles, passages
from index.store import Store

__all__ = ["CopyReport", "copy_articles"]


@dataclass(frozen=True, slots=True)
class CopyReport:
    articles: int  # copied (new or replaced)
    passages: int
    unchanged: int  # already in the target, same content


def copy_articles(source: Store, target: Store) -> CopyReport:
    """Copy every article of ``source`` that ``target`` lacks (or holds with other
    content), with its passages and vectors. Refuses when the two hold vectors of
    different embedding models."""
    model = source.get_meta("vectors_model")
    theirs = target.get_meta("vectors_model")
    if target.counts().passages and model and theirs and model != theirs:
        raise StorageError(
            f"{target.where} holds vectors of {theirs!r}, {source.where} of {model!r}: "
            "copy into an empty database, or reindex one with the other's model first"
        )
    keep_ids = target.counts().passages == 0
    copied = passages_copied = unchanged = 0
    for batch in source.iter_stored_articles(with_ids=keep_ids):
        hashes = _content_hashes(target, [a.row["id"] for a in batch])
        todo = [a for a in batch if hashes.get(a.row["id"]) != a.row["content_hash"]]
        unchanged += len(batch) - len(todo)
        if todo:
            target.put_articles(todo)
            copied += len(todo)
            passages_copied += sum(len(a.passages) for a in todo)
    if model:
        target.set_meta("vectors_model", model)
    if target.dialect == "postgresql":
        if keep_ids:
            _advance_sequence(target)
        with target.transaction() as db:  # fresh statistics: the planner uses the indexes
            db.exec_driver_sql("ANALYZE articles, passages, passage_words")
    return CopyReport(copied, passages_copied, unchanged)


def _content_hashes(store: Store, ids: list[str]) -> dict[str, str]:
    with store.read() as db:
        rows = db.execute(
            select(articles.c.id, articles.c.content_hash).where(articles.c.id.in_(ids))
        ).all()
    return {str(i): str(h) for i, h in rows}


def _advance_sequence(store: Store) -> None:
    """New passages continue after the copied ids (they were inserted explicitly)."""
    with store.transaction() as db:
        last = db.execute(select(func.max(passages.c.id))).scalar() or 0
        db.execute(
            text("SELECT setval(pg_get_serial_sequence(:table, 'id'), :last + 1, false)"),
            {"table": f"{store.database.schema}.passages", "last": last},
        )
