"""Admin commands: /stats, /add, document uploads, /remove, /reindex; everyone else is
refused and nothing runs."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Sequence

import numpy as np
import pytest
from aiohttp import web

from index import ArticleIndex
from tests.test_bot.harness import ADMIN, USER, RunningBot, StartBot

ARTICLE_PAGE = """<!doctype html><html><head><title>Glacier retreat measured</title>
<meta name="author" content="I. Cold"><meta property="og:site_name" content="Alpine Times">
</head><body><article><h1>Glacier retreat measured</h1>
<p>Researchers measured the retreat of the Rhone glacier over the summer and found it lost
forty metres of length, the largest loss since records began in the nineteenth century.</p>
<p>The team used drones and satellite images to map the ice. They warned that the glacier
could lose half of its volume by the middle of the century if warming continues.</p>
</article></body></html>"""


class GatedEmbedder:
    """Wraps an embedder; batches (a reindex) wait for ``gate`` while one-text calls
    (questions) go through, so a test can hold a reindex open and keep asking."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[attr-defined]
        self.dimension = inner.dimension  # type: ignore[attr-defined]
        self.gate = threading.Event()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) > 1:
            self.gate.wait(10)
        return self.inner.encode(texts)  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
async def article_site() -> AsyncIterator[str]:
    """A local web server with one article page at /glacier."""

    async def glacier(request: web.Request) -> web.Response:
        return web.Response(text=ARTICLE_PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/glacier", glacier)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_stats_reports_the_index_and_uptime(running: RunningBot) -> None:
    [reply] = await running.chat(ADMIN).send("/stats")

    lines = reply.text.splitlines()
    assert lines[0] == "📊 Statistics"
    assert "Articles: 5" in lines
    assert "Outlets: 3" in lines
    assert any(line.startswith("Passages: ") for line in lines)
    assert any(line.startswith("Index size: ") and "KB" in line for line in lines)
    assert "Model: fake-hash-embedder (64 dimensions)" in lines
    assert "Subscribers: n/a" in lines
    assert any(line.startswith("Uptime: ") and line.endswith(" s") for line in lines)


async def test_add_url_ingests_the_page(running: RunningBot, article_site: str) -> None:
    conv = running.chat(ADMIN)

    [report] = await conv.send(f"/add {article_site}/glacier")

    assert report.text.splitlines()[0] == "Added: Glacier retreat measured"
    assert report.text.splitlines()[1] == "1 passage indexed."
    [answer] = await conv.send("how much did the Rhone glacier retreat?")
    assert "Glacier retreat measured" in answer.text


async def test_add_reports_failures_and_usage(running: RunningBot, article_site: str) -> None:
    conv = running.chat(ADMIN)

    [usage] = await conv.send("/add")
    [failed] = await conv.send(f"/add {article_site}/missing")

    assert usage.text == "Usage: /add URL (an http:// or https:// article page)."
    assert failed.text.startswith(f"Failed: {article_site}/missing — ")
    assert "404" in failed.text


async def test_an_uploaded_document_is_ingested(running: RunningBot) -> None:
    conv = running.chat(ADMIN)
    record = {
        "title": "Library reopens after flood",
        "text": "The city library reopened after repairs to flood damage.",
        "url": "https://news.example.org/library",
        "outlet": "City Post",
    }

    [report] = await conv.upload("library.jsonl", json.dumps(record).encode())

    assert report.text.splitlines()[0] == "Added: Library reopens after flood"
    [typing] = running.api.calls_of("sendChatAction")
    assert typing.params["action"] == "upload_document"
    [again] = await conv.upload("library.jsonl", json.dumps(record).encode())
    assert again.text.startswith("Already indexed: Library reopens after flood")


async def test_documents_of_the_wrong_type_or_size_are_refused(start_bot: StartBot) -> None:
    running = await start_bot(max_input_bytes=1000)
    conv = running.chat(ADMIN)

    [wrong] = await conv.upload("photo.png", b"\x89PNG....")
    [large] = await conv.upload("big.txt", b"Headline\n\n" + b"word " * 400)
    [bad] = await conv.upload("broken.json", b"{not json")

    assert wrong.text.startswith("I can ingest these file types: .txt .md")
    assert large.text.startswith("big.txt is too large (2.0 KB; the limit is 1000 bytes")
    assert "MAX_INPUT_BYTES" in large.text
    assert bad.text.startswith("Failed: broken.json — ")
    assert len(running.api.calls_of("getFile")) == 1  # only the well-formed upload is fetched


async def test_refused_file_names_are_shown_as_sent(start_bot: StartBot) -> None:
    """File names with HTML-like characters appear as sent in the refusals."""
    running = await start_bot(max_input_bytes=1000)
    conv = running.chat(ADMIN)

    [wrong] = await conv.upload("a<b>.png", b"\x89PNG....")
    [large] = await conv.upload("x<y>&z.txt", b"Headline\n\n" + b"word " * 400)

    assert wrong.text.endswith(" a<b>.png is not one.")
    assert large.text.startswith("x<y>&z.txt is too large (2.0 KB;")


async def test_remove_takes_an_id_or_a_url(running: RunningBot, index: ArticleIndex) -> None:
    conv = running.chat(ADMIN)
    [usage] = await conv.send("/remove")
    assert "Recent articles" in usage.text
    volcano = next(a for a in await index.latest(10) if a.title.startswith("Volcano"))
    assert volcano.id in usage.text

    [removed] = await conv.send(f"/remove {volcano.id}")
    [by_url] = await conv.send("/remove https://news.example.org/bank")
    [unknown] = await conv.send("/remove https://news.example.org/bank")

    assert removed.text.startswith("Removed Volcano erupts near village and its ")
    assert by_url.text.startswith("Removed Central bank raises interest rates")
    assert unknown.text == "No article has the id or URL https://news.example.org/bank."
    [answer] = await conv.send("volcano eruption village ash")
    assert "Volcano erupts near village" not in answer.text


async def test_reindex_runs_in_the_background_with_one_status_message(
    running: RunningBot, index: ArticleIndex
) -> None:
    """Progress edits one message; questions are answered meanwhile; a second /reindex is
    refused; the final edit reports counts and time."""
    gated = GatedEmbedder(index.core.embedder)
    index.core.embedder = gated  # type: ignore[assignment]
    conv = running.chat(ADMIN)

    [status] = await conv.send("/reindex")
    progress = await conv.wait_for(lambda m: m.text.startswith("🔄 Reindexing: 0 of "))
    [refusal] = await conv.send("/reindex")
    [answer] = await conv.send("volcano eruption")
    gated.gate.set()
    final = await conv.wait_for(lambda m: m.text.startswith("✅ Reindex finished"))

    assert status.text.startswith("🔄 Reindexing")
    assert progress.message_id == final.message_id == status.message_id
    assert refusal.text.startswith("A reindex is already running")
    assert "Volcano erupts near village" in answer.text
    assert final.text.startswith("✅ Reindex finished: 5 articles, ")
    assert final.text.endswith(" s.")
    assert len(running.api.calls_of("editMessageText")) >= 2


@pytest.mark.parametrize(
    "command", ["/stats", "/add https://example.org/a", "/remove x", "/reindex"]
)
async def test_admin_commands_are_refused_for_other_users(
    running: RunningBot, command: str
) -> None:
    conv = running.chat(USER)

    [refusal] = await conv.send(command)

    assert refusal.text == "Sorry, that command is only for the bot's admins."
    assert running.services.reindex_task is None
    assert running.api.calls_of("sendChatAction") == []


async def test_documents_from_other_users_are_refused(running: RunningBot) -> None:
    [refusal] = await running.chat(USER).upload("a.txt", b"Title\n\nBody text here.")

    assert refusal.text.startswith("Only the bot's admins can add articles.")
    assert running.api.calls_of("getFile") == []
