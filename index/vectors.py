"""The FAISS vector index: exact inner-product search over L2-normalised float32 vectors,
keyed by explicit int64 passage ids, persisted atomically with its metadata beside it."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import faiss
import numpy as np


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


class VectorIndex:
    """A FAISS ``IndexIDMap2(IndexFlatIP)``; all methods are thread-safe."""

    def __init__(self, dimension: int, model: str, built_at: str | None = None) -> None:
        self.dimension = dimension
        self.model = model
        self.built_at = built_at or _now()
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self._lock = threading.RLock()

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    @property
    def nbytes(self) -> int:
        """Memory the vectors and their ids take (about the size of the saved file)."""
        return self.count * (self.dimension * 4 + 8)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            with self._lock:
                self._index.add_with_ids(
                    np.ascontiguousarray(vectors, dtype=np.float32),
                    np.ascontiguousarray(ids, dtype=np.int64),
                )

    def remove(self, ids: list[int] | np.ndarray) -> None:
        if len(ids):
            with self._lock:
                self._index.remove_ids(np.asarray(ids, dtype=np.int64))  # type: ignore[arg-type]  # faiss's stubs lack the array overload

    def ids(self) -> np.ndarray:
        with self._lock:
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        with self._lock:
            return self._index.reconstruct_batch(np.asarray(ids, dtype=np.int64))

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best ``k`` (ids, scores) for one query vector, optionally among ``allowed`` ids."""
        with self._lock:
            if self.count == 0 or k <= 0:
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
            params = None
            if allowed is not None:
                params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))  # type: ignore[call-arg]  # stubs lag the API
            scores, ids = self._index.search(
                np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32),
                min(k, self.count),
                params=params,
            )
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def meta(self) -> IndexMeta:
        ids = self.ids()
        return IndexMeta(self.model, self.dimension, len(ids), int(ids.sum()), self.built_at)

    def save(self, path: Path) -> None:
        """Write the index and then its metadata, each aside and renamed into place. The
        metadata names the count and id checksum, so a crash between the two renames
        leaves a pair that ``load`` rejects (and the caller rebuilds)."""
        with self._lock:
            data = faiss.serialize_index(self._index)
            meta = self.meta()
        _atomic_write(path, data.tobytes())
        _atomic_write(meta_path(path), json.dumps(asdict(meta), indent=1).encode())

    @classmethod
    def load(cls, path: Path, *, model: str, count: int, id_sum: int) -> VectorIndex:
        """The saved index if it matches the expected model and passages, else raises."""
        if not path.exists():
            raise StaleIndexError("no saved vector index")
        try:
            meta = IndexMeta(**json.loads(meta_path(path).read_text()))
            raw = np.frombuffer(path.read_bytes(), dtype=np.uint8)
            index = faiss.deserialize_index(raw)
        except Exception as error:
            raise StaleIndexError(f"saved vector index is unreadable ({error})") from None
        if meta.model != model:
            raise StaleIndexError(f"index was built with model {meta.model!r}, not {model!r}")
        loaded = cls(meta.dimension, meta.model, meta.built_at)
        loaded._index = (
            faiss.IndexIDMap2(index) if not isinstance(index, faiss.IndexIDMap2) else index
        )
        actual = loaded.meta()
        if (actual.count, actual.id_sum) != (meta.count, meta.id_sum):
            raise StaleIndexError("index file does not match its metadata")
        if (actual.count, actual.id_sum) != (count, id_sum):
            raise StaleIndexError(
                f"index holds {actual.count} passages, the database {count}"
                if actual.count != count
                else "index passage ids differ from the database"
            )
        return loaded


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
