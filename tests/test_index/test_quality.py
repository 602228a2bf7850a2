"""Answer quality: misspelt questions still find their passage, the bold quote holds the
answer, and the evaluation's typos are reproducible."""

from __future__ import annotations

import re

import numpy as np
import pytest

from index import IndexCore, quotes
from index.evaluate import add_typos
from index.quotes import Asks, asks, quote_span
from index.search import STOP_WORDS, rank
from index.store import PassageRow
from tests.factories import SAMPLE, article

# -- typo correction ----------------------------------------------------------------------


def test_a_misspelt_question_finds_the_passage_that_answers_it(core: IndexCore) -> None:
    core.ingest([str(SAMPLE)])
    core.add_articles([article("volcano"), article("football"), article("bank")])
    result = core.search("how many peple wer killd by mins")
    assert not result.refused
    assert "over 200 people have become victims of mine explosions" in result.hits[0].passage


def test_typed_words_are_kept_and_only_unknown_ones_get_a_correction(core: IndexCore) -> None:
    core.ingest([str(SAMPLE)])
    spelling = core.speller.spell(["peple", "wer", "mins", "killed", "demining", "anama"])
    # "killed" is English though the sample never uses it; "demining", "anama" are its own.
    assert spelling.fixed == {"peple": "people", "wer": "were", "mins": "mine"}
    assert spelling.keyword_words(["peple", "mins"]) == ["peple", "mins", "people", "mine"]
    assert spelling.question("How many peple?") == "How many people?"


def test_the_vocabulary_follows_articles_as_they_are_added_and_removed(
    core: IndexCore,
) -> None:
    core.add_articles([article("bank")])
    assert core.speller.spell(["volcanno"]).fixed == {}  # nothing close in the index yet
    core.add_articles([article("volcano")])
    assert core.speller.spell(["volcanno"]).fixed == {"volcanno": "volcano"}
    assert core.remove(article("volcano").id) is not None
    assert core.speller.spell(["volcanno"]).fixed == {}


# -- quotes --------------------------------------------------------------------------------


def _quote(sentences: list[str], question: str, similarity: list[float]) -> str:
    text = " ".join(sentences)
    spans, start = [], 0
    for sentence in sentences:
        spans.append((start, start + len(sentence)))
        start += len(sentence) + 1
    terms = [w for w in re.findall(r"\w+", question.lower()) if w not in STOP_WORDS]
    start, end = quote_span(text, spans, np.array(similarity), question, terms)
    return text[start:end]


FILLER = ["The weather was mild all week.", "Shops were open as usual."]
# (question, a sentence that restates it, the sentence that answers it): both hold all of
# the question's words, and the restating one is a little more similar to the question.
QUOTE_CASES = [
    (
        "Who bought Yukos's main oil production unit?",
        "Yukos's main oil production unit was bought at an auction last month.",
        "Baikal Finance Group bought Yukos's main oil production unit.",
    ),
    (
        "When did the bridge open to traffic?",
        "The new bridge is open to traffic now, officials said.",
        "The bridge was open to traffic from March 2019.",
    ),
    (
        "How many people were killed by mines?",
        "Many people were killed by mines in the region, officials said.",
        "Mines killed over 200 people, many of them farmers.",
    ),
    (
        "Why is demining slow?",
        "Demining is slow work in the liberated lands.",
        "Demining is slow because the minefield maps are inaccurate.",
    ),
]


@pytest.mark.parametrize(("question", "restating", "answering"), QUOTE_CASES)
def test_the_bold_quote_is_the_sentence_that_answers(
    question: str, restating: str, answering: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sentences = [restating, *FILLER, answering]
    similarity = [0.50, 0.10, 0.10, 0.46]
    assert _quote(sentences, question, similarity) == answering
    monkeypatch.setattr(quotes, "CUE_WEIGHT", 0.0)  # similarity and words alone pick wrong
    assert _quote(sentences, question, similarity) == restating


@pytest.mark.parametrize(("question", "restating", "answering"), QUOTE_CASES)
def test_the_passage_holding_what_the_question_asks_for_ranks_first(
    question: str, restating: str, answering: str
) -> None:
    """Two passages as similar to the question and as good a keyword match: the one holding
    a name (who), date (when), number (how many) or cause (why) it does not give ranks
    first, though it comes second without the question."""
    vector = np.ones((1, 4), dtype=np.float32) / 2
    rows = {
        i: PassageRow(i, f"a{i}", "News", None, None, None, None, text, [(0, len(text))], vector)
        for i, text in enumerate([restating, answering], start=1)
    }
    query = vector[0]

    assert [c.row.id for c in rank(query, rows, {1: 1.0, 2: 1.0}, question=question)] == [2, 1]
    assert [c.row.id for c in rank(query, rows, {1: 1.0, 2: 1.0})] == [1, 2]


def test_questions_are_told_apart_by_what_they_ask_for() -> None:
    assert asks("Who won the Australian Open men's final?") is Asks.NAME
    assert asks("In what year did the war end?") is Asks.TIME
    assert asks("Where is ANAMA meeting?") is Asks.PLACE
    assert asks("How much did the company pay?") is Asks.NUMBER
    assert asks("Why is demining slow?") is Asks.CAUSE
    assert asks("What did the minister say about maps?") is Asks.THING


# -- the evaluation's typos ------------------------------------------------------------------


def test_typo_injection_is_reproducible_for_a_seed() -> None:
    question = "Which airline said it will begin weighing passengers before they board?"
    assert add_typos(question, seed=7) == add_typos(question, seed=7)
    assert {add_typos(question, seed=s) for s in range(20)} != {question}
    for seed in range(50):
        typed = add_typos(question, seed=seed).split()
        changed = [(a, b) for a, b in zip(question.split(), typed, strict=True) if a != b]
        assert 1 <= len(changed) <= 2
        for original, _ in changed:
            word = original.strip("?").lower()
            assert len(word) >= 4 and word not in STOP_WORDS


def test_a_question_without_long_content_words_is_left_as_it_is() -> None:
    assert add_typos("Who is he?", seed=1) == "Who is he?"
