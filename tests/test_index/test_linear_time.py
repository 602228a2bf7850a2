"""Hostile text is handled in time linear in its size.

Each case feeds an input of size n and of size 8n to one of the parsers that see untrusted
text (sentence splitting and chunking, feed HTML to text, feed parsing, the file formats)
and fails when the time grows much faster than the size: a linear parser takes about 8
times as long, a quadratic one 64 times (the code before the fix took 47 to 96 times).
The bound is a ratio, not a speed. Times are CPU time of the test's thread (other
processes on a busy machine do not count), the best of a few rounds that each repeat the
call for 10 ms, and a case is measured up to three times before it fails, so a hiccup does
not decide the outcome while a quadratic parser fails every time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date

import pytest

from bot.feeds.parse import html_to_text, parse_feed
from index.chunking import chunk_article, paragraphs, split_sentences
from index.formats import make_article, parse

GROWTH = 8
MAX_RATIO = 32
ATTEMPTS = 3


def _article(text: str) -> object:
    return make_article(
        title="Hostile",
        text=text,
        url=None,
        outlet=None,
        author=None,
        published=date(2024, 1, 1),
        source="hostile.txt",
    )


def _feed(description: str) -> bytes:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Hostile</title>'
        "<item><title>Entry</title><link>https://news.example.org/a</link>"
        f"<description>{description}</description></item></channel></rss>"
    ).encode()


def _feed_entries(data: object) -> object:
    assert isinstance(data, bytes)
    return parse_feed(data, "https://news.example.org/feed")


# name: (function under test, input of size n, n)
CASES: dict[str, tuple[Callable[[object], object], Callable[[int], object], int]] = {
    "sentences: a run of dots": (split_sentences, lambda n: "." * n, 1_000),
    "sentences: dots between words": (split_sentences, lambda n: "a." * n + " End.", 1_000),
    "sentences: initials": (split_sentences, lambda n: "A. " * n, 400),
    "sentences: abbreviations": (split_sentences, lambda n: "Mr. " * n, 400),
    "sentences: end marks and spaces": (split_sentences, lambda n: "?! " * n + "x", 1_000),
    "sentences: closing quotes": (split_sentences, lambda n: "a." + "”" * n, 2_000),
    "sentences: long word before a stop": (
        split_sentences,
        lambda n: ("x" * n + ". ") * 50 + "End",
        200,
    ),
    "paragraphs: lines of spaces": (paragraphs, lambda n: "\n   " * n, 2_000),
    "chunks: dots and blank lines": (
        chunk_article,
        lambda n: _article("Start. " + "." * n + "\n \n" * n + "Done."),
        1_000,
    ),
    "feed html: unclosed '<'": (html_to_text, lambda n: "<" * n, 2_000),
    "feed html: unclosed figcaptions": (html_to_text, lambda n: "<figcaption>" * n, 500),
    "feed html: unclosed scripts and styles": (
        html_to_text,
        lambda n: "<script>a<style>b" * n,
        500,
    ),
    "feed html: unfinished end tags": (html_to_text, lambda n: "</p " * n, 1_000),
    "feed: escaped '<' runs": (_feed_entries, lambda n: _feed("&lt;" * n), 2_000),
    "feed: escaped figcaptions": (_feed_entries, lambda n: _feed("&lt;figcaption&gt;" * n), 300),
    "feed: unclosed comments": (
        _feed_entries,
        lambda n: _feed("<![CDATA[" + "<!--" * n + "]]>"),
        1_000,
    ),
    "feed: escaped quotes": (_feed_entries, lambda n: _feed("&quot;" * n), 1_000),
    "file: spaces in a byline": (
        lambda data: parse("a.txt", data),
        lambda n: b"date 2022-06-21 By Azernews\nBy Ann" + b" " * n + b"Lee\n\nBody text.",
        1_000,
    ),
    "file: leading blank lines": (
        lambda data: parse("a.txt", data),
        lambda n: b"\n" * n + b"Headline\nBody text.",
        4_000,
    ),
    "file: long headline line": (
        lambda data: parse("a.md", data),
        lambda n: b"   #" + b" " * n + b"x\nBody.",
        4_000,
    ),
}


def _seconds_per_call(function: Callable[[object], object], argument: object) -> float:
    """Best of three rounds of CPU time; each round repeats the call for at least 10 ms."""
    best = float("inf")
    for _ in range(3):
        calls, start = 0, time.thread_time()
        while (elapsed := time.thread_time() - start) < 0.01 or calls == 0:
            function(argument)
            calls += 1
        best = min(best, elapsed / calls)
    return best


@pytest.mark.parametrize("case", list(CASES))
def test_time_grows_linearly_with_hostile_input(case: str) -> None:
    """An input 8 times larger takes at most about 8 times longer, never 64 times."""
    function, make, n = CASES[case]
    small, large = make(n), make(GROWTH * n)
    function(small)  # warm up: imports, compiled patterns

    ratio = float("inf")
    for _ in range(ATTEMPTS):
        ratio = min(ratio, _seconds_per_call(function, large) / _seconds_per_call(function, small))
        if ratio < MAX_RATIO:
            break

    assert ratio < MAX_RATIO, f"{case}: {GROWTH}x the input took {ratio:.0f}x the time"


def test_sentences_still_split_after_hostile_runs() -> None:
    """The rewritten patterns keep abbreviations, initials and quotes as before."""
    text = 'Mr. Smith met Dr. Jones at 9 a.m. in the U.S. embassy. "Why?" he asked. J. R. Doe left.'

    sentences = [text[s:e] for s, e in split_sentences(text)]

    assert sentences == [
        "Mr. Smith met Dr. Jones at 9 a.m. in the U.S. embassy.",
        '"Why?" he asked.',
        "J. R. Doe left.",
    ]
    dots = "Wait...... What? Yes."
    assert [dots[s:e] for s, e in split_sentences(dots)] == ["Wait......", "What?", "Yes."]
