"""Message building: within Telegram's limits by construction, escaped, and the small codecs
(deep links, query state) that keep button data short."""

from __future__ import annotations

from datetime import date

from bot.deep_links import decode_question, encode_question, question_link
from bot.query_state import FullArticle, MemoryQueryStore, MoreResults, QueryState
from bot.rendering import answer_text, article_parts, hit_text, html, length
from index import Article, Hit
from tests.fake_telegram import parse_html, utf16_len


def make_hit(passage: str, quote_span: tuple[int, int], **fields: object) -> Hit:
    values: dict[str, object] = {
        "article_id": "a1",
        "passage_id": 1,
        "title": "Title",
        "outlet": "Outlet",
        "author": "Author",
        "published": date(2024, 1, 2),
        "url": "https://example.org/a?x=1&y=2",
        "passage": passage,
        "quote": passage[quote_span[0] : quote_span[1]],
        "quote_span": quote_span,
        "score": 0.9,
    }
    values.update(fields)
    return Hit(**values)  # type: ignore[arg-type]


def test_huge_hits_still_fit_one_message() -> None:
    """Five hits with enormous passages, quotes, titles and emoji stay under 4096."""
    passage = ("😀 word <b>&amp; " * 2000) + "The quote itself. " * 300 + ("tail " * 2000)
    start = passage.index("The quote")
    hit = make_hit(passage, (start, start + 18 * 300), title="T" * 5000, author="A" * 900)

    text = answer_text("q" * 5000, [hit] * 5)

    rendered = html(text)
    plain, entities = parse_html(rendered)  # valid Telegram HTML
    assert utf16_len(plain) == length(text) <= 4096
    assert [e["type"] for e in entities].count("blockquote") == 5
    assert "word <b>&amp;" in plain and "&lt;b&gt;&amp;amp;" in rendered  # shown verbatim


def test_long_passages_are_trimmed_around_the_quote() -> None:
    before, quote, after = "Lead-in words. " * 100, "The key sentence.", " Tail words." * 100
    hit = make_hit(before + quote + after, (len(before), len(before) + len(quote)))

    plain, entities = parse_html(html(hit_text(hit)))

    assert "<b>The key sentence.</b>" in html(hit_text(hit))
    assert plain.startswith("…")
    assert len(plain) < 1200
    assert "Title · Outlet · 2 Jan 2024 · Author" in plain
    link = next(e for e in entities if e["type"] == "text_link")
    assert link["url"] == "https://example.org/a?x=1&y=2"


def test_article_parts_split_at_paragraphs_under_the_limit() -> None:
    paragraphs = [f"Paragraph {n}. " + "Sentence of text. " * 60 for n in range(30)]
    article = Article(id="x", title="Long <one>", text="\n\n".join(paragraphs))

    parts = [html(part) for part in article_parts(article)]

    assert len(parts) > 5
    for part in parts:
        plain, _ = parse_html(part)
        assert utf16_len(plain) <= 4096
    assert parts[0].startswith("<b>Long &lt;one&gt;</b>")
    joined = "".join(parse_html(part)[0] for part in parts)
    assert all(f"Paragraph {n}." in joined for n in range(30))


def test_deep_link_payloads_round_trip() -> None:
    payload = encode_question("Où est le volcan?")

    assert payload is not None and len(payload) <= 64
    assert all(c.isalnum() or c in "-_" for c in payload)
    assert decode_question(payload) == "Où est le volcan?"
    assert decode_question("inline") is None and decode_question("q%%%") is None
    assert encode_question("x" * 100) is None
    assert (
        question_link("newsbot", "rates?")
        == f"https://t.me/newsbot?start={encode_question('rates?')}"
    )


async def test_query_state_keeps_button_data_short_and_expires() -> None:
    now = [0.0]
    store = MemoryQueryStore(ttl=60, clock=lambda: now[0])
    state = QueryState("a question " * 30, ["a" * 40, "b" * 40])
    token = await store.add(state)

    assert len(MoreResults(token=token, offset=45).pack()) <= 64
    assert len(FullArticle(token=token, number=50).pack()) <= 64
    assert await store.get(token) is state and state.article_id(2) == "b" * 40
    now[0] = 61
    assert await store.get(token) is None and len(store) == 0
