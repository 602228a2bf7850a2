"""Which subscriptions a new article concerns, and the passage that shows why.

A topic subscription stores the topic's embedding (made once, at subscribe time). A new
article matches it when one of its passages is close enough to the topic (cosine of the
normalised vectors at or above the calibrated threshold), or when every word of the topic
occurs in the headline. The quoted "why you got this" is the best sentence of the best
passage, widened with its neighbours to a readable length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from bot.storage import Subscription
from index import Article, IndexCore
from index.embedding import passage_vector

__all__ = ["ArticlePassages", "Match", "article_passages", "match_subscriptions"]

QUOTE_CHARS = 400
_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class ArticlePassages:
    """An indexed article's passages with their vectors (rows aligned)."""

    texts: list[str]
    vectors: np.ndarray  # passages x dimension
    sentences: list[list[tuple[int, int]]]
    sentence_vectors: list[np.ndarray]


@dataclass(frozen=True, slots=True)
class Match:
    subscription: Subscription
    quote: str
    score: float


def article_passages(core: IndexCore, article_id: str) -> ArticlePassages:
    """The stored passages of an article, in order, with their vectors."""
    rows = core.article_passages(article_id)
    return ArticlePassages(
        texts=[r.text for r in rows],
        vectors=np.stack([passage_vector(r.sentence_vectors) for r in rows])
        if rows
        else np.zeros((0, core.embedder.dimension), np.float32),
        sentences=[r.sentences for r in rows],
        sentence_vectors=[r.sentence_vectors for r in rows],
    )


def match_subscriptions(
    article: Article,
    passages: ArticlePassages,
    subscriptions: list[Subscription],
    threshold: float,
) -> list[Match]:
    """The subscriptions that want ``article``, each with its quote."""
    outlet = (article.outlet or "").casefold()
    candidates = [s for s in subscriptions if not s.outlet or s.outlet.casefold() == outlet]
    if not candidates or not passages.texts:
        return []
    lead = _lead(passages)
    topical = [s for s in candidates if s.topic and s.vector is not None]
    matches = [Match(s, lead, 1.0) for s in candidates if not s.topic]
    if not topical:
        return matches
    topics = np.vstack([s.vector for s in topical])  # type: ignore[misc]
    scores = passages.vectors @ topics.T  # passages x topics
    best_passage = scores.argmax(axis=0)
    best_score = scores.max(axis=0)
    headline = set(_WORD.findall(article.title.casefold()))
    for column, sub in enumerate(topical):
        score = float(best_score[column])
        words = set(_WORD.findall(sub.topic.casefold()))
        if score >= threshold or (words and words <= headline):
            row = int(best_passage[column])
            matches.append(Match(sub, _quote(passages, row, topics[column]), score))
    return matches


def _lead(passages: ArticlePassages) -> str:
    return _widen(passages.texts[0], passages.sentences[0], 0)


def _quote(passages: ArticlePassages, row: int, topic: np.ndarray) -> str:
    spans = passages.sentences[row]
    vectors = passages.sentence_vectors[row]
    best = int((vectors @ topic).argmax()) if len(spans) and len(vectors) == len(spans) else 0
    return _widen(passages.texts[row], spans, best)


def _widen(text: str, spans: list[tuple[int, int]], best: int) -> str:
    """The sentence ``best`` of ``text`` and its neighbours, up to ``QUOTE_CHARS``."""
    if not spans:
        return _clip(text)
    start, end = spans[best]
    left, right = best - 1, best + 1
    while True:
        grown = False
        if right < len(spans) and spans[right][1] - start <= QUOTE_CHARS:
            end, right, grown = spans[right][1], right + 1, True
        if left >= 0 and end - spans[left][0] <= QUOTE_CHARS:
            start, left, grown = spans[left][0], left - 1, True
        if not grown:
            break
    return _clip(text[start:end].strip())


def _clip(text: str) -> str:
    if len(text) <= QUOTE_CHARS + 200:
        return text
    return text[:QUOTE_CHARS].rsplit(" ", 1)[0] + "…"
