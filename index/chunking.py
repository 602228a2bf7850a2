"""Split article text into sentences and passages, keeping character offsets.

Passages follow paragraph and sentence boundaries: a paragraph longer than the target
size is split between sentences, consecutive short paragraphs are merged up to it, and
no sentence is ever cut (only a "sentence" longer than twice the target, which is not
prose, is split between words).
"""

from __future__ import annotations

import re

from index.models import Article, Passage

_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "st",
    "sr",
    "jr",
    "gen",
    "col",
    "lt",
    "sgt",
    "capt",
    "gov",
    "sen",
    "rep",
    "rev",
    "hon",
    "pres",
    "no",
    "vs",
    "etc",
    "inc",
    "ltd",
    "co",
    "corp",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "mt",
    "ft",
    "fig",
    "approx",
    "dept",
    "est",
    "u.s",
    "u.k",
    "u.n",
    "e.g",
    "i.e",
    "a.m",
    "p.m",
}
# A candidate boundary: a run of end punctuation (matched from its first character, and
# possessively, so a long run of dots is scanned once), optional closing quotes/brackets,
# whitespace, then something that can start a sentence. Every pattern here runs in time
# linear in the text: no quantified part can be re-scanned from many starting points.
# Sentences start with a Latin capital (Azerbaijani's Ə Ğ İ Ş included), a Cyrillic one or a
# digit; Russian quotes open with «.
_BOUNDARY = re.compile(
    r"""(?<![.!?…])[.!?…]++["'”’»)\]]*+\s++(?=["'“‘«(\[]?[A-Z0-9À-ÖØ-ÞƏĞİŞА-ЯЁ])"""
)
# A line that continues a paragraph: the next line is not blank (only horizontal
# whitespace is looked at, so a long blank stretch is not re-scanned from every line).
_PARAGRAPH = re.compile(r"[^\n]+(?:\n(?![^\S\n]*\n)[^\n]+)*")
_LONGEST_ABBREVIATION = max(map(len, _ABBREVIATIONS))


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)`` in ``text``, trailing whitespace excluded."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        if _is_abbreviation(text, start, match.start()):
            continue
        end = match.start() + len(match.group().rstrip())
        if text[start:end].strip():
            spans.append((start, end))
        start = match.end()
    end = len(text.rstrip())
    if start < end:
        spans.append((start, end))
    return spans


def _is_abbreviation(text: str, start: int, stop: int) -> bool:
    """True when the full stop at ``text[stop]`` ends an abbreviation or an initial.

    The word is the run of word characters and dots just before it, within the sentence
    that began at ``start``; only a few characters are looked at, however long the run.
    """
    if text[stop] != ".":
        return False
    begin = stop
    while begin > start and (text[begin - 1].isalnum() or text[begin - 1] in "._"):
        begin -= 1
        if stop - begin > _LONGEST_ABBREVIATION:
            return False
    word = text[begin:stop].rstrip(".").lower()
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def paragraphs(text: str) -> list[tuple[int, int]]:
    """Paragraph spans: runs of non-blank lines."""
    return [(m.start(), m.end()) for m in _PARAGRAPH.finditer(text) if m.group().strip()]


def chunk_article(article: Article, target_chars: int = 700) -> list[Passage]:
    """The article's passages, in order, with offsets into ``article.text``."""
    text = article.text
    units: list[list[tuple[int, int]]] = []  # each unit: sentence spans (absolute) of one chunk
    for p_start, p_end in paragraphs(text):
        sentences = [(p_start + s, p_start + e) for s, e in split_sentences(text[p_start:p_end])]
        units.extend(_pack(_split_overlong(sentences, text, 2 * target_chars), target_chars))
    merged = _merge_short(units, target_chars)
    passages = []
    for position, sentences in enumerate(merged):
        start, end = sentences[0][0], sentences[-1][1]
        passages.append(
            Passage(
                article_id=article.id,
                position=position,
                start=start,
                end=end,
                text=text[start:end],
                sentences=tuple((s - start, e - start) for s, e in sentences),
            )
        )
    return passages


def _pack(sentences: list[tuple[int, int]], target: int) -> list[list[tuple[int, int]]]:
    """Group consecutive sentences of one paragraph into chunks of about ``target``."""
    chunks: list[list[tuple[int, int]]] = []
    for span in sentences:
        if chunks and span[1] - chunks[-1][0][0] <= target:
            chunks[-1].append(span)
        else:
            chunks.append([span])
    if len(chunks) > 1 and chunks[-1][-1][1] - chunks[-1][0][0] < target // 4:
        # A short tail reads better with its predecessor, even a little over the target.
        chunks[-2].extend(chunks.pop())
    return chunks


def _merge_short(units: list[list[tuple[int, int]]], target: int) -> list[list[tuple[int, int]]]:
    """Merge consecutive chunks (short paragraphs) while the result stays within target."""
    merged: list[list[tuple[int, int]]] = []
    for unit in units:
        if merged and unit[-1][1] - merged[-1][0][0] <= target:
            merged[-1] = merged[-1] + unit
        else:
            merged.append(list(unit))
    return merged


def _split_overlong(
    sentences: list[tuple[int, int]], text: str, limit: int
) -> list[tuple[int, int]]:
    """Spans longer than ``limit`` (not prose) split between words."""
    result = []
    for start, end in sentences:
        while end - start > limit:
            cut = text.rfind(" ", start, start + limit)
            cut = cut if cut > start else start + limit
            result.append((start, cut))
            start = cut
            while start < end and text[start].isspace():
                start += 1
        if start < end:
            result.append((start, end))
    return result
