"""Duplicate stories: exact (same canonical URL or same text) and near (the same story
republished by another outlet, lightly edited), by MinHash of word shingles.

A MinHash signature estimates the Jaccard resemblance of two texts' sets of 4-word shingles:
the fraction of equal positions in two signatures. Wire copy carried by several outlets
shares most shingles (resemblance well above 0.6); two different stories on the same
subject share almost none (below 0.1), so the threshold is not delicate.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

__all__ = ["content_hash", "minhash", "most_similar"]

SHINGLE_WORDS = 4
PERMUTATIONS = 128
_PRIME = np.uint64((1 << 61) - 1)
_rng = np.random.default_rng(20240501)
_A = _rng.integers(1, 1 << 61, PERMUTATIONS, dtype=np.uint64)
_B = _rng.integers(0, 1 << 61, PERMUTATIONS, dtype=np.uint64)
_WORD = re.compile(r"\w+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def content_hash(title: str, text: str) -> str:
    """Identity of a text regardless of markup, case and spacing."""
    return hashlib.sha256(" ".join(_words(f"{title}\n{text}")).encode()).hexdigest()


def minhash(text: str) -> np.ndarray | None:
    """The text's signature (uint32), or None when it is too short to compare."""
    words = _words(text)
    if len(words) < SHINGLE_WORDS * 3:
        return None
    shingles = {
        " ".join(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)
    }
    hashes = np.array(
        [
            int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little") >> 4
            for s in shingles
        ],
        dtype=np.uint64,
    )
    # (a * x + b) mod p per permutation; products are taken modulo 2**64 first, which keeps
    # the family universal enough for signatures (we only compare, never invert).
    mixed = (hashes[:, None] * _A[None, :] + _B[None, :]) % _PRIME
    return (mixed.min(axis=0) & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def most_similar(
    signature: np.ndarray, ids: list[str], signatures: np.ndarray | None
) -> tuple[str | None, float]:
    """The most similar earlier story and its estimated resemblance."""
    if signatures is None or not ids:
        return None, 0.0
    agreement = (signatures == signature[None, :]).mean(axis=1)
    best = int(agreement.argmax())
    return ids[best], float(agreement[best])
