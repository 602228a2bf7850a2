"""The webhook endpoint: the secret token first, then the body must be a Telegram Update.

aiogram's `SimpleRequestHandler` parses the body inside the request (malformed JSON: a 500
and a traceback) or inside a background task (valid JSON of the wrong shape: 200, then
"Task exception was never retrieved"). `UpdateRequestHandler` checks the body before
answering: anything that is not an Update gets 400 and one warning line; an Update is
answered 200 once it has been handled (a failure is logged), so that Telegram sends it
again, to another replica behind the load balancer, when this process dies while handling
it. An update still running after ``ACK_WITHIN`` seconds (a long /add) is answered then and
finishes in the background, before Telegram's own timeout would make it send it twice.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiogram import Bot
from aiogram.methods import TelegramMethod
from aiogram.types import Update
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from bot.metrics import mark_received

__all__ = ["SECRET_HEADER", "UpdateRequestHandler"]

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
NOT_AN_UPDATE = "Bad Request: the body is not a Telegram Update"
ACK_WITHIN = 25.0  # seconds: longest wait for an update's handling before answering 200


class UpdateRequestHandler(SimpleRequestHandler):
    """A `SimpleRequestHandler` that refuses bodies that are not an Update with 400."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, request: web.Request) -> web.Response:
        """401 without the secret, 400 for a body that is not an Update, else 200."""
        bot = await self.resolve_bot(request)
        if not self.verify_secret(request.headers.get(SECRET_HEADER, ""), bot):
            return web.Response(body="Unauthorized", status=401)
        try:
            payload = bot.session.json_loads(await request.read())
            update = Update.model_validate(payload, context={"bot": bot})
        except (ValueError, TypeError, RecursionError) as error:  # JSON, UTF-8, pydantic
            reason = " ".join(str(error).split())[:200] or type(error).__name__
            log.warning("Webhook request refused (400): the body is not an Update (%s)", reason)
            return web.Response(status=400, text=NOT_AN_UPDATE)
        mark_received()  # the answer's time starts here (the task inherits the mark)
        task = asyncio.create_task(self._feed(bot, update), name=f"update-{update.update_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        # Not cancelled if the request is (the client went away): the update still finishes
        await asyncio.wait({task}, timeout=ACK_WITHIN)
        return web.json_response({})

    __call__ = handle

    async def _feed(self, bot: Bot, update: Update) -> None:
        try:
            result = await self.dispatcher.feed_update(bot, update, **self.data)
            if isinstance(result, TelegramMethod):
                await self.dispatcher.silent_call_request(bot, result)
        except Exception:  # the error handlers let it through: log it, never lose it
            log.exception("Update %s failed", update.update_id)
