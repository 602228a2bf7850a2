"""The in-memory keyword index (index/memory_keywords.py): it finds what the store's own
keyword query finds, never a removed or replaced passage, follows other processes' writes
and a pruned change log, and stops its build at close. Forced on at a small size through
its threshold; on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from index import ArticleIndex, IndexCore, IndexSettings
from index.changes import Change
from index.formats import make_article
from index.keywords import stemmed
from index.languages import keyword_text, text_language
from index.memory_keywords import RETRY_SECONDS, MemoryKeywords
from index.models import Article, SearchFilters
from tests.fakes import HashEmbedder

# Words both stemmers (FTS5's Porter, tantivy's Porter2) keep apart and whole
WORDS = ["apple", "river", "stone", "cloud", "tiger", "lemon", "piano", "rocket", "garden"]
WEIGHTS = (2.0, 1.0)
ALL = 10_000  # a limit above any number of matches: the whole match set


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> IndexSettings:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    return IndexSettings(  # type: ignore[call-arg]
        data_dir=tmp_path / "data", database_url=url, min_relevance=0.0, _env_file=None
    )


@pytest.fixture
def core(settings: IndexSettings) -> Iterator[IndexCore]:
    core = IndexCore.open(settings, HashEmbedder())
    yield core
    core.close()


def _article(number: int, words: list[str], title: str = "", text: str = "") -> Article:
    return make_article(
        title=title or f"Report {number}",
        text=text or " ".join(words) + ".",
        url=f"https://example.com/{number}",
        outlet="Test",
        author=None,
        published=None,
        source=None,
    )


def _memory(core: IndexCore) -> MemoryKeywords:
    core.keep_keywords_in_memory(threshold=1)
    assert core.keywords_in_memory is not None
    return core.keywords_in_memory


def _found(memory: MemoryKeywords, words: list[str]) -> set[int]:
    found = memory.search(words, ALL, WEIGHTS)
    if found is None:  # building: the store's query answers meanwhile
        assert memory.wait(30)
        found = memory.search(words, ALL, WEIGHTS)
    assert found is not None
    return {passage for passage, _ in found}


def _expected(core: IndexCore, words: list[str]) -> set[int]:
    return {passage for passage, _ in core.store.keyword_search(words, ALL, None, WEIGHTS)}


def test_random_writes_never_return_a_stale_passage(core: IndexCore) -> None:
    rng = random.Random(8)
    memory = _memory(core)
    live: set[int] = set()
    for step in range(80):
        action = rng.random()
        number = rng.randrange(12)
        if action < 0.5 or not live:  # add, or replace with other words
            core.add_articles([_article(number, rng.choices(WORDS, k=rng.randint(1, 6)))])
            live.add(number)
        elif action < 0.7:
            core.remove(f"https://example.com/{number}")
            live.discard(number)
        words = rng.sample(WORDS, rng.randint(1, 3))
        found = _found(memory, words)
        assert found == _expected(core, words), f"step {step}, {words}"
        assert found <= set(core.store.passage_ids())
    assert memory.builds == 1


def test_scores_rank_like_the_store(core: IndexCore) -> None:
    core.add_articles(
        [
            _article(1, ["apple"] * 3 + ["river"]),
            _article(2, ["apple", "stone", "cloud", "tiger", "lemon"]),
            _article(3, ["piano"]),
        ]
    )
    memory = _memory(core)
    _found(memory, ["apple"])
    ranked = memory.search(["apple", "river"], 10, WEIGHTS)
    store = core.store.keyword_search(["apple", "river"], 10, None, WEIGHTS)
    assert ranked is not None
    assert [p for p, _ in ranked] == [p for p, _ in store]


def test_the_plan_uses_it_once_built_and_not_for_filtered_searches(core: IndexCore) -> None:
    core.add_articles([_article(1, ["apple", "river"]), _article(2, ["stone"])])
    memory = _memory(core)
    assert memory.wait(30)
    calls: list[list[str]] = []
    search = memory.search
    memory.search = lambda words, *args: calls.append(list(words)) or search(words, *args)  # type: ignore[method-assign]
    plan = core.plan("apple river")
    assert calls == [["apple", "river"]]
    assert set(plan.keyword) == _expected(core, ["apple", "river"])
    core.plan("apple river", SearchFilters(outlets=("Test",)))
    assert len(calls) == 1  # a filtered search keeps the store's query
    assert core.search("apple river").hits


def test_below_the_threshold_or_switched_off_the_store_answers(
    core: IndexCore, settings: IndexSettings
) -> None:
    core.add_articles([_article(1, ["apple"])])
    core.keep_keywords_in_memory()  # PRUNE_FROM passages: far more than one
    assert core.keywords_in_memory is not None
    assert core.keywords_in_memory.search(["apple"], 10, WEIGHTS) is None
    assert not core.keywords_in_memory.ready
    off = IndexCore(
        settings.model_copy(update={"keyword_memory": False}),
        core.store,
        core.vectors,
        core.embedder,
    )
    off.keep_keywords_in_memory(threshold=1)
    assert off.keywords_in_memory is None


def test_it_follows_another_process(core: IndexCore, settings: IndexSettings) -> None:
    if settings.database_url is None:  # on SQLite the processes share DATA_DIR
        other_settings = settings
    else:
        other_settings = settings.model_copy(update={"data_dir": settings.data_dir / "other"})
    core.add_articles([_article(1, ["apple"]), _article(2, ["apple", "river"])])
    memory = _memory(core)
    assert len(_found(memory, ["apple"])) == 2
    other = IndexCore.open(other_settings, HashEmbedder())
    try:
        other.remove("https://example.com/1")
        other.add_articles([_article(2, ["stone"]), _article(3, ["apple"])])
    finally:
        other.close()
    assert _found(memory, ["apple"]) == _found(memory, ["apple", "river"])  # not yet followed
    core.sync()
    assert _found(memory, ["apple", "river"]) == _expected(core, ["apple", "river"])
    assert len(_found(memory, ["apple", "river"])) == 1
    assert _found(memory, ["stone"]) == _expected(core, ["stone"])


async def test_the_article_index_catches_it_up_after_writes_and_syncs(
    core: IndexCore, settings: IndexSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After each write through ArticleIndex and each sync bringing another process's
    writes, the in-memory index is caught up in a worker thread: the next question reads
    no change log (a catch-up's commit is milliseconds on the question path)."""
    if settings.database_url is None:
        other_settings = settings
    else:
        other_settings = settings.model_copy(update={"data_dir": settings.data_dir / "other"})
    core.add_articles([_article(1, ["apple"])])
    memory = _memory(core)
    _found(memory, ["apple"])
    index = ArticleIndex(core)  # not following: syncs when told
    read: list[int] = []  # where the change log was read from
    changes_after = core.store.changes_after

    def reading(seq: int, limit: int) -> tuple[list[Change], int]:
        read.append(seq)
        return changes_after(seq, limit)

    monkeypatch.setattr(core.store, "changes_after", reading)
    await index.add_articles([_article(2, ["apple", "river"])])
    await index.remove("https://example.com/1")
    read.clear()
    assert set(core.plan("apple river").keyword) == _expected(core, ["apple", "river"])
    assert read == []
    other = IndexCore.open(other_settings, HashEmbedder())
    try:
        other.add_articles([_article(3, ["apple"])])
    finally:
        other.close()
    assert await index.sync() == 1
    read.clear()
    assert set(core.plan("apple").keyword) == _expected(core, ["apple"])
    assert read == []


def test_a_pruned_change_log_rebuilds_it(core: IndexCore) -> None:
    core.add_articles([_article(1, ["apple"])])
    memory = _memory(core)
    _found(memory, ["apple"])
    core.add_articles([_article(2, ["apple"]), _article(3, ["apple"])])
    core.remove("https://example.com/2")
    core.store.prune_changes(older_than=timedelta(0), keep=1)
    assert memory.search(["apple"], 10, WEIGHTS) is None  # the store answers meanwhile
    assert _found(memory, ["apple"]) == _expected(core, ["apple"])
    assert memory.builds == 2


def test_a_failed_build_leaves_the_store_answering_and_is_tried_again_later(
    core: IndexCore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    core.add_articles([_article(1, ["apple"]), _article(2, ["river"])])
    keyword_texts = core.store.keyword_texts

    def broken(ids: object = None) -> Iterator[list[tuple[int, str, str]]]:
        raise OSError("disk gone")
        yield []  # a generator, as the store's

    monkeypatch.setattr(core.store, "keyword_texts", broken)
    memory = _memory(core)
    assert not memory.wait(30)
    assert "Could not build the keyword index in memory" in caplog.text
    assert memory.search(["apple"], 10, WEIGHTS) is None  # not tried again at once
    assert memory._building is None
    assert set(core.plan("apple").keyword) == _expected(core, ["apple"])  # the store's
    monkeypatch.setattr(core.store, "keyword_texts", keyword_texts)
    monkeypatch.setattr(memory, "_failed_at", memory._failed_at - RETRY_SECONDS)
    assert _found(memory, ["apple"]) == _expected(core, ["apple"])
    assert memory.builds == 1


def test_close_stops_the_build_promptly(core: IndexCore, monkeypatch: pytest.MonkeyPatch) -> None:
    core.add_articles([_article(1, ["apple"])])
    reading = threading.Event()

    def endless(ids: object = None) -> Iterator[list[tuple[int, str, str]]]:
        while True:  # a store too large to read before close
            reading.set()
            time.sleep(0.01)
            yield [(1, "Report", "apple")]

    monkeypatch.setattr(core.store, "keyword_texts", endless)
    memory = _memory(core)
    assert reading.wait(10)
    building = memory._building
    assert building is not None
    started = time.perf_counter()
    core.close()
    assert time.perf_counter() - started < 2
    assert not building.is_alive()
    assert not memory.ready


def test_keyword_text_is_read_as_the_index_was_given_it(core: IndexCore) -> None:
    russian = "Мины обезврежены в районе"
    azerbaijani = "Bu gün şəhərdə minalar təmizləndi və yollar açıldı"
    core.add_articles(
        [
            _article(1, ["apple"]),
            _article(2, [], title="Новости", text=russian),
            _article(3, [], title="Xəbərlər", text=azerbaijani),
        ]
    )
    texts = {i: (title, body) for batch in core.store.keyword_texts() for i, title, body in batch}
    assert len(texts) == 3
    assert {body for _, body in texts.values()} == {
        "apple.",
        keyword_text(russian, text_language(f"Новости\n{russian}")),
        keyword_text(azerbaijani, text_language(f"Xəbərlər\n{azerbaijani}")),
    }
    some = sorted(texts)[1:]
    assert {i for batch in core.store.keyword_texts(some) for i, _, _ in batch} == set(some)


@pytest.mark.parametrize(
    "text",
    [
        "Plain English, with punctuation; and numbers 1-2.",
        "Bu bir kitab: kim da olan?",  # three ASCII Azerbaijani words: stemmed
        "Bu, bir\tki",
        "Kim Jong-un met Erdoğan in Şuşa.",
        "Мины обезврежены",
        "Şəhərdə minalar",
        "Café naïve résumé, kim bu bir da",
        "\x00bu\x7fbir\x1bki",
    ],
)
def test_stemmed_takes_a_short_cut_only_where_nothing_changes(text: str) -> None:
    language = text_language(f"Title\n{text}")
    assert stemmed([(1, "Title", text)]) == [
        (1, keyword_text("Title", language), keyword_text(text, language))
    ]


def test_searches_in_threads_while_articles_come_and_go(core: IndexCore) -> None:
    core.add_articles([_article(n, ["apple", "river"]) for n in range(5)])
    memory = _memory(core)
    _found(memory, ["apple"])
    ever: set[int] = set(core.store.passage_ids())
    errors: list[BaseException] = []
    done = threading.Event()

    def ask() -> None:
        try:
            while not done.is_set():
                found = memory.search(["apple", "river"], 20, WEIGHTS)
                assert found is not None
                assert {p for p, _ in found} <= ever | set(core.store.passage_ids())
        except BaseException as error:  # reported below
            errors.append(error)

    askers = [threading.Thread(target=ask) for _ in range(4)]
    for asker in askers:
        asker.start()
    for step in range(20):
        core.add_articles([_article(step % 7, ["apple"] * (step % 3 + 1))])
        ever |= set(core.store.passage_ids())
        if step % 4 == 3:
            core.remove(f"https://example.com/{step % 7}")
    done.set()
    for asker in askers:
        asker.join()
    assert not errors
    assert _found(memory, ["apple", "river"]) == _expected(core, ["apple", "river"])
