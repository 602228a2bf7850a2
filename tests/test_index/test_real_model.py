"""Behaviour that needs the real all-MiniLM-L6-v2 weights (installed with the package)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from index import ArticleIndex, IndexCore, IndexSettings
from tests.factories import SAMPLE, article

pytestmark = pytest.mark.real_model


@pytest.fixture
def real_core(tmp_path: Path, real_embedder) -> IndexCore:  # type: ignore[no-untyped-def]
    core = IndexCore.open(
        IndexSettings(data_dir=tmp_path, _env_file=None),  # type: ignore[call-arg]
        real_embedder,
    )
    core.ingest([str(SAMPLE)])
    core.add_articles([article("volcano"), article("football"), article("bank")])
    return core


def test_the_default_model_is_the_bundled_minilm(real_embedder) -> None:  # type: ignore[no-untyped-def]
    assert real_embedder.name == "all-MiniLM-L6-v2" and real_embedder.dimension == 384
    vectors = real_embedder.encode(["landmine clearance", "demining of minefields", "football"])
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_paraphrased_question_finds_the_passage_without_shared_words(
    real_core: IndexCore,
) -> None:
    hit = real_core.search("How many were killed or hurt by explosives since the war ended?").hits[
        0
    ]
    assert hit.outlet == "Azernews"
    assert "over 200 people have become victims of mine explosions" in hit.passage


@pytest.mark.parametrize(
    ("question", "answer"),
    [  # the questions the README suggests for the demo
        ("Who is carrying out demining in the liberated lands?", "ANAMA, along with partner"),
        ("Where is ANAMA meeting?", "held in Luxembourg, Belgium, and Switzerland"),
    ],
)
def test_demo_questions_quote_the_answering_sentence(
    real_core: IndexCore, question: str, answer: str
) -> None:
    assert answer in real_core.search(question).hits[0].quote


def test_off_topic_question_is_refused(real_core: IndexCore) -> None:
    assert real_core.search("What is the best recipe for sourdough bread?").refused


async def test_async_facade_answers_while_ingesting(tmp_path: Path, real_embedder) -> None:  # type: ignore[no-untyped-def]
    index = await ArticleIndex.open(IndexSettings(data_dir=tmp_path, _env_file=None), real_embedder)  # type: ignore[call-arg]
    await index.ingest([str(SAMPLE)])
    search, ingest = await asyncio.gather(
        index.search("Which agency is holding meetings in Europe about mines?"),
        index.add_articles([article("bank")]),
    )
    assert search.hits[0].outlet == "Azernews" and ingest.added
    assert (await index.stats()).articles == 2
    await index.close()
