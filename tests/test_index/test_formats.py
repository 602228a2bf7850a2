"""Each input format becomes articles with the right text and metadata."""

from __future__ import annotations

import json
from datetime import date

import pytest

from index.errors import InputError
from index.formats import parse
from tests.factories import SAMPLE, SHARED


def test_azernews_layout_gives_outlet_author_date_and_paragraphs() -> None:
    [article] = parse(SAMPLE.name, SAMPLE.read_bytes())
    assert article.outlet == "Azernews"
    assert article.author == "Vugar Khalilov"
    assert article.published == date(2022, 6, 21)
    assert article.title.startswith("The Azerbaijani Mine Action Agency (ANAMA)")
    assert len(article.title) <= 100
    assert article.text.startswith("The Azerbaijani Mine Action Agency")
    assert "\n\n" in article.text and "By Vugar" not in article.text


def test_headline_first_text_and_markdown() -> None:
    [plain] = parse("a.txt", b"Ad sales boost profit\n\nFirst paragraph.\n\nSecond one.\n")
    assert plain.title == "Ad sales boost profit"
    assert plain.text == "First paragraph.\n\nSecond one."
    [markdown] = parse("a.md", b"# Big *news*\n\nBody text here.\n")
    assert markdown.title == "Big *news*"


def test_latin1_text_is_decoded_not_dropped() -> None:
    [article] = parse(
        "x.txt", "Price rise\n\nIt costs \u00a315.8m, caf\u00e9 owners say.".encode("latin-1")
    )
    assert "\u00a315.8m" in article.text and "caf\u00e9" in article.text


def test_short_latin1_text_with_many_accents_is_still_western() -> None:
    text = "Cr\u00e8me br\u00fbl\u00e9e\n\nNa\u00efvely, the cr\u00e8me br\u00fbl\u00e9e won."
    [article] = parse("x.txt", text.encode("latin-1"))
    assert article.title == "Cr\u00e8me br\u00fbl\u00e9e"
    assert "Na\u00efvely" in article.text


def test_only_web_urls_are_kept_as_links() -> None:
    records = [
        {"title": "A", "text": "Body one.", "url": "javascript:alert(1)"},
        {"title": "B", "text": "Body two.", "url": "example.com/x"},
        {"title": "C", "text": "Body three.", "url": "https://news.example/c"},
    ]
    parsed = parse("a.json", json.dumps(records).encode())
    assert [a.url for a in parsed] == [None, None, "https://news.example/c"]


def test_bbc_latin1_file_decodes_pound_sign() -> None:
    path = SHARED / "corpus" / "bbc-news-2005" / "sport" / "199.txt"
    if not path.exists():
        pytest.skip("shared corpus not present")
    [article] = parse(path.name, path.read_bytes())
    assert "\u00a315.8m" in article.text


def test_html_page_main_text_and_metadata() -> None:
    html = b"""<html><head><title>Big news | Site</title>
    <link rel="canonical" href="https://news.example/a/1">
    <meta property="og:site_name" content="Example News">
    <meta name="author" content="Jane Doe">
    <meta property="article:published_time" content="2024-03-05T10:00:00Z"></head>
    <body><nav>Home | World | Sport</nav><article><h1>Big news today</h1>
    <p>The first paragraph of the story is long enough to be the main text of the page.</p>
    <p>The second paragraph adds more detail about what happened and why it matters.</p>
    </article><footer>Copyright 2024</footer></body></html>"""
    [article] = parse("page.html", html)
    assert article.title == "Big news today"
    assert article.url == "https://news.example/a/1"
    assert article.outlet == "Example News"
    assert article.author == "Jane Doe"
    assert article.published == date(2024, 3, 5)
    assert article.text.startswith("The first paragraph")
    assert "Copyright" not in article.text and "Sport" not in article.text


def test_json_and_jsonl_records() -> None:
    record = {
        "title": "T",
        "text": "Body.",
        "url": "https://x.example/1",
        "published": "2024-01-02",
        "outlet": "X",
        "author": "Y",
    }
    [one] = parse("a.json", json.dumps(record).encode())
    assert (one.title, one.url, one.published, one.outlet, one.author) == (
        "T",
        "https://x.example/1",
        date(2024, 1, 2),
        "X",
        "Y",
    )
    lines = "\n".join(json.dumps({**record, "url": f"https://x.example/{i}"}) for i in range(3))
    assert len(parse("a.jsonl", lines.encode())) == 3


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.txt", b"  \n", "empty file"),
        ("blob.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binary"),
        ("bad.jsonl", b'{"title": "a", "text": "b"}\n{oops\n', "invalid JSON on line 2"),
        ("notitle.json", b'{"text": "b"}', "no 'title'"),
        ("head-only.txt", b"Just a headline\n", "no article text"),
        ("x.pdf", b"%PDF-1.4 some text", "unsupported file type"),
    ],
)
def test_bad_inputs_raise_a_reason(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(InputError, match=reason):
        parse(name, data)


def test_identity_is_the_url_else_the_content() -> None:
    a = parse("a.json", b'{"title": "T", "text": "One.", "url": "https://X.example/a/"}')[0]
    b = parse("b.json", b'{"title": "T2", "text": "Two.", "url": "https://x.example/a#top"}')[0]
    assert a.id == b.id  # same canonical URL
    c = parse("c.txt", b"T\n\nOne.")[0]
    d = parse("d.txt", b"T\n\nOne, changed.")[0]
    assert c.id != d.id
