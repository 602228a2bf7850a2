"""Passages follow sentence and paragraph boundaries and keep their offsets."""

from __future__ import annotations

from index.chunking import chunk_article, split_sentences
from index.formats import make_article


def _article(text: str):  # type: ignore[no-untyped-def]
    return make_article(
        title="T", text=text, url=None, outlet=None, author=None, published=None, source=None
    )


def test_sentences_respect_abbreviations_and_initials() -> None:
    text = 'Mr. Smith met Dr. J. Doe in the U.S. capital. "Hello!" he said. 3 people came.'
    sentences = [text[a:b] for a, b in split_sentences(text)]
    assert sentences == [
        "Mr. Smith met Dr. J. Doe in the U.S. capital.",
        '"Hello!" he said.',
        "3 people came.",
    ]


def test_long_paragraph_is_split_between_sentences() -> None:
    sentence = "This sentence is about forty-five characters. "
    article = _article((sentence * 40).strip())
    passages = chunk_article(article, target_chars=300)
    assert len(passages) > 3
    for passage in passages:
        assert article.text[passage.start : passage.end] == passage.text
        assert passage.text.startswith("This") and passage.text.endswith("characters.")
        assert len(passage.text) <= 300 + 300 // 4


def test_short_paragraphs_are_merged_and_positions_ordered() -> None:
    article = _article("One short.\n\nTwo short.\n\nThree short.")
    [passage] = chunk_article(article, target_chars=300)
    assert passage.text == article.text
    assert [passage.text[a:b] for a, b in passage.sentences] == [
        "One short.",
        "Two short.",
        "Three short.",
    ]


def test_every_sentence_lands_whole_in_exactly_one_passage() -> None:
    paragraphs = [
        " ".join(f"Sentence {p}-{s} has some words in it." for s in range(p % 7 + 1))
        for p in range(30)
    ]
    article = _article("\n\n".join(paragraphs))
    passages = chunk_article(article, target_chars=250)
    quoted = [p.text[a:b] for p in passages for a, b in p.sentences]
    expected = [article.text[a:b] for para in paragraphs for a, b in split_sentences(para)]
    assert len(quoted) == len(expected) == sum(p % 7 + 1 for p in range(30))
    assert [p.position for p in passages] == list(range(len(passages)))


def test_text_without_punctuation_is_still_bounded() -> None:
    article = _article("word " * 2000)
    passages = chunk_article(article, target_chars=500)
    assert max(len(p.text) for p in passages) <= 1000
    assert "".join(p.text for p in passages).replace(" ", "") == "word" * 2000
