"""The search hot path: the keyword half runs while the question is embedded, nothing on it
counts the store or rereads a slow vocabulary, and words common to many passages are left
out of the keyword match on both backends."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from index import IndexCore, IndexSettings, keywords, spelling
from index.formats import make_article
from index.models import Article
from tests.factories import SAMPLE, article
from tests.fakes import HashEmbedder


class WaitingEmbedder(HashEmbedder):
    """Embeds a question only once ``planned`` is set (by the keyword query), so a search
    that plans after embedding, not meanwhile, fails instead of finishing."""

    def __init__(self) -> None:
        super().__init__()
        self.planned = threading.Event()
        self.questions = False

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if self.questions and not self.planned.wait(timeout=10):
            raise AssertionError("the question was embedded before its keyword query ran")
        return super().encode(texts)


def test_the_keyword_query_runs_while_the_question_is_embedded(settings: IndexSettings) -> None:
    embedder = WaitingEmbedder()
    core = IndexCore.open(settings, embedder)
    try:
        core.min_relevance = 0.2
        core.add_articles([article("volcano"), article("bank")])
        searching = core.store.keyword_search

        def keyword_search(*args, **kwargs):  # type: ignore[no-untyped-def]
            found = searching(*args, **kwargs)
            embedder.planned.set()
            return found

        core.store.keyword_search = keyword_search  # type: ignore[method-assign]
        embedder.questions = True
        [hit] = core.search("volcano ash village", k=1).hits
        assert hit.title == "Volcano erupts near village"
    finally:
        core.close()


def test_a_search_with_a_typo_never_counts_the_store(
    core: IndexCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    core.ingest([str(SAMPLE)])

    def counts() -> None:
        raise AssertionError("Store.counts() ran on the search path")

    monkeypatch.setattr(core.store, "counts", counts)
    result = core.search("how many peple wer killd by mins")
    assert "mine explosions" in result.hits[0].passage


def test_a_slow_vocabulary_is_reread_in_the_background(
    core: IndexCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    core.add_articles([article("bank")])
    assert core.speller.spell(["volcanno"]).fixed == {}  # the first reading waits for it
    monkeypatch.setattr(spelling, "SYNC_REFRESH_SECONDS", -1.0)  # every reading is "slow"
    core.add_articles([article("volcano")])
    assert core.speller.spell(["volcanno"]).fixed == {}  # answered from the one it had
    rereading = core.speller._rereading
    assert rereading is not None
    rereading.join(timeout=30)
    assert core.speller.spell(["volcanno"]).fixed == {"volcanno": "volcano"}


def test_a_large_index_reads_its_first_vocabulary_in_the_background(
    core: IndexCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    core.add_articles([article("volcano")])
    monkeypatch.setattr(spelling, "BACKGROUND_FROM", 1)  # this index counts as large
    assert core.speller.spell(["volcanno", "wer"]).fixed == {}  # nothing read yet
    rereading = core.speller._rereading
    assert rereading is not None
    rereading.join(timeout=30)
    assert core.speller.spell(["volcanno", "wer"]).fixed == {"volcanno": "volcano", "wer": "were"}


@pytest.fixture(params=["sqlite", "postgresql"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IndexCore]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    settings = IndexSettings(  # type: ignore[call-arg]
        data_dir=tmp_path / "data", database_url=url, _env_file=None
    )
    core = IndexCore.open(settings, HashEmbedder())
    yield core
    core.close()


def _report(number: int, text: str) -> Article:
    return make_article(
        title=f"Report {number}",
        text=text,
        url=None,
        outlet="Daily",
        author=None,
        published=None,
        source=None,
    )


def test_a_large_index_scores_passages_holding_two_words_and_rare_single_words(
    index: IndexCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    reports = [_report(n, f"The council met on day {n} to discuss roads.") for n in range(8)]
    reports.append(_report(8, "A volcano erupted and the council discussed the ash."))
    reports.append(_report(9, "Farmers sold potatoes at the market."))
    index.add_articles(reports)

    def search(words: list[str], total: int) -> list[tuple[int, float]]:
        return index.store.keyword_search(words, 20, None, (0.25, 1.0), total=total)

    plain = search(["council", "volcano"], total=10)
    assert len(plain) == 9  # below PRUNE_FROM passages: every passage holding any word
    plain_roads = dict(search(["council", "roads"], total=10))
    monkeypatch.setattr(keywords, "PRUNE_FROM", 0)
    monkeypatch.setattr(keywords, "COMMON_SHARE", 0.5)  # "council", "roads" are common here
    assert search(["council", "volcano"], total=0) == plain  # 0: the size is not known
    # Passages holding two words score as in the plain query; one common word is not enough
    [(volcano, score)] = search(["council", "volcano"], total=10)
    assert (volcano, pytest.approx(score)) == plain[0]
    both = dict(search(["council", "roads"], total=10))
    assert both == pytest.approx({p: plain_roads[p] for p in both})
    assert len(both) == 8 and volcano not in both
    # No passage holds two: the passages holding a rare word
    [(potatoes, _)] = search(["council", "potatoes"], total=10)
    assert "potatoes" in index.store.passages([potatoes])[potatoes].text
