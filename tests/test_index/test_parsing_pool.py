"""Parsing in child processes: parsers' results and errors come back, a document over the
time limit is stopped with a one-line reason, and the children load only the parsers."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.feeds.errors import FeedError
from bot.feeds.parse import parse_feed
from index import IndexCore, IndexSettings, InputError, parsing_bench, parsing_pool
from index.formats import IN_PROCESS_HTML_CHARS, parse, parse_html
from index.parsing_pool import ParsingPool
from tests.alerts_support import FEEDS_DIR
from tests.fakes import HashEmbedder

PARAGRAPH = "<p>The harbour authority said dredging of the channel resumes next week.</p>"
PAGE = (
    "<html><head><title>Harbour news</title></head><body><article><h1>Harbour news</h1>"
    + PARAGRAPH * (2 * IN_PROCESS_HTML_CHARS // len(PARAGRAPH))
    + "</article></body></html>"
)
# 1 MB of tiny elements: trafilatura takes about 10 s of CPU over it.
HOSTILE_PAGE = b"<html><body>" + b"<div>x</div>" * 85_000 + b"</body></html>"


@pytest.fixture
def pool() -> Iterator[ParsingPool]:
    pool = ParsingPool(workers=1, timeout=30)
    yield pool
    pool.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_results_and_parser_errors_come_back_from_the_child(pool: ParsingPool) -> None:
    """A page parsed in a child gives the same article as one parsed here; the parsers'
    own errors reach the caller as the same exception with the same one-line message."""
    assert pool.run(parse_html, PAGE, source="page.html") == parse_html(PAGE, source="page.html")
    assert pool.run(os.getpid) != os.getpid()
    with pytest.raises(InputError, match=r"^no article text found in the HTML page$"):
        pool.run(parse_html, "<html><body>" + "<div></div>" * 2000 + "</body></html>", source="x")
    with pytest.raises(FeedError, match=r"^not a feed \("):
        pool.run(parse_feed, b"<html><body>not a feed</body></html>", "http://feeds.test/x")


def test_the_parsing_child_loads_only_the_parsers(pool: ParsingPool) -> None:
    """After parsing a page and a feed, the child has not imported torch, FAISS, ONNX
    Runtime or aiogram (it is not a fork of a process that has them)."""
    pool.run(parse_html, PAGE, source="page.html")
    pool.run(parse_feed, (FEEDS_DIR / "bbc-2024.xml").read_bytes(), "http://feeds.test/bbc")
    modules = set(pool.run(eval, "list(__import__('sys').modules)"))
    assert {"trafilatura", "feedparser", "bot.feeds.parse"} <= modules  # it did the parsing
    heavy = {"torch", "faiss", "onnxruntime", "sentence_transformers", "aiogram", "aiohttp"}
    assert heavy.isdisjoint(modules), sorted(heavy & modules)


def test_a_document_over_the_time_limit_fails_and_its_child_is_replaced(
    pool: ParsingPool,
) -> None:
    """The caller gets "took longer than 1 s to parse" soon after the limit, the stuck child
    is killed, and the next document gets a new child."""
    first = pool.run(os.getpid)
    pool.timeout = 1
    started = time.monotonic()
    with pytest.raises(InputError, match=r"^took longer than 1 s to parse$"):
        pool.run(parse_html, HOSTILE_PAGE.decode(), source="divs.html")
    assert time.monotonic() - started < 10
    assert not alive(first)
    assert pool.run(os.getpid) not in (first, os.getpid())


def test_a_child_that_dies_is_a_one_line_reason(pool: ParsingPool) -> None:
    """A child that exits mid-document (as when the system kills it for memory) is named
    in one line; the next document is parsed by a new child."""
    with pytest.raises(InputError, match=r"^the parser stopped unexpectedly \(exit code 3\)"):
        pool.run(os._exit, 3)
    assert pool.run(parse_html, PAGE, source="page.html").title == "Harbour news"


def test_closing_stops_busy_and_idle_children_quickly() -> None:
    """Closing the pool kills a child in the middle of a document (its caller is told why)
    and stops the idle one, within seconds."""
    pool = ParsingPool(workers=2, timeout=60)
    before = set(multiprocessing.active_children())
    errors: list[Exception] = []

    def parse_slowly() -> None:
        try:
            pool.run(time.sleep, 60)
        except InputError as error:
            errors.append(error)

    caller = threading.Thread(target=parse_slowly)
    caller.start()
    deadline = time.monotonic() + 30
    while not set(multiprocessing.active_children()) - before:
        assert time.monotonic() < deadline, "no child started in 30 s"
        time.sleep(0.05)
    pool.run(os.getpid)  # a second child: the first is busy
    children = set(multiprocessing.active_children()) - before
    assert len(children) == 2
    started = time.monotonic()
    pool.close()
    caller.join(10)
    assert not caller.is_alive() and time.monotonic() - started < 10
    assert [str(e) for e in errors] == ["not parsed: the index is closing"]
    assert not any(child.is_alive() for child in children)


def test_a_hostile_page_in_an_ingest_batch_is_that_files_reason(tmp_path: Path) -> None:
    """`python -m index ingest` (IndexCore.ingest): a page over PARSE_TIMEOUT fails with the
    one-line reason and the other files of the batch are stored; closing the index stops
    the parsing children."""
    (tmp_path / "divs.html").write_bytes(HOSTILE_PAGE)
    (tmp_path / "harbour.html").write_text(PAGE)
    settings = IndexSettings(data_dir=tmp_path / "data", parse_timeout=1, _env_file=None)  # type: ignore[call-arg]
    core = IndexCore.open(settings, HashEmbedder())
    try:
        report = core.ingest([str(tmp_path / "divs.html"), str(tmp_path / "harbour.html")])
        assert report.failed == [(str(tmp_path / "divs.html"), "took longer than 1 s to parse")]
        assert report.added == ["Harbour news"]
        child = parsing_pool.run(os.getpid)
    finally:
        core.close()
        parsing_pool.configure(timeout=parsing_pool.DEFAULT_TIMEOUT)
    assert not alive(child)


def test_small_pages_are_parsed_in_the_calling_process() -> None:
    """Pages under IN_PROCESS_HTML_CHARS skip the child (cheaper than the round trip)."""
    parsing_pool.shutdown()
    small = PAGE[: IN_PROCESS_HTML_CHARS // 2] + "</article></body></html>"
    [article] = parse("small.html", small.encode())
    assert article.title == "Harbour news"
    assert not multiprocessing.active_children()  # no child was started


def test_the_parsing_benchmark_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m index.parsing_bench --json` gives wall, CPU and GIL figures per size."""
    assert parsing_bench.main(["--sizes", "4", "--repeat", "1", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["kb"] == 4 and row["here"]["wall_ms"] > 0 and row["child"]["wall_ms"] > 0
