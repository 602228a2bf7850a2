"""Misspelt question words, corrected against the index's own vocabulary.

The vocabulary is the keyword index's: every (Porter-stemmed) word with the number of
passages that hold it, read from SQLite when the store has changed, so it follows articles
as they are added and removed. A question word is left alone when the index knows its
stem or when it is an English word (symspellpy's bundled frequency list): a real word the
articles never use is not a typo. Any other word is looked up with SymSpell among the
index's stems (edit distance up to 2, or 1 for short stems; the first letter kept, since
typing slips rarely hit it), and the most common closest one is its correction. A short
unknown word one slip away from a stop word ("wer", "teh") is taken as that stop word.

Search adds the corrections to the keyword query and embeds the corrected question beside
the typed one; it never drops the words the user typed.
"""

from __future__ import annotations

import importlib.resources
import logging
import re
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from index.languages import fold_diacritics, keyword_forms
from index.search import STOP_WORDS
from index.store import Store

log = logging.getLogger(__name__)
MIN_WORD_CHARS = 4  # shorter words are only matched against stop words
# A vocabulary that took longer than this to read is reread in a background thread after
# the index changes, and questions meanwhile are spelled against the one before (at 100k
# passages reading it takes over a second); a quicker one is reread while the question waits.
SYNC_REFRESH_SECONDS = 0.25
# The first reading too, from this many passages (``size``): reading the vocabulary of 100k
# passages and building SymSpell's dictionary took 0.9 s at the first question with an
# unknown word (the p99 of a 100-question bench); until it is done, nothing is corrected.
BACKGROUND_FROM = 20_000
SHORT_STEM_CHARS = 5  # stems shorter than this get at most one edit
# A stem is turned back into a word that FTS5 stems to it ("peopl" -> "people"); Porter
# is not idempotent on its own output ("abus" stems to "abu"), so the stem alone may miss.
_SURFACE_ENDINGS = ("", "e", "s", "y", "l", "ed", "ing", "ion")
_WORD = re.compile(r"\w+", re.UNICODE)

if TYPE_CHECKING:  # symspellpy and the stemmer load at the first question (not for stats)
    from symspellpy import SymSpell


@dataclass(frozen=True, slots=True)
class Spelling:
    """A question's misspelt words and what they most likely meant."""

    fixed: dict[str, str] = field(default_factory=dict)  # typed word -> corrected word

    def question(self, question: str) -> str:
        """The question with each misspelt word replaced (for embedding)."""
        return _WORD.sub(lambda m: self.fixed.get(m.group().lower(), m.group()), question)

    def keyword_words(self, words: Sequence[str]) -> list[str]:
        """The typed words, then the corrections that are not stop words."""
        extra = [w for w in self.fixed.values() if w not in STOP_WORDS and w not in words]
        return [*words, *dict.fromkeys(extra)]

    def corrected_words(self, words: Sequence[str]) -> list[str]:
        """The words as meant: corrections in place, misspelt stop words gone."""
        meant = (self.fixed.get(word, word) for word in words)
        return list(dict.fromkeys(w for w in meant if w not in STOP_WORDS))


@cache
def english_words() -> frozenset[str]:
    """The 82,765 English words of symspellpy's bundled frequency list."""
    path = importlib.resources.files("symspellpy") / "frequency_dictionary_en_82_765.txt"
    return frozenset(line.split(" ", 1)[0] for line in path.read_text().splitlines())


class Speller:
    """Corrections for question words, from a store's keyword vocabulary. Thread-safe.

    ``version`` tells when the vocabulary may have changed: any value it returns that
    differs from the last one read makes the next lookup of an unknown word reread the
    vocabulary (in the background once reading it is slow: ``SYNC_REFRESH_SECONDS``, and
    the first time too when ``size``, the passages in the index, is at least
    ``BACKGROUND_FROM``). The index passes a counter of its vector index's changes (free to
    read); without one, the store's passage count and id checksum are read (a query)."""

    def __init__(
        self,
        store: Store,
        version: Callable[[], Hashable] | None = None,
        size: Callable[[], int] | None = None,
    ) -> None:
        self._store = store
        self._version_now = version or self._stored_version
        self._size = size or (lambda: 0)
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._version: Hashable | None = None
        self._symspell: SymSpell | None = None  # made at the first refresh
        self._took = 0.0  # seconds the last refresh took
        self._rereading: threading.Thread | None = None  # a background refresh under way

    @property
    def _stemmer(self) -> Any:
        return _porter()  # the algorithm FTS5's porter runs

    def spell(self, words: Sequence[str]) -> Spelling:
        """The misspelt ones among a question's lower-cased content words, corrected."""
        english = english_words()
        unknown = {  # a Russian or Azerbaijani word is known by its stem (index.languages)
            word: self._stemmer.stemWord(forms[-1])
            for word, forms in zip(words, keyword_forms(words), strict=True)
            if word.isalpha() and word not in english
        }
        if not unknown:
            return Spelling()
        with self._lock:
            unknown = {w: s for w, s in unknown.items() if not self._knows(s)}
            if unknown and self._refresh():
                unknown = {w: s for w, s in unknown.items() if not self._knows(s)}
            if self._version is None:  # the first reading is still under way
                return Spelling()
            fixed = {}
            for word, stem in unknown.items():
                meant = self._closest(stem) if len(word) >= MIN_WORD_CHARS else _stop_word(word)
                if meant is not None:
                    fixed[word] = meant
        return Spelling(fixed)

    def _knows(self, stem: str) -> bool:
        """Whether the index holds the stem (FTS5 keeps it without diacritics: ç as c)."""
        return stem in self._counts or fold_diacritics(stem) in self._counts

    def _closest(self, stem: str) -> str | None:
        from symspellpy import Verbosity

        if self._symspell is None:
            return None
        distance = 1 if len(stem) < SHORT_STEM_CHARS else 2
        suggestions = [
            s
            for s in self._symspell.lookup(stem, Verbosity.ALL, max_edit_distance=distance)
            if s.term[0] == stem[0]
        ]
        if not suggestions:
            return None
        best = min(suggestions, key=lambda s: (s.distance, -s.count))
        return self._surface(str(best.term))

    def _surface(self, stem: str) -> str:
        """A word that stems to ``stem``, an English one if possible ("peopl": "people")."""
        words = [stem + e for e in _SURFACE_ENDINGS if self._stemmer.stemWord(stem + e) == stem]
        return next((w for w in words if w in english_words()), words[0] if words else stem)

    def _refresh(self) -> bool:
        """Bring the vocabulary up to date with the store (called under the lock); whether
        it changed now. A slow one is reread in a background thread instead."""
        version = self._version_now()
        if version == self._version:
            return False
        slow = self._took > SYNC_REFRESH_SECONDS if self._version is not None else None
        if slow or (slow is None and self._size() >= BACKGROUND_FROM):
            if self._rereading is None:
                self._rereading = threading.Thread(
                    target=self._reread, args=(version,), name="speller-refresh", daemon=True
                )
                self._rereading.start()
            return False
        started = time.perf_counter()
        self._apply(self._read(), version)
        self._took = time.perf_counter() - started
        return True

    def _reread(self, version: Hashable) -> None:
        """The background refresh: read without the lock, apply with it."""
        try:
            started = time.perf_counter()
            fresh = self._read()
            with self._lock:
                self._apply(fresh, version)
                self._took = time.perf_counter() - started
        except Exception:  # the next question's refresh tries again
            log.warning("Could not refresh the spelling vocabulary", exc_info=True)
        finally:
            self._rereading = None

    def _read(self) -> dict[str, int]:
        return {term: n for term, n in self._store.vocabulary() if term.isalpha()}

    def _apply(self, fresh: dict[str, int], version: Hashable) -> None:
        if self._symspell is None:
            from symspellpy import SymSpell

            self._symspell = SymSpell(max_dictionary_edit_distance=2, prefix_length=7)
        for term in self._counts.keys() - fresh.keys():
            self._symspell.delete_dictionary_entry(term)
        for term, n in fresh.items():
            previous = self._counts.get(term)
            if previous != n:
                if previous is not None:  # create_dictionary_entry would add to the count
                    self._symspell.delete_dictionary_entry(term)
                self._symspell.create_dictionary_entry(term, n)
        self._counts = fresh
        self._version = version

    def _stored_version(self) -> Hashable:
        counts = self._store.counts()
        return (counts.passages, counts.id_sum)  # any added or removed passage changes it


def _stop_word(word: str) -> str | None:
    """The stop word one slip away from a short unknown word, first letter kept."""
    for stop in sorted(STOP_WORDS, key=lambda s: (-len(s), s)):
        if stop[0] == word[0] and _distance().compare(word, stop, 1) == 1:
            return stop
    return None


@cache
def _porter() -> Any:
    import snowballstemmer

    return snowballstemmer.stemmer("porter")


@cache
def _distance() -> Any:
    from symspellpy.editdistance import DistanceAlgorithm, EditDistance

    return EditDistance(DistanceAlgorithm.DAMERAU_OSA)
