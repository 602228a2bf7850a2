"""Hybrid ranking: dense passage and sentence similarity fused with BM25 (quotes: ``quotes``).

Pure functions over candidates that ``core`` gathers; no I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

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
    """How candidates are gathered and scored (tuned on SQuAD v1.1 and the news-quiz set,
    README "Retrieval quality").

    A passage's score is ``sentence * best sentence cosine + keyword * BM25 / best BM25
    + headline * share of a long headline's words it holds``: the question matched against
    the passage's single best sentence (each embedded with the headline as context), plus
    its keyword score relative to the best keyword match, plus how much it restates a
    headline that sums its story up. Then ``story`` times its story's best score is added,
    and among the best ``cue_depth`` a passage holding what the question asks for gains
    ``cue``.
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
    # A passage gains ``headline`` times the share of its headline's content words it
    # contains, when the headline has at least ``headline_words`` of them: a headline that
    # is a sentence sums the story up, and the passage restating it (the lede) states the
    # story's facts, where later ones hold quotes, background and links. A title of a few
    # words only names a topic (SQuAD's "Super Bowl 50": 1 to 4 words), which says nothing
    # about which passage answers. News quiz (350 questions): 0.3 / 0.4 / 0.5 / 0.6 took
    # R@5 from 0.623 to 0.657 / 0.666 / 0.671 / 0.669 and MRR@10 from 0.484 to 0.514 /
    # 0.523 / 0.527 / 0.521; with no gate, 0.3 cost SQuAD 2.1 R@5 points (README).
    headline: float = 0.5
    headline_words: int = 5
    # Every passage gains ``story`` times the best score among the candidates of its story
    # (the passages sharing its headline and outlet): a story that answers well lifts its
    # other passages above weaker stories' best ones, so the passage holding the answer,
    # often not the one that restates the question best, still reaches the top 5. With the
    # headline at 0.5: 0.5 took news R@5 0.671 -> 0.686 (1.0: 0.680); alone, 1.0 cost
    # SQuAD 0.5 point of R@5 and 0.5 none (README "Retrieval quality").
    story: float = 0.5


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


_best = np.maximum.reduce  # an array's largest value


def rank(
    query: np.ndarray,
    rows: dict[int, PassageRow],
    keyword: dict[int, float],
    recipe: Recipe = DEFAULT_RECIPE,
    recent_from: date | None = None,
    question: str = "",
) -> list[Candidate]:
    """Candidates by fused score (``Recipe``), best first, at most ``per_article`` per
    article. ``recent_from`` set: newer articles get a boost that halves every half-life
    before it. ``question`` given: the best candidates holding what it asks for gain
    ``recipe.cue``."""
    best_keyword = max(keyword.values(), default=0.0)
    candidates = []
    # On the path of every question, for ~100 candidates: the recipe's fields read once,
    # the best sentence by the ufunc itself (ndarray.max's Python wrapper costs as much).
    weight, keyword_weight, headline = recipe.sentence, recipe.keyword, recipe.headline
    for passage_id, row in rows.items():
        sentence_scores = row.sentence_vectors @ query
        share = keyword.get(passage_id, 0.0) / best_keyword if best_keyword > 0 else 0.0
        score = weight * float(_best(sentence_scores, initial=0.0)) + keyword_weight * share
        if headline:
            score += headline * restates_headline(row.title, row.text, recipe.headline_words)
        if recent_from is not None and row.published is not None:
            age = max((recent_from - row.published).days, 0)
            score += recipe.recency_weight * 0.5 ** (age / recipe.recency_half_life_days)
        candidates.append(Candidate(row, share, sentence_scores, score))
    if recipe.story:
        add_story_context(candidates, recipe.story)
    candidates.sort(key=lambda c: c.score, reverse=True)
    kind = asks(question)
    if recipe.cue and kind is not Asks.THING:
        head = candidates[: recipe.cue_depth]  # the cue costs ~30 µs a sentence
        words = frozenset(_WORD.findall(question.lower()))
        for candidate in head:
            row = candidate.row
            candidate.score += recipe.cue * _best_cue(row.text, row.sentences, kind, words)
        head.sort(key=lambda c: c.score, reverse=True)
        candidates[: len(head)] = head
    return diversify(candidates, recipe.per_article)


def _best_cue(
    text: str, sentences: Sequence[tuple[int, int]], kind: Asks, words: frozenset[str]
) -> float:
    """The largest ``cue`` of the passage's sentences (0 without any), found without asking
    the sentences after one that gives 1, the most a cue gives."""
    best = 0.0
    for a, b in sentences:
        best = max(best, cue(text[a:b], kind, words))
        if best >= 1.0:
            break
    return best


# restates_headline's answers, by (hash of the headline, hash of the text, min_words): the
# same passages come back question after question (0.3 ms a question instead of 1.3 ms for
# 80 candidates), and the key holds no text (at most 65,536 entries, about 13 MB).
_RESTATES: dict[tuple[int, int, int], float] = {}
_RESTATES_KEPT = 65_536


def restates_headline(headline: str, text: str, min_words: int) -> float:
    """The share of the headline's content words the passage holds (0..1), for a headline
    of at least ``min_words`` of them (0 for shorter ones)."""
    key = (hash(headline), hash(text), min_words)
    share = _RESTATES.get(key)
    if share is None:
        if len(_RESTATES) >= _RESTATES_KEPT:
            _RESTATES.clear()
        share = _RESTATES[key] = _restates_headline(headline, text, min_words)
    return share


def _restates_headline(headline: str, text: str, min_words: int) -> float:
    wanted = _headline_terms(headline)
    if len(wanted) < min_words or headline.rstrip("\u2026") in text:
        # A headline found as it is in the passage was made from it (an article without
        # one is headed by its first sentence): the passage is its source, not a lede.
        return 0.0
    lowered = text.lower().replace("\u0307", "")  # as ``terms``
    return sum(1 for word in wanted if _holds(lowered, word)) / len(wanted)


@lru_cache(maxsize=4096)
def _headline_terms(headline: str) -> tuple[str, ...]:
    """``terms`` of a headline: every passage of an article asks for the same."""
    return tuple(terms(headline))


def _holds(text: str, word: str) -> bool:
    """Whether ``word`` (a run of word characters) is one of the text's words, i.e. in
    ``_WORD.findall(text)``: an occurrence with no word character either side. Finding a
    headline's words so took 7.5 to 11 µs a passage of ~500 characters, splitting it into
    its words 36 µs."""
    at = text.find(word)
    while at >= 0:
        end = at + len(word)
        if (at == 0 or not _is_word_char(text[at - 1])) and (
            end == len(text) or not _is_word_char(text[end])
        ):
            return True
        at = text.find(word, at + 1)
    return False


def _is_word_char(char: str) -> bool:
    """Whether ``_WORD`` (``\\w``, Unicode) counts the character as part of a word."""
    return char.isalnum() or char == "_"


def add_story_context(candidates: Sequence[Candidate], weight: float) -> None:
    """Adds ``weight`` times its story's best score to every candidate's score. A story is
    the passages sharing a headline and outlet: an article's passages (and in ``eval``,
    where every paragraph is an article of its own, the paragraphs of one source article)."""
    best: dict[tuple[str, str | None], float] = {}
    for candidate in candidates:
        story = (candidate.row.title, candidate.row.outlet)
        best[story] = max(best.get(story, candidate.score), candidate.score)
    for candidate in candidates:
        candidate.score += weight * best[(candidate.row.title, candidate.row.outlet)]


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
