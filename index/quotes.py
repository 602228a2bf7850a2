"""The sentences shown in bold: the one to three adjacent sentences that answer the question.

A sentence scores by its similarity to the question, the share of the question's words it
contains, and whether it holds what the question asks for: a "who" question wants a name
the question does not already give, "when" a date, "where" a place, "how many" a number,
"why" a cause. A sentence that merely restates the question has the words and the
similarity but not the answer; the cue is what tells them apart (tuned on SQuAD v1.1 and
the news-quiz set, README "Retrieval quality").

Pure functions over a passage's text and sentence spans; no I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from enum import Enum

import numpy as np

from index.languages import ENGLISH, question_language, stem

_WORD = re.compile(r"\w+", re.UNICODE)


class Asks(Enum):
    """What a question asks for."""

    NAME = "name"  # who, which company, ...
    TIME = "time"  # when, what year, ...
    PLACE = "place"  # where, which country, ...
    NUMBER = "number"  # how many, how much, what percentage, ...
    CAUSE = "cause"  # why, what caused, ...
    THING = "thing"  # what / which anything else


# First match in the question wins, so the more specific forms come first.
_ASKS = [
    (
        Asks.NUMBER,
        r"how (many|much|long|old|far|big|large|tall|high|often|fast|deep|heavy)|"
        r"what (percentage|percent|share|proportion|number|amount|sum|price|fraction|age)|"
        r"сколько|скольк\w+|neçə|nə qədər",
    ),
    (
        Asks.TIME,
        r"when|what (year|date|day|month|century|decade|time|period|era|season)|"
        r"which (year|date|day|month|century|decade|season)|"
        r"когда|в каком году|nə vaxt|nə zaman|haçan|hansı ildə|hansı tarixdə",
    ),
    (
        Asks.PLACE,
        r"where|(what|which) (country|city|state|region|town|place|continent|island|area|"
        r"province|county|nation|location|river|street|neighbou?rhood|capital)|"
        r"где|куда|откуда|в какой стране|в каком городе|harada|haradan|hara",
    ),
    (
        Asks.CAUSE,
        r"why|what (caused|causes|led to|leads to|slows|made)|for what reason|how come|"
        r"почему|зачем|из-за чего|niyə|nə üçün|nədən",
    ),
    (
        Asks.NAME,
        r"who|whom|whose|(what|which) (person|man|woman|company|firm|team|group|organi[sz]ation|"
        r"party|band|player|president|leader|author|artist|singer|actor|actress|network|"
        r"brand|airline|agency|university|newspaper|club|official|politician|ceo|family)|"
        r"(what|which) (is|was|were|are) the name|named|"
        r"кто|кого|кому|кем|чей|чья|чьи|kim|kimin|kimi|kimə",
    ),
]
_ASKS_PATTERN = re.compile(
    "|".join(f"(?P<{kind.value}>\\b(?:{pattern})\\b)" for kind, pattern in _ASKS), re.IGNORECASE
)

_NUMBER_WORDS_TEXT = """
    one two three four five six seven eight nine ten eleven twelve thirteen fourteen
    fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy
    eighty ninety hundred hundreds thousand thousands million millions billion billions
    trillion dozen dozens half quarter twice percent per cent
    один два три четыре пять шесть семь восемь девять десять сто сотни тысяча тысячи тысяч
    миллион миллиона миллионов миллиард процент процентов половина
    bir iki üç dörd beş altı yeddi səkkiz doqquz on yüz yüzlərlə min minlərlə milyon
    milyard faiz yarısı"""
_MONTHS_TEXT = """
    january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday thursday friday
    saturday sunday"""
_TIME_WORDS_TEXT = """
    century centuries decade decades ago yesterday today tomorrow morning evening night
    week weeks weekend month months year years earlier later since until"""
_YEAR = re.compile(r"^(1[0-9]{3}|20[0-9]{2})s?$")
_CAPITALISED = re.compile(r"\b[A-ZÀ-ÖØ-ÞƏĞİŞÇÖÜА-ЯЁ]\w*")  # Latin, Azerbaijani, Cyrillic
_CAUSE = re.compile(
    r"\b(because|due to|owing to|thanks to|as a result|result(s|ed)? (in|from)|caus(e|es|ed|ing)|"
    r"lead(s)? to|led to|so that|in order to|reason|slow(s|ed|ing)?|hinder(s|ed)?|"
    r"prevent(s|ed)?|block(s|ed)?|delay(s|ed)?|lack of|since|therefore|thus|hence|"
    r"blame[sd]?|after|amid|over concerns?|fear(s|ed)?|aim(s|ed)? to|to (avoid|protect|"
    r"reduce|help|prevent|stop|ensure)|"
    r"потому что|из-за|так как|поскольку|поэтому|в результате|из-за того|замедля\w*|мешает|"
    r"препятству\w*|səbəb\w*|görə|nəticəsində|ləngid\w*|gecikdir\w*|çünki)\b",
    re.IGNORECASE,
)
_PLACE_BEFORE_TEXT = "in at from near to into across outside inside throughout"
_NUMBER_WORDS, _MONTHS, _TIME_WORDS, _PLACE_BEFORE = (
    frozenset(text.split())
    for text in (_NUMBER_WORDS_TEXT, _MONTHS_TEXT, _TIME_WORDS_TEXT, _PLACE_BEFORE_TEXT)
)

# Weights of the sentence score (similarity, word overlap, the cue the question asks for)
# and when a neighbour joins the quote. Measured on SQuAD v1.1 (README).
OVERLAP_WEIGHT = 0.3
CUE_WEIGHT = 0.1
NEIGHBOUR_MARGIN = 0.1  # a neighbour joins when it scores within this of the best
QUOTE_CHARS = 400  # ... and the quote stays within this many characters


def asks(question: str) -> Asks:
    """What the question asks for, from its question words."""
    match = _ASKS_PATTERN.search(question)
    return Asks(match.lastgroup) if match and match.lastgroup else Asks.THING


def cue(sentence: str, kind: Asks, question_words: frozenset[str]) -> float:
    """How much the sentence holds what a question of ``kind`` asks for (0..1), counting
    only what the question itself does not already say."""
    if kind is Asks.THING:
        return 0.0
    if kind is Asks.CAUSE:  # a causal word the question does not use itself ("slow")
        return _any(
            m.group().split()[0].lower() not in question_words for m in _CAUSE.finditer(sentence)
        )
    if kind is Asks.NAME:  # looks only at capitalised words: ranking asks this of many passages
        return _any(
            _is_name(m.group(), m.start()) and m.group().lower() not in question_words
            for m in _CAPITALISED.finditer(sentence)
        )
    # Ranking asks this of every sentence of the best candidates: NUMBER and PLACE look at
    # each word once and stop at the first that settles it.
    if kind is Asks.NUMBER:
        for m in _WORD.finditer(sentence):
            word = m.group()
            lowered = word.lower()
            if lowered not in question_words and (word[0].isdigit() or lowered in _NUMBER_WORDS):
                return 1.0
        return 0.0
    if kind is Asks.TIME:
        words = [m.group() for m in _WORD.finditer(sentence)]
        new = [w for w in words if w.lower() not in question_words]
        return _any(bool(_YEAR.match(w)) or w.lower() in _MONTHS for w in new) or 0.5 * _any(
            w.lower() in _TIME_WORDS or w[0].isdigit() for w in new
        )
    # PLACE: a name after "in", "at", "from"..., or at least a name
    named, previous = False, ""
    for m in _WORD.finditer(sentence):
        word = m.group()  # a name starts upper-case (``_is_name``): the cheap test first
        if word[0].isupper() and _is_name(word, m.start()) and word.lower() not in question_words:
            if previous.lower() in _PLACE_BEFORE:
                return 1.0
            named = True
        previous = word
    return 0.5 if named else 0.0


def _is_name(word: str, at: int) -> bool:
    """A capitalised word past the sentence's first, or an acronym anywhere ("ANAMA")."""
    if _YEAR.match(word) or not word[0].isupper():
        return False
    return at > 0 or (len(word) > 1 and word.isupper())


def _any(flags: Iterable[object]) -> float:
    return 1.0 if any(flags) else 0.0


def sentence_scores(
    text: str,
    sentences: Sequence[tuple[int, int]],
    similarity: np.ndarray,
    question: str,
    question_terms: Sequence[str],
) -> list[float]:
    """Each sentence's score as an answer: similarity, overlap and the question's cue."""
    language = question_language(question)
    wanted = {stem(w, language) for w in question_terms}  # "карта" is "карты" (ru, az)
    kind = asks(question)
    question_words = frozenset(_WORD.findall(question.lower()))
    scores = []
    for (start, end), cosine in zip(sentences, similarity, strict=True):
        sentence = text[start:end]
        words = set(_WORD.findall(sentence.lower()))
        if language != ENGLISH:
            words = {stem(w, language) for w in words}
        overlap = len(wanted & words) / len(wanted) if wanted else 0.0
        scores.append(
            float(cosine)
            + OVERLAP_WEIGHT * overlap
            + CUE_WEIGHT * cue(sentence, kind, question_words)
        )
    return scores


def quote_span(
    text: str,
    sentences: Sequence[tuple[int, int]],
    similarity: np.ndarray,
    question: str,
    question_terms: Sequence[str],
) -> tuple[int, int]:
    """Character span of the one to three consecutive sentences that best answer the
    question: the best sentence, extended by a neighbour that scores nearly as well,
    within about ``QUOTE_CHARS``."""
    if not sentences:
        return 0, len(text)
    scores = sentence_scores(text, sentences, similarity, question, question_terms)
    best = int(np.argmax(scores))
    first = last = best
    for _ in range(2):
        options = [i for i in (first - 1, last + 1) if 0 <= i < len(scores)]
        if not options:
            break
        neighbour = max(options, key=lambda i: scores[i])
        span = (min(first, neighbour), max(last, neighbour))
        length = sentences[span[1]][1] - sentences[span[0]][0]
        if scores[neighbour] < scores[best] - NEIGHBOUR_MARGIN or length > QUOTE_CHARS:
            break
        first, last = span
    return sentences[first][0], sentences[last][1]
