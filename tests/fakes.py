"""Deterministic stand-ins for slow dependencies."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from index.embedding import normalise

_WORD = re.compile(r"\w+")


class HashEmbedder:
    """A bag-of-words embedder: each lower-cased word (crudely stemmed) hashes to a fixed
    random vector and a text is the normalised sum. Texts sharing words are similar,
    so search behaves sensibly without loading a model."""

    def __init__(self, dimension: int = 64, name: str = "fake-hash-embedder") -> None:
        self.name = name
        self.dimension = dimension
        self._cache: dict[str, np.ndarray] = {}
        self.calls = 0

    def _word(self, word: str) -> np.ndarray:
        vector = self._cache.get(word)
        if vector is None:
            seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
            vector = np.random.default_rng(seed).standard_normal(self.dimension)
            self._cache[word] = vector.astype(np.float32)
            vector = self._cache[word]
        return vector

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                out[row] += self._word(word.rstrip("s") if len(word) > 3 else word)
        return normalise(out)


class MultilingualHashEmbedder(HashEmbedder):
    """A stand-in for a multilingual model (no such weights can be installed here): words
    listed in ``concepts`` share one vector across English, Russian and Azerbaijani, as a
    multilingual model places translations near each other; other words hash as usual."""

    CONCEPTS: ClassVar[dict[str, tuple[str, ...]]] = {
        "mine": ("mine", "mines", "мин", "мины", "мина", "минах", "mina", "minalar", "minaların"),
        "victim": ("victim", "victims", "пострадало", "пострадали", "жертвами", "zərər", "qurban"),
        "people": ("people", "людей", "человек", "nəfər", "insan"),
        "demining": ("demining", "разминирование", "разминирования", "minatəmizləmə"),
        "slow": ("slow", "slows", "медленно", "замедляет", "yavaş", "ləngidir"),
    }

    def __init__(self, dimension: int = 64) -> None:
        super().__init__(dimension, name="fake-paraphrase-multilingual")
        self._concept = {w: c for c, words in self.CONCEPTS.items() for w in words}

    def _word(self, word: str) -> np.ndarray:
        return super()._word(self._concept.get(word, word))
