"""Test support for feeds and alerts: a local feed server and the whole alerts stack
(fake Bot API, index with the hash embedder, AlertsService, a polling dispatcher)."""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiohttp import web

from bot.alerts.service import AlertsService
from bot.alerts.settings import AlertSettings
from bot.handlers.alerts import create_routers
from index import ArticleIndex, IndexCore, IndexSettings
from tests.fake_telegram import FakeBotAPI
from tests.fakes import HashEmbedder

FEEDS_DIR = Path(__file__).resolve().parents[2] / "shared" / "feeds"


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "application/rss+xml"
    status: int = 200
    location: str | None = None
    cache_control: str | None = None
    fail_times: int = 0
    fail_status: int = 500


@dataclass
class FeedServer:
    """Serves feeds and pages on 127.0.0.1 (or ``host``); answers conditional GETs with 304
    (ETag and Last-Modified); routes can be changed between polls, made to fail, or redirect."""

    host: str = "127.0.0.1"
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str], int]] = field(default_factory=list)
    base_url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("GET", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind((self.host, 0))
        await web.SockSite(self._runner, sock).start()
        self.base_url = f"http://{self.host}:{sock.getsockname()[1]}"

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def serve(self, path: str, body: bytes | str, **options: Any) -> str:
        data = body.encode() if isinstance(body, str) else body
        self.routes[path.lstrip("/")] = Route(body=data, **options)
        return self.url(path)

    def redirect(self, path: str, to: str, status: int = 301) -> str:
        self.routes[path.lstrip("/")] = Route(status=status, location=to)
        return self.url(path)

    def fail(self, path: str, status: int = 500, times: int = 1) -> None:
        route = self.routes[path.lstrip("/")]
        route.fail_times, route.fail_status = times, status

    def statuses(self, path: str) -> list[int]:
        return [status for p, _, status in self.requests if p == path.lstrip("/")]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        route = self.routes.get(path)
        status = self._status(route, request)
        self.requests.append((path, dict(request.headers), status))
        if route is None or status >= 400:
            return web.Response(status=status if route else 404, text="error")
        if route.location:
            return web.Response(status=route.status, headers={"Location": route.location})
        etag = '"' + hashlib.sha1(route.body).hexdigest()[:12] + '"'
        headers = {"ETag": etag, "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"}
        if route.cache_control:
            headers["Cache-Control"] = route.cache_control
        if status == 304:
            return web.Response(status=304, headers=headers)
        return web.Response(body=route.body, headers=headers, content_type=route.content_type)

    @staticmethod
    def _status(route: Route | None, request: web.Request) -> int:
        if route is None:
            return 404
        if route.fail_times:
            route.fail_times -= 1
            return route.fail_status
        if route.location:
            return route.status
        etag = '"' + hashlib.sha1(route.body).hexdigest()[:12] + '"'
        if request.headers.get("If-None-Match") == etag:
            return 304
        return 200


def rss(title: str, items: list[dict[str, Any]], ttl: int | None = None) -> str:
    """An RSS 2.0 feed; each item: title, link, guid, text (content:encoded), summary."""
    now = format_datetime(datetime.now(UTC))
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">',
        f"<channel><title>{escape(title)}</title><link>http://example.org/</link>",
        "<description>test feed</description>",
    ]
    if ttl:
        parts.append(f"<ttl>{ttl}</ttl>")
    for item in items:
        parts.append("<item>")
        parts.append(f"<title>{escape(item['title'])}</title>")
        if item.get("link"):
            parts.append(f"<link>{escape(item['link'])}</link>")
        parts.append(
            f"<guid>{escape(item.get('guid') or item.get('link') or item['title'])}</guid>"
        )
        parts.append(f"<pubDate>{item.get('date', now)}</pubDate>")
        if item.get("summary"):
            parts.append(f"<description>{escape(item['summary'])}</description>")
        if item.get("text"):
            html = "".join(f"<p>{escape(p)}</p>" for p in item["text"].split("\n\n"))
            parts.append(f"<content:encoded><![CDATA[{html}]]></content:encoded>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "\n".join(parts)


def alert_settings(tmp_path: Path, **overrides: Any) -> AlertSettings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "alert_rate": 0,
        "alert_chat_interval": 0,
        "alert_topic_threshold": 0.25,
        "feed_poll_interval": 600,
        "fetch_timeout": 3,
        "fetch_allow_private": True,  # the feed server is on 127.0.0.1
    }
    values.update(overrides)
    return AlertSettings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class Stack:
    api: FakeBotAPI
    bot: Bot
    alerts: AlertsService
    index: ArticleIndex
    feeds: FeedServer
    dispatcher: Dispatcher


@asynccontextmanager
async def alerts_stack(
    tmp_path: Path, *, admin_ids: tuple[int, ...] = (), start: bool = True, **overrides: Any
) -> AsyncIterator[Stack]:
    """Everything running: feed server, fake Bot API, polling dispatcher, alerts service
    (its feed poller not looping: tests call ``alerts.poll_now()``)."""
    feeds = FeedServer()
    await feeds.start()
    api = FakeBotAPI()
    await api.start()
    settings = alert_settings(tmp_path, **overrides)
    core = await asyncio.to_thread(
        IndexCore.open,
        IndexSettings(data_dir=settings.data_dir, _env_file=None),  # type: ignore[call-arg]
        HashEmbedder(),
    )
    index = ArticleIndex(core)
    alerts = AlertsService(settings, index, admin_ids=admin_ids)
    bot = Bot(  # HTML by default, as in production (bot.app.create_bot)
        api.token,
        session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url)),
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )
    dispatcher = Dispatcher()
    dispatcher["alerts"] = alerts
    dispatcher.include_routers(*create_routers())
    polling = asyncio.create_task(dispatcher.start_polling(bot, handle_signals=False))
    await api.wait_until(lambda: api.calls_of("getUpdates"), what="polling to start")
    if start:
        await alerts.start(bot, poll_feeds=False)
    try:
        yield Stack(api, bot, alerts, index, feeds, dispatcher)
    finally:
        await dispatcher.stop_polling()
        await polling
        await alerts.stop()
        await index.close()
        await bot.session.close()
        await api.stop()
        await feeds.stop()
