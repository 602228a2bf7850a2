"""Which language a question is written in, told cheaply from its letters, and whether the
embedding model reads it.

The bundled all-MiniLM-L6-v2 was trained on English: a Russian or Azerbaijani question gets
vectors that mean nothing, so it is better told so than searched. A multilingual model
(``paraphrase-multilingual-*``, LaBSE, multilingual e5, bge-m3) is trusted with any language;
``EMBEDDING_MULTILINGUAL`` says so for a model whose name does not.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import cache
from typing import Any

__all__ = [
    "ENGLISH",
    "OTHER",
    "fold_diacritics",
    "keyword_forms",
    "keyword_text",
    "model_reads",
    "needs_stems",
    "question_language",
    "reads_multilingual",
    "stem",
    "text_language",
]

ENGLISH = "en"
OTHER = "other"  # a script that is neither Latin nor Cyrillic (Arabic, Georgian, CJK...)
_MULTILINGUAL_MODEL = re.compile(
    r"multilingual|labse|bge-m3|(?:^|[-_/])(?:m?e5)(?:[-_]|$)|xlm-r", re.IGNORECASE
)
# Letters of Azerbaijani's Latin alphabet that English lacks (ə above all; Turkish shares
# the others), and frequent Azerbaijani words spelt without them.
_AZERBAIJANI_LETTERS = frozenset("əƏığĞşŞİ")
_AZERBAIJANI_WORDS = frozenset(
    {"və", "bu", "bir", "ki", "nə", "kim", "niyə", "necə", "harada", "hansı", "neçə", "üçün"}
    | {"ilə", "da", "də", "olan", "olub", "edir", "haqqında", "barədə", "daha", "çox"}
)
_WORD = re.compile(r"\w+")
_SHARE = 0.3  # a script holding this share of the letters decides the language


def reads_multilingual(model_name: str, setting: bool | None = None) -> bool:
    """Whether the embedding model reads more than English: ``setting`` when given
    (EMBEDDING_MULTILINGUAL), else guessed from the model's name."""
    if setting is not None:
        return setting
    return bool(_MULTILINGUAL_MODEL.search(model_name))


def question_language(text: str) -> str:
    """``ru`` for text mostly in Cyrillic, ``az`` for Azerbaijani Latin, ``en`` for other
    Latin text (and text without letters), `OTHER` for any other script."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return ENGLISH
    cyrillic = sum("\u0400" <= c <= "\u04ff" for c in letters)
    latin = sum(c.isascii() or "\u00c0" <= c <= "\u024f" for c in letters)
    if cyrillic >= _SHARE * len(letters) and cyrillic >= latin:
        return "ru"
    if latin < _SHARE * len(letters):
        return OTHER
    words = {w.lower() for w in _WORD.findall(text)}
    if any(c in _AZERBAIJANI_LETTERS for c in letters) or len(words & _AZERBAIJANI_WORDS) >= 2:
        return "az"
    return ENGLISH


def model_reads(language: str, model_name: str, setting: bool | None = None) -> bool:
    """Whether a question in ``language`` can be searched with the model."""
    return language == ENGLISH or reads_multilingual(model_name, setting)


# -- stems for the keyword index ---------------------------------------------------------
#
# The keyword index stems English itself (FTS5's porter tokenizer, PostgreSQL's english
# configuration) and would keep Russian and Azerbaijani words exactly as typed, so "мины"
# would not find "мин". Those words are stemmed here, before the index's own tokenizer sees
# them: Cyrillic words with Snowball's Russian stemmer; the words of Azerbaijani text with
# Snowball's Turkish stemmer, Turkish being the closest language Snowball has, with ə read
# as e (Azerbaijani ə is Turkish e in most shared suffixes: -lər/-ler, -də/-de, -dən/-den).
# On 35 hand-made Azerbaijani inflection groups that joins 64% of the same-word pairs
# (36% without the ə mapping, 0% as typed) and joins no two different words; Snowball has no
# Azerbaijani stemmer of its own, so it is an approximation (README, "Languages").

RUSSIAN = "ru"
AZERBAIJANI = "az"
MIN_STEM_CHARS = 3  # a shorter stem ("insan" -> "in") is over-stemming: the word is kept
# Text (rather than a question) is Azerbaijani when ə, a letter no other language of the
# news uses (about 8% of Azerbaijani letters), makes up this share of its letters, or when
# it holds this many different frequent Azerbaijani words: an English article that names
# "Erdoğan" or "Şuşa" is still English.
_TEXT_SCHWA_SHARE = 0.02
_TEXT_WORDS = 3
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_COMBINING_DOT = "\u0307"  # "İ".lower() is "i" + this


@cache
def _stemmer(language: str) -> Any:
    import snowballstemmer  # here, so importing index.languages stays cheap

    return snowballstemmer.stemmer("russian" if language == RUSSIAN else "turkish")


def stem(word: str, language: str = ENGLISH) -> str:
    """A word's stem as the keyword index keeps it (lower-cased): Cyrillic words by the
    Russian stemmer, Latin words of ``az`` text by the Turkish one; any other word is left to
    the index (returned lower-cased)."""
    word = word.lower().replace(_COMBINING_DOT, "")
    if _CYRILLIC.search(word):
        stemmed = _stemmer(RUSSIAN).stemWord(word)
    elif language == AZERBAIJANI:
        stemmed = _stemmer(AZERBAIJANI).stemWord(word.replace("ə", "e"))
    else:
        return word
    return stemmed if len(stemmed) >= MIN_STEM_CHARS else word


def text_language(text: str) -> str:
    """Like `question_language`, but stricter about Azerbaijani, for whole passages: a few
    Azerbaijani letters in a name do not make an English article Azerbaijani."""
    language = question_language(text)
    if language != AZERBAIJANI:
        return language
    letters = sum(c.isalpha() for c in text)
    schwa = text.count("ə") + text.count("Ə")
    frequent = {w.lower() for w in _WORD.findall(text)} & _AZERBAIJANI_WORDS  # "Kim" thrice: 1
    if schwa >= _TEXT_SCHWA_SHARE * letters or len(frequent) >= _TEXT_WORDS:
        return AZERBAIJANI
    return ENGLISH


def needs_stems(text: str) -> bool:
    """Whether `keyword_text` may change the text, told quickly (`text_language` costs about
    0.2 ms a passage): text without Cyrillic letters is left as it is unless it is
    Azerbaijani, which takes an ə or ``_TEXT_WORDS`` different frequent Azerbaijani words."""
    if text.isascii():
        words = set(text.encode().lower().translate(_NOT_WORD_BYTES).split())
        return len(words & _AZERBAIJANI_ASCII) >= _TEXT_WORDS
    if _CYRILLIC.search(text) or "ə" in text or "Ə" in text:
        return True
    return len({word.lower() for word in _WORD.findall(text)} & _AZERBAIJANI_WORDS) >= _TEXT_WORDS


# For `needs_stems` on ASCII text: each byte that is not in \w made a space, and the
# frequent Azerbaijani words written in ASCII
_NOT_WORD_BYTES = bytes(b if chr(b).isalnum() or b == ord("_") else 32 for b in range(256))
_AZERBAIJANI_ASCII = frozenset(word.encode() for word in _AZERBAIJANI_WORDS if word.isascii())


def keyword_text(text: str, language: str | None = None) -> str:
    """``text`` as the keyword index is given it: its Russian words, and the words of
    Azerbaijani text, replaced by their stems (`stem`); English text comes back unchanged."""
    language = language or text_language(text)
    if language != AZERBAIJANI and not _CYRILLIC.search(text):
        return text
    return _WORD.sub(lambda m: stem(m.group(), language), text)


def keyword_forms(words: Sequence[str]) -> list[tuple[str, ...]]:
    """Per question word (lower-cased, as `index.search.terms` gives them), the forms the
    keyword index is searched for: the word as typed, and its stem when that differs. The
    typed form still finds passages indexed before stems were kept, and a word of an
    English question that `question_language` takes for Azerbaijani ("Erdoğan")."""
    language = question_language(" ".join(words))
    return [tuple(dict.fromkeys((word, stem(word, language)))) for word in words]


def fold_diacritics(word: str) -> str:
    """The word without diacritics (ç as c, ş as s), as FTS5's ``remove_diacritics`` keeps
    it; letters that are not a base letter with a mark (ə, ı) stay."""
    if word.isascii():
        return word
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c))
