"""The vector index: exact where it must be (removal, replacement, filters), approximate
only in ranking, and both kinds persist and are rebuilt from SQLite when they do not match."""

from __future__ import annotations

import logging
from pathlib import Path

import faiss
import numpy as np
import pytest

from index import IndexCore, IndexSettings
from index import vectors as vectors_module
from index.store import Store
from index.vectors import StaleIndexError, VectorIndex
from tests.factories import SAMPLE, article
from tests.fakes import HashEmbedder

DIMENSION = 16


def _unit(rng: np.random.Generator, rows: int) -> np.ndarray:
    vectors = rng.standard_normal((rows, DIMENSION)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("seed", range(6))
def test_random_adds_removals_and_replacements_never_return_a_stale_passage(seed: int) -> None:
    """Against a brute-force reference: every id returned is live, scored with its current
    vector; with a filter only allowed ids come back; the flat kind returns the exact top k."""
    rng = np.random.default_rng(seed)
    index = VectorIndex(DIMENSION, "m", approximate_from=150)
    live: dict[int, np.ndarray] = {}
    gone: set[int] = set()
    next_id = 1
    kinds = set()
    for _ in range(120):
        action = rng.choice(["add", "add", "remove", "replace", "search"])
        if action == "add" or not live:
            count = int(rng.integers(1, 25))
            ids = np.arange(next_id, next_id + count, dtype=np.int64)
            vectors = _unit(rng, count)
            next_id += count
            index.add(ids, vectors)
            live.update(zip(ids.tolist(), vectors, strict=True))
        elif action == "remove":
            victims = rng.choice(sorted(live), size=min(len(live), int(rng.integers(1, 8))))
            index.remove(victims)
            for victim in victims.tolist():
                live.pop(victim, None)
                gone.add(victim)
        elif action == "replace":  # as an updated article does: old ids out, new ids in
            old = rng.choice(sorted(live), size=min(len(live), 3), replace=False).tolist()
            index.remove(old)
            new = np.arange(next_id, next_id + len(old), dtype=np.int64)
            next_id += len(old)
            # the new vectors are the old ones: the stale ids would score exactly as well
            vectors = np.stack([live.pop(i) for i in old])
            index.add(new, vectors)
            gone.update(old)
            live.update(zip(new.tolist(), vectors, strict=True))
        else:
            query = _unit(rng, 1)[0]
            allowed = None
            if rng.random() < 0.3:
                allowed = rng.choice(sorted(live) + sorted(gone), 20)  # stale ids too
            ids, scores = index.search(query, 10, allowed)
            returned = ids.tolist()
            assert not set(returned) & gone
            assert set(returned) <= set(live)
            assert len(returned) == len(set(returned))
            if allowed is not None:
                assert set(returned) <= set(allowed.tolist())
            reference = {i: float(live[i] @ query) for i in returned}
            np.testing.assert_allclose(scores, [reference[i] for i in returned], atol=0.05)
            if index.kind == "flat" and allowed is None:
                exact = sorted(live, key=lambda i: -float(live[i] @ query))[: len(returned)]
                assert returned == exact
        kinds.add(index.kind)
        assert index.count == len(live)
        assert sorted(index.ids().tolist()) == sorted(live)
    assert kinds == {"flat", "ivf-sq8"}  # the sequence crossed the threshold


def test_the_approximate_index_finds_a_stored_vector_first() -> None:
    rng = np.random.default_rng(0)
    vectors = _unit(rng, 4000)
    index = VectorIndex(DIMENSION, "m", approximate_from=1000)
    index.add(np.arange(1, 4001), vectors)
    assert index.kind == "ivf-sq8"
    for row in rng.choice(4000, 30, replace=False).tolist():
        assert index.search(vectors[row], 5)[0][0] == row + 1


def test_vectors_are_returned_by_id_for_both_kinds() -> None:
    rng = np.random.default_rng(1)
    vectors = _unit(rng, 300)
    for threshold in (10_000, 100):
        index = VectorIndex(DIMENSION, "m", approximate_from=threshold)
        index.add(np.arange(1, 301), vectors)
        got = index.vectors(np.array([300, 7]))
        np.testing.assert_allclose(got, vectors[[299, 6]], atol=0.02)
        with pytest.raises(KeyError):
            index.vectors(np.array([999]))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_vectors_are_refused_on_add(bad: float) -> None:
    index = VectorIndex(DIMENSION, "m")
    vectors = _unit(np.random.default_rng(2), 3)
    vectors[1, 4] = bad
    with pytest.raises(ValueError, match=r"NaN or infinite.*\[11\]"):
        index.add(np.array([10, 11, 12]), vectors)
    assert index.count == 0


@pytest.mark.parametrize("threshold", [10_000, 100])
def test_both_kinds_persist_and_reject_a_mismatch(tmp_path: Path, threshold: int) -> None:
    rng = np.random.default_rng(3)
    index = VectorIndex(DIMENSION, "m", approximate_from=threshold)
    index.add(np.arange(1, 401), _unit(rng, 400))
    index.remove([5])
    path = tmp_path / "passages.faiss"
    index.save(path)
    meta = index.meta()
    loaded = VectorIndex.load(path, model="m", count=399, id_sum=meta.id_sum)
    assert loaded.kind == index.kind == ("flat" if threshold > 400 else "ivf-sq8")
    query = _unit(rng, 1)[0]
    assert loaded.search(query, 5)[0].tolist() == index.search(query, 5)[0].tolist()
    with pytest.raises(StaleIndexError, match="the database 400"):
        VectorIndex.load(path, model="m", count=400, id_sum=meta.id_sum + 5)
    with pytest.raises(StaleIndexError, match="passage ids differ"):
        VectorIndex.load(path, model="m", count=399, id_sum=meta.id_sum + 1)
    with pytest.raises(StaleIndexError, match="model"):
        VectorIndex.load(path, model="other", count=399, id_sum=meta.id_sum)


@pytest.mark.parametrize("approximate", [False, True])
def test_a_core_reopens_rebuilds_and_reindexes_either_kind(
    settings: IndexSettings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    approximate: bool,
) -> None:
    if approximate:
        monkeypatch.setattr(vectors_module, "APPROXIMATE_FROM", 3)
    kind = "ivf-sq8" if approximate else "flat"
    core = IndexCore.open(settings, HashEmbedder())
    core.ingest([str(SAMPLE)])
    core.add_articles([article("volcano"), article("bank")])
    assert core.vectors.kind == kind
    core.close()

    with caplog.at_level(logging.WARNING):
        again = IndexCore.open(settings, HashEmbedder())
    assert "Rebuilding" not in caplog.text
    assert again.vectors.kind == kind
    assert sorted(again.vectors.ids().tolist()) == again.store.passage_ids()
    again.remove(again.search("central bank interest rates").hits[0].article_id)  # saved
    again.remove(again.search("volcano eruption").hits[0].article_id)  # within 30 s: not yet
    again.store.close()  # dies before saving: the index file lags the database
    store = Store(settings.data_dir / "articles.sqlite3")
    store.prune_changes(keep=0)  # and the change log no longer reaches back to it
    store.close()

    with caplog.at_level(logging.WARNING):
        rebuilt = IndexCore.open(settings, HashEmbedder())
    assert "Rebuilding the vector index from the database" in caplog.text
    assert rebuilt.vectors.kind == kind
    assert sorted(rebuilt.vectors.ids().tolist()) == rebuilt.store.passage_ids()
    assert all("olcano" not in hit.title for hit in rebuilt.search("volcano eruption").hits)
    rebuilt.reindex()
    assert rebuilt.vectors.kind == kind
    assert sorted(rebuilt.vectors.ids().tolist()) == rebuilt.store.passage_ids()
    assert rebuilt.search("mine clearance in Azerbaijan").hits
    rebuilt.close()


@pytest.mark.parametrize("approximate", [False, True])
def test_an_index_file_with_nan_vectors_is_rebuilt_on_open(
    settings: IndexSettings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    approximate: bool,
) -> None:
    """Ids and metadata intact, values poisoned: the file is damaged, not trusted."""
    if approximate:
        monkeypatch.setattr(vectors_module, "APPROXIMATE_FROM", 3)
    core = IndexCore.open(settings, HashEmbedder())
    core.ingest([str(SAMPLE)])
    core.close()
    path = settings.data_dir / "passages.faiss"
    index = faiss.read_index(str(path))
    if approximate:
        centroids = faiss.downcast_index(faiss.extract_index_ivf(index).quantizer)
        poisoned = faiss.vector_to_array(centroids.codes).view(np.float32).copy()
        poisoned[3] = np.nan
        faiss.copy_array_to_vector(poisoned.view(np.uint8), centroids.codes)
    else:
        flat = faiss.downcast_index(index.index)
        poisoned = faiss.vector_to_array(flat.codes).view(np.float32).copy()
        poisoned[:: DIMENSION * 2] = np.nan
        faiss.copy_array_to_vector(poisoned.view(np.uint8), flat.codes)
    faiss.write_index(index, str(path))

    with caplog.at_level(logging.WARNING):
        again = IndexCore.open(settings, HashEmbedder())
    assert "Rebuilding the vector index from the database" in caplog.text
    assert "NaN or infinite" in caplog.text
    assert again.vectors.count == again.stats().passages == 5
    assert again.search("mine clearance in Azerbaijan").hits
    again.close()
    assert (
        VectorIndex.load(
            path, model=again.embedder.name, count=5, id_sum=again.vectors.meta().id_sum
        ).count
        == 5
    )
