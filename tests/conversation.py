"""Readable end-to-end tests: talk to a polling bot through `FakeBotAPI` like a user would.

    conv = Conversation(api, FakeChat.private(user), user)
    replies = await conv.send("/start")
    assert "Welcome" in replies[0].text
    await conv.press("More results")

Each action pushes an update, waits until the bot has fetched it and its Bot API calls have
settled, and returns the bot's messages sent or edited in this chat meanwhile, as snapshots.
"""

from __future__ import annotations

import copy
import mimetypes
import time
from collections.abc import Callable
from typing import Any

from tests.fake_telegram import Call, FakeBotAPI, FakeChat, FakeMessage, FakeUser

JsonDict = dict[str, Any]


class Conversation:
    """One user talking to the bot in one chat."""

    def __init__(
        self,
        api: FakeBotAPI,
        chat: FakeChat,
        user: FakeUser,
        *,
        quiet: float = 0.15,
        timeout: float = 10.0,
    ) -> None:
        """``quiet``: how long the bot must make no call for its answer to count as complete;
        ``timeout``: the longest an action waits before failing the test."""
        self.api = api
        self.chat = chat
        self.user = user
        self.quiet = quiet
        self.timeout = timeout
        self.replies: list[FakeMessage] = []
        self.errors: list[Call] = []
        self.last_callback_answer: JsonDict | None = None
        self.last_inline_answer: JsonDict | None = None
        api.add_chat(chat)

    @property
    def last_reply(self) -> FakeMessage | None:
        """The last message the latest action returned (None if it returned none)."""
        return self.replies[-1] if self.replies else None

    @property
    def messages(self) -> list[FakeMessage]:
        """The bot's messages currently in the chat, oldest first."""
        return self.api.sent_messages(self.chat.id)

    async def send(
        self,
        text: str,
        *,
        reply_to: int | FakeMessage | None = None,
        thread_id: int | None = None,
        expect_reply: bool = True,
    ) -> list[FakeMessage]:
        """Send a text message; return the bot's messages sent or edited in response.

        With ``expect_reply`` (the default) at least one such message must appear.
        """
        update = self.api.message_update(
            self.chat, self.user, text, reply_to=reply_to, thread_id=thread_id
        )
        return await self._exchange(update, f"message {text!r}", expect_reply)

    async def upload(
        self,
        file_name: str,
        content: bytes,
        caption: str | None = None,
        *,
        mime_type: str | None = None,
        expect_reply: bool = True,
    ) -> list[FakeMessage]:
        """Send a document (downloadable by the bot through getFile); return the response."""
        mime = mime_type or mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        document = self.api.add_file(content, file_name, mime)
        update = self.api.message_update(self.chat, self.user, document=document, caption=caption)
        return await self._exchange(update, f"document {file_name!r}", expect_reply)

    async def press(self, button_text: str) -> list[FakeMessage]:
        """Press a callback button; return the messages sent or edited in response.

        The button is looked up by exact text, else by a unique substring, in the newest
        bot message that has it. The bot must answer the callback query or change a message;
        its answerCallbackQuery parameters are then in `last_callback_answer`.
        """
        message, button = self._find_button(button_text)
        update = self.api.callback_update(self.chat, self.user, message, button["callback_data"])
        query_id = update["callback_query"]["id"]
        replies = await self._exchange(
            update,
            f"press of {button['text']!r}",
            expect_reply=False,
            until=lambda mark: (
                query_id in self.api.callback_answers or bool(self._changes_since(mark))
            ),
        )
        self.last_callback_answer = self.api.callback_answers.get(query_id)
        return replies

    async def inline(self, query: str, offset: str = "") -> list[JsonDict]:
        """Type an inline query; return the results of the bot's answerInlineQuery.

        The whole answer (``next_offset``, ``button``, ...) is in `last_inline_answer`.
        """
        update = self.api.inline_query_update(self.user, query, offset)
        query_id = update["inline_query"]["id"]
        await self._exchange(
            update,
            f"inline query {query!r}",
            expect_reply=False,
            until=lambda mark: query_id in self.api.inline_answers,
        )
        self.last_inline_answer = self.api.inline_answers[query_id]
        return list(self.last_inline_answer["results"])

    async def wait_for(
        self,
        predicate: Callable[[FakeMessage], object],
        timeout: float = 10.0,  # noqa: ASYNC109 - a test helper's deadline, not a request's
    ) -> FakeMessage:
        """Wait until a bot message in the chat satisfies ``predicate`` (e.g. a status message
        edited to its final text by background work); return a snapshot of the newest one."""
        found: list[FakeMessage] = []

        def check() -> bool:
            found[:] = [message for message in self.messages if predicate(message)]
            return bool(found)

        await self.api.wait_until(
            check,
            timeout,
            what=f"a bot message matching the predicate; messages now: {self._describe()}",
        )
        return copy.deepcopy(found[-1])

    # ----------------------------------------------------------------- internals

    async def _exchange(
        self,
        update: JsonDict,
        summary: str,
        expect_reply: bool,
        until: Callable[[int], bool] | None = None,
    ) -> list[FakeMessage]:
        """Push ``update``, wait for the bot to fetch it and settle, return its changes."""
        mark = len(self.api.calls)
        deadline = time.monotonic() + self.timeout
        update_id = self.api.push_update(update)

        def fetched() -> bool:
            if update_id in self.api.dropped_update_ids:
                raise AssertionError(
                    f"the {summary} was dropped: the bot polls with allowed_updates="
                    f"{self.api.allowed_updates}, so no handler is registered for it"
                )
            return update_id in self.api.delivered_update_ids

        await self.api.wait_until(
            fetched,
            self.timeout,
            what=f"the bot to fetch the {summary} (is polling running?)",
        )

        def answered(mark: int) -> bool:
            return not expect_reply or bool(self._changes_since(mark))

        done = until or answered

        def settled() -> bool:
            if time.monotonic() >= deadline:
                return True
            finished = done(mark) or bool(self._failed_since(mark))
            return finished and self.api.is_settled(self.quiet)

        await self.api.wait_until(settled, self.timeout + 1)
        self.errors = self._failed_since(mark)
        if not done(mark):
            problems = "".join(f"\n  failed: {call}" for call in self.errors)
            calls = "".join(
                f"\n  {call}"
                for call in self.api.calls[mark:]
                if call.method != "getUpdates" and call.ok
            )
            raise AssertionError(
                f"no response from the bot to the {summary}"
                f"{problems or ' (no failed calls)'}\ncalls made meanwhile:{calls or ' none'}"
            )
        self.replies = self._changes_since(mark)
        return self.replies

    def _changes_since(self, mark: int) -> list[FakeMessage]:
        """Snapshots of this chat's messages the bot sent or edited since call ``mark``."""
        message_ids: list[int] = []
        for call in self.api.calls[mark:]:
            result = call.result
            if not (isinstance(result, dict) and "message_id" in result and "chat" in result):
                continue
            if result["chat"]["id"] == self.chat.id and result["message_id"] not in message_ids:
                message_ids.append(result["message_id"])
        messages = (self.api.message(self.chat.id, message_id) for message_id in message_ids)
        return [copy.deepcopy(message) for message in messages if message is not None]

    def _failed_since(self, mark: int) -> list[Call]:
        """Calls since ``mark`` that Telegram refused, leaving out scripted failures."""
        return [call for call in self.api.calls[mark:] if not call.ok and not call.scripted]

    def _find_button(self, text: str) -> tuple[FakeMessage, JsonDict]:
        newest_first = self.messages[::-1]
        for match in (lambda label: label == text, lambda label: text in label):
            for message in newest_first:
                buttons = [
                    button
                    for row in message.inline_buttons
                    for button in row
                    if match(button["text"])
                ]
                if len(buttons) > 1 and buttons[0]["text"] != text:
                    labels = [button["text"] for button in buttons]
                    raise AssertionError(f"button text {text!r} is ambiguous: {labels}")
                if buttons:
                    button = buttons[0]
                    if "callback_data" not in button:
                        raise AssertionError(f"button {button['text']!r} is not a callback button")
                    return message, button
        raise AssertionError(f"no button {text!r} in the bot's messages: {self._describe()}")

    def _describe(self) -> str:
        """The newest bot messages, briefly, for failure messages."""
        shown = [
            f"#{message.message_id} {message.text[:60]!r} buttons={message.buttons}"
            for message in self.messages[-5:]
        ]
        return "; ".join(shown) or "none"
