"""The embedding backends: ONNX (float32 and int8) give the vectors torch gives, the int8
export is made once and reused, and a missing or broken onnxruntime means torch, said once."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from index import IndexCore, IndexSettings, SentenceTransformerEmbedder, create_embedder
from index.embedding import ONNX_FILES, Embedder
from index.formats import parse
from tests.factories import SAMPLE, TOPICS

# Real sentences: the sample article's paragraphs, three news stories and two questions.
SENTENCES = [
    *(p for p in parse(SAMPLE.name, SAMPLE.read_bytes())[0].text.split("\n\n") if p.strip()),
    *(text for _, text in TOPICS.values()),
    "Who is carrying out demining in the liberated lands?",
    "Why did the central bank raise interest rates?",
]


@pytest.fixture(scope="module")
def onnx_embedders(model_cache: Path) -> dict[str, SentenceTransformerEmbedder]:
    """Both ONNX backends, sharing the session's one export of the model."""
    embedders = {
        backend: SentenceTransformerEmbedder(backend=backend, cache_dir=model_cache)
        for backend in ("onnx-int8", "onnx")
    }
    for embedder in embedders.values():
        embedder.load()
    return embedders


def test_the_settings_choose_the_backend_and_it_names_the_vectors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default is int8 ONNX, cached in DATA_DIR/models; the name the index records says
    so (torch keeps the bare model name that indexes made before backends existed carry)."""
    monkeypatch.delenv("MODEL_CACHE_DIR")
    default = create_embedder(IndexSettings(data_dir=tmp_path, _env_file=None))  # type: ignore[call-arg]
    torch = create_embedder(
        IndexSettings(data_dir=tmp_path, embedding_backend="torch", _env_file=None)  # type: ignore[call-arg]
    )
    assert (default.name, default.cache_dir) == ("all-MiniLM-L6-v2@onnx-int8", tmp_path / "models")
    assert torch.name == "all-MiniLM-L6-v2"
    assert default.dimension == torch.dimension == 384  # read from the model's config


@pytest.mark.real_model
@pytest.mark.parametrize(("backend", "floor"), [("onnx-int8", 0.98), ("onnx", 0.999)])
def test_onnx_backends_embed_real_sentences_like_torch(
    real_embedder: Embedder,
    onnx_embedders: dict[str, SentenceTransformerEmbedder],
    backend: str,
    floor: float,
) -> None:
    embedder = onnx_embedders[backend]
    reference = real_embedder.encode(SENTENCES)
    vectors = embedder.encode(SENTENCES)

    assert embedder.name == f"all-MiniLM-L6-v2@{backend}"
    assert vectors.shape == reference.shape and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = (vectors * reference).sum(axis=1)
    assert cosines.mean() > floor and cosines.min() > floor - 0.03
    # Each sentence's nearest other sentence is the same as torch's.
    ours, theirs = vectors @ vectors.T, reference @ reference.T
    np.fill_diagonal(ours, -1)
    np.fill_diagonal(theirs, -1)
    assert (ours.argmax(axis=1) == theirs.argmax(axis=1)).mean() >= 0.9


@pytest.mark.real_model
def test_the_export_is_made_once_and_reused(
    model_cache: Path, onnx_embedders: dict[str, SentenceTransformerEmbedder]
) -> None:
    (folder,) = model_cache.iterdir()  # one folder, no half-written temporary ones
    int8 = folder / ONNX_FILES["onnx-int8"]
    made = int8.stat().st_mtime_ns
    again = SentenceTransformerEmbedder(backend="onnx-int8", cache_dir=model_cache)
    assert again.encode(["mine clearance"]).shape == (1, 384)
    assert again.name == "all-MiniLM-L6-v2@onnx-int8"
    assert int8.stat().st_mtime_ns == made and list(model_cache.iterdir()) == [folder]
    # int8 weights: about a quarter of the float32 file
    assert int8.stat().st_size < 0.3 * (folder / ONNX_FILES["onnx"]).stat().st_size


@pytest.mark.real_model
def test_missing_onnxruntime_falls_back_to_torch_with_one_log_line(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    real_embedder: Embedder,
    tmp_path: Path,
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    with caplog.at_level(logging.WARNING, logger="index.embedding"):
        embedder = SentenceTransformerEmbedder(backend="onnx-int8", cache_dir=tmp_path)
        vectors = embedder.encode(SENTENCES[:3])

    lines = [r.getMessage() for r in caplog.records if r.name == "index.embedding"]
    assert len(lines) == 1 and "onnxruntime" in lines[0] and "torch" in lines[0]
    assert embedder.name == "all-MiniLM-L6-v2"
    np.testing.assert_allclose(vectors, real_embedder.encode(SENTENCES[:3]), atol=1e-5)
    assert list(tmp_path.iterdir()) == []  # nothing was exported


@pytest.mark.real_model
def test_an_onnx_model_that_cannot_be_made_falls_back_to_torch_with_one_log_line(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    not_a_folder = tmp_path / "models"
    not_a_folder.write_text("a file where the cache folder should be")
    with caplog.at_level(logging.WARNING, logger="index.embedding"):
        embedder = SentenceTransformerEmbedder(backend="onnx-int8", cache_dir=not_a_folder)
        assert embedder.encode(["mine clearance"]).shape == (1, 384)

    lines = [r.getMessage() for r in caplog.records if r.name == "index.embedding"]
    assert len(lines) == 1 and "EMBEDDING_BACKEND=onnx-int8 is unusable" in lines[0]
    assert embedder.name == "all-MiniLM-L6-v2"


@pytest.mark.real_model
def test_switching_backend_re_embeds_the_index_once(
    tmp_path: Path,
    real_embedder: Embedder,
    onnx_embedders: dict[str, SentenceTransformerEmbedder],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = IndexSettings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    core = IndexCore.open(settings, real_embedder)
    core.ingest([str(SAMPLE)])
    core.close()

    with caplog.at_level(logging.WARNING, logger="index.core"):
        core = IndexCore.open(settings, onnx_embedders["onnx-int8"])
    assert "Re-embedding" in caplog.text
    assert core.stats().model == "all-MiniLM-L6-v2@onnx-int8"
    # the passage that answers; its quote (Europe or Luxembourg) varies with the int8 rounding
    assert "Luxembourg" in core.search("Where is ANAMA meeting?").hits[0].passage
    core.close()

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="index.core"):
        IndexCore.open(settings, onnx_embedders["onnx-int8"]).close()
    assert "Re-embedding" not in caplog.text
