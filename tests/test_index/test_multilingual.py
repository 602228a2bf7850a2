"""With a multilingual model the whole path works for Russian and Azerbaijani articles:
sentences split at Cyrillic and Azerbaijani capitals, keyword search matches their words in
any inflection (on SQLite and PostgreSQL), their stop words are left out, and the quote
holds what the question asks for. No multilingual weights can be installed here, so the
model is a fake one (``MultilingualHashEmbedder``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from index import IndexCore, IndexSettings, model_reads, question_language
from index.chunking import split_sentences
from index.formats import make_article
from index.languages import keyword_text, text_language
from index.quotes import Asks, asks, quote_span
from index.search import terms
from tests.factories import article
from tests.fakes import MultilingualHashEmbedder

RUSSIAN = make_article(
    title="Разминирование в Карабахе продолжается",
    text=(
        "Национальное агентство по разминированию провело встречи в Европе. "
        "Делегация обсудила помощь партнёров.\n\n"
        "Разминирование идёт, но люди всё ещё гибнут. "
        "Более 200 человек стали жертвами взрывов мин с 2020 года. "
        "Неточные карты минных полей замедляют разминирование."
    ),
    url="https://ru.example.org/mines",
    outlet="Azernews RU",
    author="И. Петрова",
    published=date(2022, 6, 21),
    source="ru.txt",
)
AZERBAIJANI = make_article(
    title="Minatəmizləmə işləri davam edir",
    text=(
        "Agentlik Avropada bir sıra görüşlər keçirib. "
        "Nümayəndə heyəti tərəfdaşlarla əməkdaşlığı müzakirə edib.\n\n"
        "Əməliyyatlar davam edir, lakin insanlar hələ də həyatını itirir. "
        "İndiyədək 200-dən çox nəfər minaların partlaması nəticəsində zərər çəkib. "
        "Xəritələrin qeyri-dəqiqliyi minatəmizləmə prosesini ləngidir."
    ),
    url="https://az.example.org/minalar",
    outlet="Azernews AZ",
    author="Aysel Məmmədova",
    published=date(2022, 6, 21),
    source="az.txt",
)


@pytest.fixture
def multilingual(settings: IndexSettings) -> Iterator[IndexCore]:
    core = IndexCore.open(settings, MultilingualHashEmbedder())
    core.min_relevance = 0.2  # the fake embedder's scores run lower than a real model's
    core.add_articles([RUSSIAN, AZERBAIJANI, article("volcano"), article("bank")])
    yield core
    core.close()


def test_sentences_split_at_cyrillic_and_azerbaijani_capitals() -> None:
    text = "Мины остаются угрозой. «Более 200 человек», сказал он. Əksər kəndlər. İndi isə. Şuşa"
    assert [text[a:b] for a, b in split_sentences(text)] == [
        "Мины остаются угрозой.",
        "«Более 200 человек», сказал он.",
        "Əksər kəndlər.",
        "İndi isə.",
        "Şuşa",
    ]


def test_russian_and_azerbaijani_stop_words_are_left_out() -> None:
    assert terms("Сколько людей пострадало от мин?") == ["людей", "пострадало", "мин"]
    assert terms("Minalardan neçə nəfər zərər çəkib?") == ["minalardan", "nəfər", "zərər", "çəkib"]
    assert terms("İndiyədək İlham") == ["indiyədək", "ilham"]  # dotted capital İ kept whole


def test_question_words_of_each_language_say_what_is_asked() -> None:
    assert asks("Сколько людей пострадало от мин?") is Asks.NUMBER
    assert asks("Почему разминирование идёт медленно?") is Asks.CAUSE
    assert asks("Когда начали разминирование?") is Asks.TIME
    assert asks("Neçə nəfər zərər çəkib?") is Asks.NUMBER
    assert asks("Niyə minatəmizləmə yavaş gedir?") is Asks.CAUSE
    assert asks("Kim minaları təmizləyir?") is Asks.NAME


def test_a_question_s_language_and_whether_the_model_reads_it() -> None:
    assert question_language("Сколько людей пострадало от мин?") == "ru"
    assert question_language("Minalardan neçə nəfər zərər çəkib?") == "az"
    assert question_language("How many people were hurt by mines?") == "en"
    assert question_language("地雷で何人が負傷しましたか") == "other"
    assert not model_reads("ru", "all-MiniLM-L6-v2")
    assert model_reads("ru", "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2")
    assert model_reads("az", "all-MiniLM-L6-v2", setting=True)  # EMBEDDING_MULTILINGUAL
    assert model_reads("en", "all-MiniLM-L6-v2")


def test_a_russian_question_finds_and_quotes_the_russian_passage(
    multilingual: IndexCore,
) -> None:
    [top, *_] = multilingual.search("Сколько людей пострадало от мин?").hits

    assert top.title == RUSSIAN.title
    assert top.quote.startswith("Более 200 человек стали жертвами взрывов мин")


def test_an_azerbaijani_question_finds_and_quotes_the_azerbaijani_passage(
    multilingual: IndexCore,
) -> None:
    [top, *_] = multilingual.search("Minalardan neçə nəfər zərər çəkib?").hits

    assert top.title == AZERBAIJANI.title
    assert top.quote.startswith("İndiyədək 200-dən çox nəfər minaların partlaması")


def test_keyword_search_matches_cyrillic_and_azerbaijani_words(
    multilingual: IndexCore,
) -> None:
    """The keyword index (FTS5 on SQLite) holds Cyrillic and Azerbaijani words as typed, case
    folded: the passage holding them is the keyword retriever's first candidate."""
    for question, article_ in (
        ("Делегация партнёров", RUSSIAN),
        ("NÜMAYƏNDƏ heyəti tərəfdaşlarla", AZERBAIJANI),
    ):
        words = terms(question)
        [top, *_] = multilingual.search(question).hits
        [(first, _score), *_] = multilingual.store.keyword_search(words, 5, None, (1.0, 1.0))

        assert top.title == article_.title
        assert first == top.passage_id
        assert multilingual.store.words_found(words, top.passage_id) == len(words)


@pytest.fixture(params=["sqlite", "postgresql"])
def on_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IndexCore]:
    """The Russian and Azerbaijani articles on SQLite, or on a fresh PostgreSQL database."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    settings = IndexSettings(  # type: ignore[call-arg]
        data_dir=tmp_path / "data", database_url=url, _env_file=None
    )
    core = IndexCore.open(settings, MultilingualHashEmbedder())
    core.add_articles([RUSSIAN, AZERBAIJANI, article("volcano"), article("bank")])
    yield core
    core.close()


@pytest.mark.parametrize(
    ("question", "expected", "sentence"),
    [
        # "карты минных полей" asked as "карта минного поля": no word as the passage has it
        pytest.param(
            "Неточная карта минного поля", RUSSIAN, "Неточные карты минных полей", id="ru"
        ),
        # "Əməliyyatlar ... minaların" asked as "əməliyyat ... minalar"
        pytest.param("əməliyyat minalar", AZERBAIJANI, "Əməliyyatlar davam edir", id="az"),
    ],
)
def test_keyword_search_finds_other_inflections_of_russian_and_azerbaijani_words(
    on_backend: IndexCore, question: str, expected: object, sentence: str
) -> None:
    """Russian words are stemmed (Snowball Russian) and Azerbaijani ones too (Snowball
    Turkish, the closest it has), in passages and questions alike: the passage is the keyword
    retriever's first candidate and holds every question word."""
    words = terms(question)
    [(first, _score), *_] = on_backend.store.keyword_search(words, 5, None, (0.25, 1.0))

    [row] = on_backend.store.passages([first]).values()
    assert sentence in row.text and row.article_id == expected.id  # type: ignore[attr-defined]
    assert on_backend.store.words_found(words, first) == len(words)
    assert on_backend.speller.spell(words).fixed == {}  # inflections are not typos


def test_an_english_article_naming_turkish_places_is_not_stemmed_as_azerbaijani() -> None:
    text = "President Erdoğan met the mayor of Şuşa and Bakı officials on Tuesday."
    assert text_language(text) == "en"
    assert keyword_text(text) == text
    assert keyword_text("Неточные карты минных полей") == "неточн карт мин пол"


def test_the_quote_matches_russian_question_words_in_another_inflection() -> None:
    sentences = ["Разминирование идёт, но люди всё ещё гибнут.", "Неточные карты минных полей."]
    text = " ".join(sentences)
    spans = [(0, len(sentences[0])), (len(sentences[0]) + 1, len(text))]
    question = "Что известно про карту минного поля?"
    start, end = quote_span(text, spans, np.array([0.5, 0.5]), question, terms(question))

    assert text[start:end] == sentences[1]
