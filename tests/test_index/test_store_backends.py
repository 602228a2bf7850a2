"""The article store behaves the same on SQLite and PostgreSQL: ingest, replace, remove,
keyword search, filters, vectors, the FAISS index rebuilt from the store, migrations."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import psycopg
import pytest

from index import IndexCore, IndexSettings
from index.database import head_revision
from index.errors import StorageError
from index.formats import make_article
from index.models import SearchFilters
from index.schema import SCHEMA_VERSION
from tests.factories import SAMPLE, article
from tests.fakes import HashEmbedder

WEIGHTS = (2.0, 1.0)
VOLCANO_URL = "https://news.example/volcano"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_settings(request: pytest.FixtureRequest, tmp_path: Path) -> IndexSettings:
    """Index settings on SQLite in DATA_DIR, or on a fresh PostgreSQL database."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    return IndexSettings(  # type: ignore[call-arg]
        data_dir=tmp_path / "data", database_url=url, _env_file=None
    )


@pytest.fixture
def index(backend_settings: IndexSettings) -> Iterator[IndexCore]:
    core = IndexCore.open(backend_settings, HashEmbedder())
    core.min_relevance = 0.2  # the fake embedder's scores run lower than the real model's
    yield core
    core.close()


def test_ingest_search_replace_and_remove(index: IndexCore) -> None:
    report = index.ingest([str(SAMPLE)])
    index.add_articles([article("volcano", url=VOLCANO_URL), article("bank")])
    assert report.added and index.stats().articles == 3
    [hit] = index.search("volcano erupted ash", k=1).hits
    assert hit.title == "Volcano erupts near village" and "ash" in hit.quote

    changed = article("volcano", url=VOLCANO_URL, text="The lava reached the coast road.")
    before = index.store.article_passage_ids(changed.id)
    assert index.add_articles([changed]).updated == [changed.title]
    after = index.store.article_passage_ids(changed.id)
    assert set(before).isdisjoint(after) and index.vectors.count == index.stats().passages
    assert index.store.keyword_search(["ash"], 10, None, WEIGHTS) == []
    assert index.store.keyword_search(["lava"], 10, None, WEIGHTS)[0][0] in after

    removed = index.remove(changed.id)
    assert removed is not None and removed.passages == len(after)
    assert index.store.article(changed.id) is None
    assert index.store.keyword_search(["lava"], 10, None, WEIGHTS) == []
    assert index.stats().articles == 2 and index.vectors.count == index.stats().passages


def test_keyword_search_stems_weights_headlines_and_counts_words(index: IndexCore) -> None:
    index.add_articles(
        [
            article("volcano"),
            article("bank"),
            make_article(
                title="Tourists return to the island",
                text="Guides say the volcano is quiet. Hotels are full again this summer.",
                url=None,
                outlet="Daily Test",
                author=None,
                published=None,
                source=None,
            ),
        ]
    )
    found = index.store.keyword_search(["volcanoes", "erupting"], 10, None, WEIGHTS)
    titles = [index.store.passages([pid])[pid].title for pid, _ in found]
    assert titles[0] == "Volcano erupts near village"  # headline and body, both words
    assert "Tourists return to the island" in titles
    assert "Central bank raises interest rates" not in titles
    assert found[0][1] > found[-1][1] > 0
    best = found[0][0]
    assert index.store.words_found(["volcanoes", "erupted", "giraffe"], best) == 2
    vocabulary = dict(index.store.vocabulary())
    assert vocabulary[next(t for t in vocabulary if t.startswith("volcano"))] == 2


def test_filters_by_outlet_and_date(index: IndexCore) -> None:
    index.add_articles(
        [
            article("volcano", outlet="Daily Test", published=date(2024, 5, 1)),
            article("bank", outlet="Other Paper", published=date(2023, 1, 2)),
        ]
    )
    only_daily = SearchFilters(outlets=("daily test",))
    assert len(index.store.allowed_ids(only_daily)) == 1
    assert index.store.keyword_search(["bank", "volcano"], 10, only_daily, WEIGHTS)
    assert not index.store.keyword_search(["bank"], 10, only_daily, WEIGHTS)
    since = SearchFilters(since=date(2024, 1, 1))
    [hit] = index.search("interest rates volcano", k=5, filters=since).hits
    assert hit.published == date(2024, 5, 1)
    assert index.search("volcano", filters=SearchFilters(until=date(2020, 1, 1))).refused
    assert [s for s, _ in index.sources()] == ["Daily Test", "Other Paper"]


def test_vectors_round_trip_exactly(index: IndexCore) -> None:
    index.ingest([str(SAMPLE)])
    ids, vectors = zip(*index.store.iter_vectors(batch=2), strict=True)
    all_ids = np.concatenate(ids)
    assert list(all_ids) == index.store.passage_ids()
    np.testing.assert_array_equal(np.concatenate(vectors), index.vectors.vectors(all_ids))
    row = index.store.passages([int(all_ids[0])])[int(all_ids[0])]
    assert row.sentence_vectors.shape == (len(row.sentences), index.embedder.dimension)
    assert row.sentence_vectors.dtype == np.float32


def test_vector_index_is_rebuilt_from_the_store_without_re_embedding(
    index: IndexCore, backend_settings: IndexSettings
) -> None:
    index.ingest([str(SAMPLE)])
    index.add_articles([article("volcano")])
    expected = [h.passage_id for h in index.search("volcano ash village", k=3).hits]
    index.close()
    index.index_path.unlink()  # only the database is left
    embedder = HashEmbedder()
    again = IndexCore.open(backend_settings, embedder)
    try:
        assert embedder.calls == 0  # vectors came from the database
        assert again.vectors.count == again.stats().passages
        again.min_relevance = 0.2
        assert [h.passage_id for h in again.search("volcano ash village", k=3).hits] == expected
    finally:
        again.close()


def test_migrations_build_the_newest_schema_on_an_empty_database(index: IndexCore) -> None:
    assert head_revision() == SCHEMA_VERSION
    assert index.store.database.revision() == head_revision()
    assert {"meta", "articles", "passages"} <= index.store.tables()


def test_database_from_a_newer_program_is_refused(
    index: IndexCore, backend_settings: IndexSettings
) -> None:
    with index.store.transaction() as db:
        db.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    index.close()
    with pytest.raises(StorageError, match=r"newer than this program's .*upgrade the program"):
        IndexCore.open(backend_settings, HashEmbedder())


def test_postgresql_tables_live_in_their_own_schema(postgres_url: str, tmp_path: Path) -> None:
    settings = IndexSettings(  # type: ignore[call-arg]
        data_dir=tmp_path, database_url=postgres_url, _env_file=None
    )
    IndexCore.open(settings, HashEmbedder()).close()
    with psycopg.connect(postgres_url) as db:
        tables = {
            row[0]
            for row in db.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'newsbot_index'"
            )
        }
    assert tables == {"alembic_version", "meta", "articles", "passages", "passage_words", "changes"}


def test_wrong_database_url_is_one_line_without_the_password(tmp_path: Path) -> None:
    settings = IndexSettings(  # type: ignore[call-arg]
        data_dir=tmp_path,
        database_url="postgresql://someone:hunter2@127.0.0.1:1/nothing",
        _env_file=None,
    )
    with pytest.raises(StorageError) as raised:
        IndexCore.open(settings, HashEmbedder())
    message = str(raised.value)
    assert "\n" not in message and "hunter2" not in message
    assert "someone:***@127.0.0.1:1/nothing" in message and "PostgreSQL is running" in message


# The hand-written schema as it was before Alembic (meta.schema_version = 1).
LEGACY_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE articles (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, text TEXT NOT NULL, url TEXT, outlet TEXT,
    author TEXT, published TEXT, source TEXT, content_hash TEXT NOT NULL,
    ingested_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE INDEX articles_url ON articles(url);
CREATE INDEX articles_published ON articles(published);
CREATE INDEX articles_outlet ON articles(outlet COLLATE NOCASE);
CREATE TABLE passages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    position INTEGER NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,
    text TEXT NOT NULL, sentences TEXT NOT NULL, vector BLOB NOT NULL,
    sentence_vectors BLOB NOT NULL
);
CREATE INDEX passages_article ON passages(article_id);
CREATE VIRTUAL TABLE passages_fts USING fts5(
    title, body, tokenize = 'porter unicode61 remove_diacritics 2'
);
INSERT INTO meta VALUES ('schema_version', '1'), ('vectors_model', 'fake-hash-embedder');
"""


def _legacy_folder(data_dir: Path) -> None:
    """A DATA_DIR written by the program before Alembic: one article, two passages."""
    data_dir.mkdir(parents=True)
    embedder = HashEmbedder()
    texts = ["The volcano erupted, sending ash over the village.", "Lava reached the road."]
    db = sqlite3.connect(data_dir / "articles.sqlite3")
    try:
        db.executescript(LEGACY_SCHEMA)
        db.execute(
            "INSERT INTO articles VALUES ('abc123', 'Volcano erupts', ?, NULL, 'Daily Test', "
            "NULL, '2024-05-01', NULL, 'hash', '2024-05-01T10:00:00+00:00', "
            "'2024-05-01T10:00:00+00:00')",
            ("\n\n".join(texts),),
        )
        for position, text in enumerate(texts):
            vector = embedder.encode([text])[0]
            cursor = db.execute(
                "INSERT INTO passages (article_id, position, start, end, text, sentences, "
                "vector, sentence_vectors) VALUES ('abc123', ?, 0, ?, ?, ?, ?, ?)",
                (
                    position,
                    len(text),
                    text,
                    f"[[0, {len(text)}]]",
                    vector.astype(np.float32).tobytes(),
                    vector[None, :].astype(np.float16).tobytes(),
                ),
            )
            db.execute(
                "INSERT INTO passages_fts (rowid, title, body) VALUES (?, 'Volcano erupts', ?)",
                (cursor.lastrowid, text),
            )
        db.commit()
    finally:
        db.close()


def test_a_data_folder_from_before_alembic_upgrades_in_place(settings: IndexSettings) -> None:
    _legacy_folder(settings.data_dir)
    embedder = HashEmbedder()
    core = IndexCore.open(settings, embedder)
    try:
        assert core.store.database.revision() == head_revision()
        assert embedder.calls == 0  # the vectors were kept: nothing re-embedded
        assert core.stats().articles == 1 and core.vectors.count == 2
        core.min_relevance = 0.2
        [hit] = core.search("volcano ash", k=1).hits
        assert hit.article_id == "abc123" and "ash" in hit.quote
        core.add_articles([article("bank")])
        assert core.store.keyword_search(["interest"], 5, None, WEIGHTS)
        assert sorted(core.store.passage_ids())[-1] > 2  # ids go on after the old ones
    finally:
        core.close()


def test_a_legacy_file_newer_than_the_first_revision_is_refused(
    settings: IndexSettings,
) -> None:
    _legacy_folder(settings.data_dir)
    with sqlite3.connect(settings.data_dir / "articles.sqlite3") as db:
        db.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    db.close()
    with pytest.raises(StorageError, match=r"schema version 7, newer .*upgrade the program"):
        IndexCore.open(settings, HashEmbedder())
