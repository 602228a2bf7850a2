"""Hybrid ranking: dense passage and sentence similarity fused with BM25 (quotes: ``quotes``).

Pure functions over candidates that ``core`` gathers; no I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from index.models import Hit
from index.quotes import Asks, asks, cue, quote_span
from index.store import PassageRow

_WORD = re.compile(r"\w+", re.UNICODE)
_RECENT = re.compile(
    r"\b(latest|recent|recently|news|today|yesterday|this (week|month|year)|new|now|current)\b",
    re.IGNORECASE,
)

# English function words (the usual NLTK-style list, with question words): left out of
# keyword queries, since they match everywhere and only add noise to BM25.
_STOP_WORDS_TEXT = """
    i me my myself we our ours ourselves you your yours yourself yourselves he him his himself
    she her hers herself it its itself they them their theirs themselves what which who whom
    this that these those am is are was were be been being have has had having do does did
    doing a an the and but if or because as until while of at by for with about against
    between into through during before after above below to from up down in out on off over
    under again further then once here there when where why how all any both each few more
    most other some such no nor not only own same so than too very s t can will just don
    should now d ll m o re ve y ain aren couldn didn doesn hadn hasn haven isn ma mightn
    mustn needn shan shouldn wasn weren won wouldn
"""
# Russian and Azerbaijani function and question words, for multilingual models
# (EMBEDDING_MODEL): the same role as the English list, for questions in those languages.
_RUSSIAN_STOP_WORDS_TEXT = """
    и в во не что он на я с со как а то все она так его но да ты к у же вы за бы по только
    ее её мне было вот от меня еще ещё нет о из ему теперь когда даже ну вдруг ли если уже
    или ни быть был него до вас нибудь опять уж вам ведь там потом себя ничего ей может они
    тут где есть надо ней для мы тебя их чем была сам чтоб без будто чего раз тоже себе под
    будет ж тогда кто этот того потому этого какой совсем ним здесь этом один почти мой тем
    чтобы нее неё сейчас были куда зачем всех никогда можно при наконец два об другой хоть
    после над больше тот через эти нас про всего них какая много разве три эту моя впрочем
    хорошо свою этой перед иногда лучше чуть том нельзя такой им более всегда конечно всю
    между сколько почему каких какие каким это эта
"""
# (Words that are also English words or names are left out: kim, kimi, var, ya, biz, ona.)
_AZERBAIJANI_STOP_WORDS_TEXT = """
    və ilə bu bir də ki nə niyə necə harada hansı neçə nəyə nədən üçün isə yaxud amma
    lakin ancaq həm hər heç bəzi çox daha ən artıq olan olub olar oldu olmuş olaraq edir
    edib etdi etmək idi imiş deyil yox mən sən siz onlar onun bunu buna bunun belə elə
    sonra əvvəl qədər görə haqqında barədə üzrə neçənci vaxt
"""
STOP_WORDS = frozenset(
    (_STOP_WORDS_TEXT + _RUSSIAN_STOP_WORDS_TEXT + _AZERBAIJANI_STOP_WORDS_TEXT).split()
)


@dataclass(frozen=True, slots=True)
class Recipe:
    """How candidates are gathered and scored (tuned on SQuAD v1.1, see README).

    A passage's score is ``sentence * best sentence cosine + keyword * BM25 / best BM25``:
    the question matched against the passage's single best sentence (each embedded with
    the headline as context), plus its keyword score relative to the best keyword match.
    """

    sentence: float = 1.0
    keyword: float = 0.5
    # FTS5 column weights: headline, passage text. Every passage of an article shares its
    # headline, so a headline match cannot tell them apart: 0.25 instead of 1.0 took the
    # news-quiz hybrid R@1 from 0.298 to 0.327 (168 questions, half the passages) and moved
    # SQuAD v1.1 by at most 0.3 point (1,057 questions), see README "Retrieval quality".
    title_weight: float = 0.25
    body_weight: float = 1.0
    candidates: int = 50  # from each of the dense and the keyword retrievers
    per_article: int = 2  # passages one article may contribute to a result list
    recency_half_life_days: float = 30.0
    recency_weight: float = 0.15
    coverage: float = 0.5  # relevance = best sentence cosine + coverage * share of words found
    # A passage holding what the question asks for (a name it does not give for "who", a
    # number for "how many": index/quotes.py's cue) gains this much, among the best
    # ``cue_depth`` candidates. On the news-quiz set (350 questions) 0.2 took the hybrid
    # from 0.357 / 0.614 / 0.470 to 0.380 / 0.623 / 0.484 (R@1 / R@5 / MRR@10); 0.1 and 0.3
    # did less or the same. SQuAD's questions mostly restate their paragraph, README
    # "Retrieval quality".
    cue: float = 0.2
    cue_depth: int = 30


DEFAULT_RECIPE = Recipe()
# Refuse to answer when the top hit's relevance is below this. Calibrated on SQuAD 2.0
# (README, "When nothing relevant is found"): about 1% of answerable questions refused.
DEFAULT_MIN_RELEVANCE = 0.55


def terms(question: str) -> list[str]:
    """The question's content words, lower-cased, stop words removed, order kept."""
    seen: dict[str, None] = {}
    # "İ".lower() is "i" plus a combining dot, which would split Azerbaijani "İndi" in two
    for word in _WORD.findall(question.lower().replace("\u0307", "")):
        if word not in STOP_WORDS and word not in seen:
            seen[word] = None
    return list(seen)


def wants_recent(question: str) -> bool:
    """Whether the question asks for news (so recent articles should rank higher)."""
    return bool(_RECENT.search(question))


@dataclass(slots=True)
class Candidate:
    row: PassageRow
    keyword: float  # BM25 relative to the best among the candidates, 0..1
    sentence_scores: np.ndarray  # cosine of the question with each sentence
    score: float = 0.0


def rank(
    query: np.ndarray,
    rows: dict[int, PassageRow],
    keyword: dict[int, float],
    recipe: Recipe = DEFAULT_RECIPE,
    recent_from: date | None = None,
    question: str = "",
) -> list[Candidate]:
    """Candidates by fused score, best first, at most ``per_article`` per article.
    ``recent_from`` set: newer articles get a boost that halves every half-life before it.
    ``question`` given: the best candidates holding what it asks for gain ``recipe.cue``."""
    best_keyword = max(keyword.values(), default=0.0)
    candidates = []
    for passage_id, row in rows.items():
        sentence_scores = row.sentence_vectors @ query
        candidate = Candidate(
            row=row,
            keyword=keyword.get(passage_id, 0.0) / best_keyword if best_keyword > 0 else 0.0,
            sentence_scores=sentence_scores,
        )
        candidate.score = (
            recipe.sentence * float(sentence_scores.max(initial=0.0))
            + recipe.keyword * candidate.keyword
        )
        if recent_from is not None and row.published is not None:
            age = max((recent_from - row.published).days, 0)
            candidate.score += recipe.recency_weight * 0.5 ** (age / recipe.recency_half_life_days)
        candidates.append(candidate)
    candidates.sort(key=lambda c: c.score, reverse=True)
    kind = asks(question)
    if recipe.cue and kind is not Asks.THING:
        head = candidates[: recipe.cue_depth]  # the cue costs ~30 µs a sentence
        words = frozenset(_WORD.findall(question.lower()))
        for candidate in head:
            text, spans = candidate.row.text, candidate.row.sentences
            candidate.score += recipe.cue * max(
                (cue(text[a:b], kind, words) for a, b in spans), default=0.0
            )
        head.sort(key=lambda c: c.score, reverse=True)
        candidates[: len(head)] = head
    return diversify(candidates, recipe.per_article)


def relevance(candidate: Candidate, words_found: int, words: int, recipe: Recipe) -> float:
    """How well the passage answers at all: its best sentence cosine plus the share of the
    question's words it contains (BM25 relative to the best says nothing absolute)."""
    coverage = words_found / words if words else 0.0
    return float(candidate.sentence_scores.max(initial=0.0)) + recipe.coverage * coverage


def diversify(candidates: list[Candidate], per_article: int) -> list[Candidate]:
    """Ranking order, but no article's passage beyond its ``per_article`` best comes before
    another article's: the extra ones follow, in order, once the others run out."""
    taken: dict[str, int] = {}
    first: list[Candidate] = []
    later: list[Candidate] = []
    for candidate in candidates:
        article = candidate.row.article_id
        taken[article] = taken.get(article, 0) + 1
        (first if taken[article] <= per_article else later).append(candidate)
    return first + later


def to_hit(candidate: Candidate, question_terms: Sequence[str], question: str = "") -> Hit:
    row = candidate.row
    start, end = quote_span(
        row.text, row.sentences, candidate.sentence_scores, question, question_terms
    )
    return Hit(
        article_id=row.article_id,
        passage_id=row.id,
        title=row.title,
        outlet=row.outlet,
        author=row.author,
        published=row.published,
        url=row.url,
        passage=row.text,
        quote=row.text[start:end],
        quote_span=(start, end),
        score=candidate.score,
    )
