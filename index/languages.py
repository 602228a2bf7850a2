"""Which language a question is written in, told cheaply from its letters, and whether the
embedding model reads it.

The bundled all-MiniLM-L6-v2 was trained on English: a Russian or Azerbaijani question gets
vectors that mean nothing, so it is better told so than searched. A multilingual model
(``paraphrase-multilingual-*``, LaBSE, multilingual e5, bge-m3) is trusted with any language;
``EMBEDDING_MULTILINGUAL`` says so for a model whose name does not.
"""

from __future__ import annotations

import re

__all__ = ["ENGLISH", "OTHER", "model_reads", "question_language", "reads_multilingual"]

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
