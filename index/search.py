"""Hybrid ranking: dense passage and sentence similarity fused with BM25, then quotes.

Pure functions over candidates that ``core`` gathers; no I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from index.models import Hit
from index.store import PassageRow

_WORD = re.compile(r"\w+", re.UNICODE)
_RECENT = re.compile(
    r"\b(latest|recent|recently|news|today|yesterday|this (week|month|year)|new|now|current)\b",
    re.IGNORECASE,
)

STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves also many much one s t""".split()
)


@dataclass(frozen=True, slots=True)
class Recipe:
    """Weights of the fused score (see README, "How search works")."""

    dense: float = 0.3  # cosine of question and passage (title-prefixed)
    sentence: float = 0.4  # best cosine of question and one sentence of the passage
    keyword: float = 0.3  # BM25 divided by the best BM25 among the candidates
    title_weight: float = 0.5  # FTS5 column weights: title, body
    body_weight: float = 1.0
    candidates: int = 100  # from each retriever
    per_article: int = 2  # passages one article may contribute to a result list
    recency_half_life_days: float = 30.0
    recency_weight: float = 0.1


DEFAULT_RECIPE = Recipe()
# Below this fused score the top hit is not relevant enough to answer with.
DEFAULT_MIN_RELEVANCE = 0.35


def terms(question: str) -> list[str]:
    """The question's content words, lower-cased, stop words removed, order kept."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(question.lower()):
        if word not in STOP_WORDS and word not in seen:
            seen[word] = None
    return list(seen)


def match_expression(words: Sequence[str]) -> str:
    """An FTS5 MATCH expression: any of the words (quoted, so none is an operator)."""
    return " OR ".join('"' + word.replace('"', '""') + '"' for word in words)


def wants_recent(question: str) -> bool:
    """Whether the question asks for news (so recent articles should rank higher)."""
    return bool(_RECENT.search(question))


@dataclass(slots=True)
class Candidate:
    row: PassageRow
    dense: float
    keyword: float
    sentence_scores: np.ndarray
    score: float = 0.0


def rank(
    query: np.ndarray,
    rows: dict[int, PassageRow],
    dense: dict[int, float],
    keyword: dict[int, float],
    recipe: Recipe = DEFAULT_RECIPE,
    recent_from: date | None = None,
) -> list[Candidate]:
    """Candidates by fused score, best first, at most ``per_article`` per article.
    ``recent_from`` set: newer articles get a boost that halves every half-life before it."""
    best_keyword = max(keyword.values(), default=0.0)
    candidates = []
    for passage_id, row in rows.items():
        sentence_scores = row.sentence_vectors @ query if len(row.sentences) else np.zeros(1)
        candidate = Candidate(
            row=row,
            dense=dense.get(passage_id, 0.0),
            keyword=keyword.get(passage_id, 0.0) / best_keyword if best_keyword > 0 else 0.0,
            sentence_scores=sentence_scores,
        )
        candidate.score = (
            recipe.dense * candidate.dense
            + recipe.sentence * float(sentence_scores.max())
            + recipe.keyword * candidate.keyword
        )
        if recent_from is not None and row.published is not None:
            age = max((recent_from - row.published).days, 0)
            candidate.score += recipe.recency_weight * 0.5 ** (age / recipe.recency_half_life_days)
        candidates.append(candidate)
    candidates.sort(key=lambda c: c.score, reverse=True)
    return diversify(candidates, recipe.per_article)


def diversify(candidates: list[Candidate], per_article: int) -> list[Candidate]:
    """Keep ranking order but at most ``per_article`` passages of any one article."""
    taken: dict[str, int] = {}
    result = []
    for candidate in candidates:
        article = candidate.row.article_id
        if taken.get(article, 0) < per_article:
            taken[article] = taken.get(article, 0) + 1
            result.append(candidate)
    return result


def quote_span(candidate: Candidate, question_terms: Sequence[str]) -> tuple[int, int]:
    """The one to three consecutive sentences of the passage that best answer the question:
    the best sentence by similarity and word overlap, extended by a neighbour that scores
    nearly as well, within about 400 characters."""
    row = candidate.row
    if not row.sentences:
        return 0, len(row.text)
    wanted = set(question_terms)
    scores = []
    for (start, end), similarity in zip(row.sentences, candidate.sentence_scores, strict=True):
        words = set(_WORD.findall(row.text[start:end].lower()))
        overlap = len(wanted & words) / len(wanted) if wanted else 0.0
        scores.append(float(similarity) + 0.3 * overlap)
    best = int(np.argmax(scores))
    first = last = best
    for _ in range(2):
        options = [i for i in (first - 1, last + 1) if 0 <= i < len(scores)]
        if not options:
            break
        neighbour = max(options, key=lambda i: scores[i])
        span = (min(first, neighbour), max(last, neighbour))
        length = row.sentences[span[1]][1] - row.sentences[span[0]][0]
        if scores[neighbour] < scores[best] - 0.1 or length > 400:
            break
        first, last = span
    return row.sentences[first][0], row.sentences[last][1]


def to_hit(candidate: Candidate, question_terms: Sequence[str]) -> Hit:
    row = candidate.row
    start, end = quote_span(candidate, question_terms)
    return Hit(
        article_id=row.article_id, passage_id=row.id, title=row.title, outlet=row.outlet,
        author=row.author, published=row.published, url=row.url, passage=row.text,
        quote=row.text[start:end], quote_span=(start, end), score=candidate.score,
    )


