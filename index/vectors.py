"""The FAISS vector index over L2-normalised float32 vectors, searched by inner product and
keyed by explicit int64 passage ids, persisted atomically with its metadata beside it.

Two kinds, chosen by size (README, "Speed and memory"):

- ``flat`` (``IndexIDMap2(IndexFlatIP)``): exact, 1.5 KB a vector; used below
  ``APPROXIMATE_FROM`` vectors, where a full scan is cheap anyway.
- ``ivf-sq8`` (``IndexIVFScalarQuantizer``, 8-bit codes): approximate, 4x smaller, and its
  search time grows with the square root of the collection. Past the threshold the flat
  index is converted in place; the inverted lists are retrained when the collection
  outgrows them.

Both delete exactly (``remove_ids``), so a removed or replaced passage is never returned.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import faiss
import numpy as np

__all__ = [
    "APPROXIMATE_FROM",
    "IndexMeta",
    "StaleIndexError",
    "VectorIndex",
    "meta_path",
    "write_snapshot",
]

APPROXIMATE_FROM = 20_000  # vectors; the exact scan of 20k costs what IVF does at 100k
NPROBE = 64  # inverted lists scanned per query: recall@50 0.90 at 100k, 0.83 at 1M (README)
TRAIN_PER_LIST = 40  # training vectors per inverted list (FAISS warns below 39)
_KMEANS_ITERATIONS = 10
_SMALL_BATCH = 1000  # adds and removals smaller than this run on one thread (see _one_thread)
_THREADS = faiss.omp_get_max_threads()


_Kind = faiss.IndexIDMap2 | faiss.IndexIVFScalarQuantizer


class StaleIndexError(Exception):
    """The saved index cannot be used as it is; the message says why."""


@dataclass(frozen=True, slots=True)
class IndexMeta:
    model: str
    dimension: int
    count: int
    id_sum: int  # sum of the passage ids: a cheap check that the ids match the database
    built_at: str
    faiss_version: str = faiss.__version__
    kind: str = "flat"
    change_log: str | None = None  # the database's change log this index follows ...
    applied_seq: int | None = None  # ... and its last entry applied (index/changes.py)


class VectorIndex:
    """Flat or IVF-SQ8 by size (see the module docstring); all methods are thread-safe.

    ``expected`` is how many vectors are about to be added (a rebuild): the inverted lists
    are then sized for all of them at once instead of being retrained on the way.
    """

    def __init__(
        self,
        dimension: int,
        model: str,
        built_at: str | None = None,
        *,
        expected: int = 0,
        approximate_from: int | None = None,
    ) -> None:
        self.dimension = dimension
        self.model = model
        self.built_at = built_at or _now()
        self.expected = expected
        self.approximate_from = approximate_from or APPROXIMATE_FROM
        self._index: _Kind = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self._lock = threading.RLock()
        self.followed: tuple[str, int] | None = None  # (change log, seq) of a loaded index
        self.changes = 0  # adds and removals so far: whoever caches what it holds can tell

    @property
    def kind(self) -> str:
        return "ivf-sq8" if isinstance(self._index, faiss.IndexIVF) else "flat"

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    @property
    def nbytes(self) -> int:
        """Memory the vectors and their ids take (about the size of the saved file)."""
        index = self._index
        if isinstance(index, faiss.IndexIVF):
            return self.count * (index.code_size + 8) + index.nlist * self.dimension * 4
        return self.count * (self.dimension * 4 + 8)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under their ids; raises ``ValueError`` for NaN/inf or a wrong shape."""
        if not len(ids):
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (len(ids), self.dimension):
            raise ValueError(
                f"expected {len(ids)} vectors of {self.dimension} dimensions, "
                f"got shape {vectors.shape}"
            )
        if not np.isfinite(vectors).all():
            bad = np.asarray(ids)[~np.isfinite(vectors).all(axis=1)]
            raise ValueError(
                f"vectors with NaN or infinite values cannot be indexed (passage ids "
                f"{bad[:5].tolist()}); re-embed them"
            )
        with self._lock, _one_thread(len(ids) < _SMALL_BATCH):
            self._index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))
            self._grow()
            self.changes += 1

    def remove(self, ids: list[int] | np.ndarray) -> None:
        if len(ids):
            with self._lock, _one_thread(True):
                self._index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64)))
                self.changes += 1

    def ids(self) -> np.ndarray:
        with self._lock:
            index = self._index
            if isinstance(index, faiss.IndexIVF):
                return np.concatenate(
                    [_list_ids(index, n) for n in range(index.nlist)] or [np.zeros(0, np.int64)]
                )
            return faiss.vector_to_array(index.id_map).astype(np.int64)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ``ids`` (decoded, so approximate for ``ivf-sq8``)."""
        ids = np.asarray(ids, dtype=np.int64)
        with self._lock:
            index = self._index
            if not isinstance(index, faiss.IndexIVF):
                try:
                    return index.reconstruct_batch(ids)
                except RuntimeError as error:  # FAISS: "key ... not found"
                    raise KeyError(f"passage ids not in the vector index ({error})") from None
            found: dict[int, np.ndarray] = {}
            for ids_, vectors in _decoded_lists(index):
                for at in np.flatnonzero(np.isin(ids_, ids)):
                    found[int(ids_[at])] = vectors[at]
        missing = [i for i in ids.tolist() if i not in found]
        if missing:
            raise KeyError(f"passage ids not in the vector index: {missing[:5]}")
        return np.stack([found[i] for i in ids.tolist()]) if len(ids) else _empty(self.dimension)

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best ``k`` (ids, scores) for one query vector, optionally among ``allowed`` ids."""
        with self._lock:
            index = self._index
            if self.count == 0 or k <= 0:
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
            selector = faiss.IDSelectorBatch(allowed) if allowed is not None else None
            params: faiss.SearchParameters | None
            if isinstance(index, faiss.IndexIVF):
                # A filter keeps a share of each list: scan more lists to see as many vectors.
                share = len(allowed) / self.count if allowed is not None else 1.0
                nprobe = _nprobe(index.nlist) / max(share, 1e-9)
                nprobe = min(index.nlist, math.ceil(nprobe))
                params = faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)  # type: ignore[call-arg]  # stubs lag the API
            else:
                params = faiss.SearchParameters(sel=selector) if selector else None  # type: ignore[call-arg]  # stubs lag the API
            scores, ids = index.search(
                np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32),
                min(k, self.count),
                params=params,
            )
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def meta(self) -> IndexMeta:
        ids = self.ids()
        return IndexMeta(
            self.model, self.dimension, len(ids), int(ids.sum()), self.built_at, kind=self.kind
        )

    def save(self, path: Path, followed: tuple[str, int] | None = None) -> None:
        """Write the index and then its metadata, each aside and renamed into place. The
        metadata names the count and id checksum, so a crash between the two renames
        leaves a pair that ``load`` rejects (and the caller rebuilds); ``followed`` is the
        (change log, last entry applied) it records."""
        write_snapshot(path, *self.snapshot(followed))

    def snapshot(self, followed: tuple[str, int] | None = None) -> tuple[bytes, IndexMeta]:
        """The index serialised, and its metadata: ``save`` in two steps, so that a caller
        holding a lock need not hold it while the file is written."""
        with self._lock:
            data = faiss.serialize_index(self._index)
            meta = self.meta()
        if followed is not None:
            meta = replace(meta, change_log=followed[0], applied_seq=followed[1])
        return data.tobytes(), meta

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        model: str,
        count: int | None,
        id_sum: int | None,
        approximate_from: int | None = None,
    ) -> VectorIndex:
        """The saved index if it matches the expected model and passages, else raises;
        ``count`` and ``id_sum`` None: whatever passages it holds (the caller catches up
        from the change log it names in ``followed``)."""
        if not path.exists():
            raise StaleIndexError("no saved vector index")
        try:
            meta = IndexMeta(**json.loads(meta_path(path).read_text()))
            index = faiss.read_index(str(path))  # no second copy of the bytes in memory
        except Exception as error:
            raise StaleIndexError(f"saved vector index is unreadable ({error})") from None
        if meta.model != model:
            raise StaleIndexError(f"index was built with model {meta.model!r}, not {model!r}")
        index = _known_kind(index, meta.dimension)
        if not _finite(index):
            raise StaleIndexError("saved vector index holds NaN or infinite values")
        loaded = cls(meta.dimension, meta.model, meta.built_at, approximate_from=approximate_from)
        loaded._index = index
        actual = loaded.meta()
        if (actual.count, actual.id_sum, actual.kind) != (meta.count, meta.id_sum, meta.kind):
            raise StaleIndexError("index file does not match its metadata")
        if count is not None and (actual.count, actual.id_sum) != (count, id_sum):
            raise StaleIndexError(
                f"index holds {actual.count} passages, the database {count}"
                if actual.count != count
                else "index passage ids differ from the database"
            )
        with loaded._lock:
            loaded._grow()
        if meta.change_log is not None and meta.applied_seq is not None:
            loaded.followed = (meta.change_log, meta.applied_seq)
        return loaded

    # -- growing from flat to IVF ---------------------------------------------------------

    def _grow(self) -> None:
        """Convert to IVF past the threshold, retrain IVF when its lists grew too long.
        Called with the lock held."""
        index = self._index
        if self.count < self.approximate_from:
            return
        nlist = _nlist_for(max(self.count, self.expected))
        if isinstance(index, faiss.IndexIVF):
            if nlist >= 2 * index.nlist:
                ids, vectors = zip(*_decoded_lists(index), strict=True)
                self._index = _trained_ivf(np.concatenate(ids), np.concatenate(vectors), nlist)
            return
        if self.count < min(max(self.count, self.expected), TRAIN_PER_LIST * nlist):
            return  # a rebuild: keep collecting exact vectors to train on
        ids = faiss.vector_to_array(index.id_map).astype(np.int64)
        self._index = _trained_ivf(ids, _flat_vectors(index), nlist)


@contextmanager
def _one_thread(small: bool) -> Iterator[None]:
    """FAISS on one OpenMP thread for small work: starting a parallel region costs more
    than the work itself (adding one article's vectors to IVF took 27 ms on 2 threads of a
    busy machine, 0.6 ms on one). Queries for one vector run on one thread anyway."""
    if not small:
        yield
        return
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(_THREADS)


def _nlist_for(count: int) -> int:
    """Inverted lists for ``count`` vectors: a power of two near its square root (fewer
    for a tiny collection, so that each list has enough vectors to train on)."""
    nlist = min(4096, max(64, 2 ** round(math.log2(math.sqrt(max(count, 1))))))
    return int(max(1, min(nlist, count // TRAIN_PER_LIST)))


def _nprobe(nlist: int) -> int:
    return min(nlist, NPROBE)


def _trained_ivf(ids: np.ndarray, vectors: np.ndarray, nlist: int) -> faiss.IndexIVFScalarQuantizer:
    dimension = vectors.shape[1]
    index = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(dimension),
        dimension,
        nlist,
        faiss.ScalarQuantizer.QT_8bit,
        faiss.METRIC_INNER_PRODUCT,
    )
    index.cp.spherical = True  # the vectors are unit length: centroids on the sphere
    index.cp.niter = _KMEANS_ITERATIONS
    # Code ranges 20% wider than the training sample's, so later vectors are not clipped.
    index.sq.rangestat = faiss.ScalarQuantizer.RS_minmax
    index.sq.rangestat_arg = 0.2
    sample = np.random.default_rng(0).permutation(len(vectors))[: TRAIN_PER_LIST * nlist * 4]
    index.train(np.ascontiguousarray(vectors[np.sort(sample)]))
    index.add_with_ids(np.ascontiguousarray(vectors), ids)
    return index


def _lists(index: faiss.IndexIVF) -> faiss.InvertedLists:
    if index.invlists is None:
        raise StaleIndexError("vector index has no inverted lists")
    return index.invlists


def _flat_vectors(index: faiss.IndexIDMap2) -> np.ndarray:
    """The float32 vectors of a flat index, in insertion order (a copy)."""
    flat = cast(faiss.IndexFlat, faiss.downcast_index(index.index))
    return faiss.vector_to_array(flat.codes).view(np.float32).reshape(-1, index.d)


def _list_ids(index: faiss.IndexIVF, list_no: int) -> np.ndarray:
    lists = _lists(index)
    size = lists.list_size(list_no)
    if not size:
        return np.zeros(0, dtype=np.int64)
    return faiss.rev_swig_ptr(lists.get_ids(list_no), size).copy()


def _decoded_lists(
    index: faiss.IndexIVFScalarQuantizer,
) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """(ids, decoded vectors) of each non-empty inverted list."""
    lists = _lists(index)
    for list_no in range(index.nlist):
        size = lists.list_size(list_no)
        if size:
            codes = faiss.rev_swig_ptr(lists.get_codes(list_no), size * index.code_size)
            vectors = index.sq.decode(np.array(codes).reshape(size, index.code_size))
            if index.by_residual:
                vectors += index.quantizer.reconstruct(list_no)
            yield _list_ids(index, list_no), vectors


def _known_kind(index: faiss.Index, dimension: int) -> _Kind:
    """The deserialised index if it is one this module writes, else raises."""
    if index.d != dimension:
        raise StaleIndexError(f"saved vector index has {index.d} dimensions, not {dimension}")
    if isinstance(index, faiss.IndexIDMap2) and isinstance(
        faiss.downcast_index(index.index), faiss.IndexFlatIP
    ):
        return index
    if isinstance(index, faiss.IndexIVFScalarQuantizer) and index.is_trained:
        return index
    raise StaleIndexError(f"saved vector index is a {type(index).__name__}, not one this writes")


def _finite(index: _Kind) -> bool:
    """No NaN/inf in the stored vectors (flat) or the centroids and quantiser ranges (IVF,
    whose 8-bit codes decode to finite values when those are finite)."""
    if isinstance(index, faiss.IndexIVFScalarQuantizer):
        centroids = cast(faiss.IndexFlat, faiss.downcast_index(index.quantizer))
        arrays = [faiss.vector_to_array(centroids.codes), faiss.vector_to_array(index.sq.trained)]
        return all(np.isfinite(a.view(np.float32)).all() for a in arrays)
    return bool(np.isfinite(_flat_vectors(index)).all())


def _empty(dimension: int) -> np.ndarray:
    return np.zeros((0, dimension), dtype=np.float32)


def write_snapshot(path: Path, data: bytes, meta: IndexMeta) -> None:
    """Write a ``snapshot``: the index, then its metadata, each aside and renamed."""
    _atomic_write(path, data)
    _atomic_write(meta_path(path), json.dumps(asdict(meta), indent=1).encode())


def meta_path(path: Path) -> Path:
    return path.with_suffix(".meta.json")


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
