"""Ranking: a passage restating a long headline (the lede) and a story that answers well
lift the passages of their story (index/search.py ``Recipe.headline``, ``Recipe.story``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from index.search import DEFAULT_RECIPE, rank, restates_headline
from index.store import PassageRow

QUERY = np.array([1.0, 0.0], dtype=np.float32)
HEADLINE = "Google will delete Gmail accounts left inactive for two years"


def _row(passage_id: int, title: str, text: str, cosine: float, outlet: str = "News") -> PassageRow:
    vector = np.array([[cosine, (1 - cosine**2) ** 0.5]], dtype=np.float32)
    article_id, spans = f"a{passage_id}", [(0, len(text))]
    return PassageRow(passage_id, article_id, title, outlet, None, None, None, text, spans, vector)


def _order(rows: list[PassageRow], keyword: dict[int, float], **recipe: Any) -> list[int]:
    ranked = rank(QUERY, {r.id: r for r in rows}, keyword, replace(DEFAULT_RECIPE, **recipe))
    return [c.row.id for c in ranked]


def test_the_share_of_a_long_headline_a_passage_restates() -> None:
    lede = "Google will start deleting Gmail accounts that stayed inactive for two years."
    assert restates_headline(HEADLINE, lede, 5) == 6 / 8  # all but "delete" and "left"
    assert restates_headline(HEADLINE, "Sign in once in a while.", 5) == 0.0
    # a title that only names a topic (SQuAD's "Super Bowl 50") is left out
    assert restates_headline("Super Bowl 50", "Super Bowl 50 was played in 2016.", 5) == 0.0


def test_the_passage_a_headline_was_made_from_gains_nothing() -> None:
    """An article without a headline is headed by its first sentence (shortened with an
    ellipsis past 100 characters): the passage holding it is its source, not a lede."""
    first = "The Azerbaijani Mine Action Agency (ANAMA) is holding a series of meetings in Europe"
    passage = first + " to draw international attention to the mine problems in the country."
    assert restates_headline(first, passage, 5) == 0.0
    assert restates_headline(first[:60].rsplit(" ", 1)[0] + "\u2026", passage, 5) == 0.0
    assert restates_headline(first, "ANAMA holds meetings in Europe on the mine problems.", 5) > 0.4


def test_the_passage_restating_a_long_headline_ranks_first() -> None:
    """Two passages of one article, the later one a little closer to the question: the one
    that restates the headline (the lede, which states the story's facts) comes first."""
    lede = "Google will delete Gmail accounts that stayed inactive for two years, from December."
    later = "When is it going to start deleting them? Here is what you should know."
    rows = [_row(1, HEADLINE, lede, 0.60), _row(2, HEADLINE, later, 0.65)]
    assert _order(rows, {1: 1.0, 2: 1.0}) == [1, 2]
    assert _order(rows, {1: 1.0, 2: 1.0}, headline=0.0) == [2, 1]
    short = [replace(row, title="Google") for row in rows]  # a topic, not a summary
    assert _order(short, {1: 1.0, 2: 1.0}) == [2, 1]


def test_a_story_that_answers_well_lifts_its_other_passages() -> None:
    """The second passage of the best story outranks a weaker story's best passage that
    scores a little more on its own; without story context it does not."""
    rows = [
        _row(1, "Quake hits the coast", "The quake struck at dawn.", 0.80),
        _row(2, "Quake hits the coast", "Rescuers reached the town.", 0.55),
        _row(3, "Storm season begins", "The storm season begins.", 0.60, outlet="Other"),
    ]
    assert _order(rows, {}) == [1, 2, 3]
    assert _order(rows, {}, story=0.0) == [1, 3, 2]
    # a story is a headline and an outlet: the same headline elsewhere is another story
    elsewhere = [rows[0], replace(rows[1], outlet="Other"), rows[2]]
    assert _order(elsewhere, {}) == [1, 3, 2]
