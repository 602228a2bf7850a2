"""The users and Telegram of ``python -m bot bench replicas`` (`bot.scalebench`), one child
process: the test suite's fake Bot API on 127.0.0.1, which posts every update, with its
secret token header, to the replicas in turn, as a load balancer would, and times each
question from the update posted to the sendMessage answering it.

It runs the commands the bench sends on stdin, one JSON line each, and answers each with
one line: ``load`` (users ask, all at once or one at a time; the tally of
`bot.bench_users.tally_replies` and the updates refused) and ``add`` (an admin uploads an
article to replica A, which is looked for on replica B; how long until B finds it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import time
from dataclasses import dataclass
from typing import Any

from bot.bench import FIRST_USER, TOKEN
from bot.bench_users import emit, note_reply, note_typing, tally_replies
from bot.scalebench import ADMIN_ID, ADMINS, PROBE_INTERVAL, SECRET, die_with_parent

__all__ = ["AddTry", "index_passages", "users_side"]

PROBE_USERS = 8_000_000  # the /add probes' user ids start here


def users_side() -> None:
    """The child's entry: serve the fake Bot API, run the commands read on stdin."""
    die_with_parent()
    asyncio.run(_users_side())


@dataclass(frozen=True, slots=True)
class AddTry:
    """One /add try: the uploaded file, the word marking it (in no other article) and a
    question naming that word."""

    file_name: str
    content: bytes
    marker: str
    question: str

    @classmethod
    def number(cls, attempt: int) -> AddTry:
        marker = f"Velmorith{attempt:02d}"
        text = (
            f"{marker} lantern council votes to relight the old harbour\n\n"
            f"The {marker} lantern council voted on Tuesday to relight the old harbour "
            "lanterns after a decade of darkness, its chair said.\n\n"
            "Members agreed that the lanterns would be lit each evening from the first of "
            "March, paid for by a small levy on visiting yachts."
        )
        question = f"What did the {marker} lantern council vote to do?"
        return cls(f"lanterns-{attempt:02d}.txt", text.encode(), marker, question)

    def quoted(self, reply: str) -> bool:
        """Whether an answer quotes this article (past its header, which repeats the
        question)."""
        return self.marker in reply.partition("\n\n")[2]


def index_passages(metrics: str) -> float | None:
    """``newsbot_index_passages`` (the passages in a process's vector index) in a
    Prometheus text page, or None when it is not there."""
    match = re.search(r"^newsbot_index_passages(?:\{[^}]*\})? (\S+)$", metrics, re.MULTILINE)
    return float(match.group(1)) if match else None


async def _users_side() -> None:
    import aiohttp

    from tests.fake_telegram import FakeBotAPI, FakeChat, FakeUser

    class UsersAPI(FakeBotAPI):
        """The fake Bot API, posting each update to a replica in turn and timing its reply."""

        def __init__(self, session: aiohttp.ClientSession) -> None:
            super().__init__(TOKEN)
            self.session = session
            self.targets: list[str] = []
            self.turn = 0
            self.plan: list[list[str]] = []
            self.first_user = FIRST_USER
            self.one_at_a_time = False
            self.posting: set[asyncio.Task[None]] = set()
            self.reset()

        def reset(self) -> None:
            self.delivered: dict[int, float] = {}  # update id -> when it was posted
            self.asked: dict[int, list[int]] = {}
            self.replies: dict[int, list[tuple[float, str]]] = {}
            self.typing: dict[int, list[float]] = {}
            self.refused = 0

        def post(self, update: dict[str, Any], target: str | None = None) -> int:
            """Post ``update`` (queued, so its message is known) to ``target`` or the next
            replica in turn, in the background; its update id."""
            update_id = self.push_update(update)
            queued = self._updates.pop()  # nobody polls: it goes out by webhook
            if target is None:
                target = self.targets[self.turn % len(self.targets)]
                self.turn += 1
            self.delivered[update_id] = time.monotonic()
            task = asyncio.create_task(self._post(target, queued))
            self.posting.add(task)
            task.add_done_callback(self.posting.discard)
            return update_id

        async def _post(self, target: str, update: dict[str, Any]) -> None:
            headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
            try:
                async with self.session.post(target, json=update, headers=headers) as response:
                    if response.status != 200:
                        self.refused += 1
            except aiohttp.ClientError:
                self.refused += 1

        def ask(self, number: int) -> None:
            user = FakeUser(id=self.first_user + number, first_name=f"User {number}")
            question = self.plan[number][len(self.asked.get(user.id, []))]
            update_id = self.post(self.message_update(FakeChat.private(user), user, question))
            self.asked.setdefault(user.id, []).append(update_id)

        def _send_chat_action(self, params: dict[str, Any]) -> bool:
            note_typing(self, params)
            return super()._send_chat_action(params)

        def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
            message = super()._send_message(params)
            number = note_reply(self, params, self.plan, self.first_user)
            if number is not None:
                replies = self.replies[self.first_user + number]
                if len(replies) < len(self.plan[number]):  # the user's next question
                    self.ask(number)
                elif self.one_at_a_time and number + 1 < len(self.plan):  # the next user's
                    self.ask(number + 1)
            return message

        def done(self) -> bool:
            return all(
                len(self.replies.get(self.first_user + number, [])) >= len(questions)
                for number, questions in enumerate(self.plan)
            )

        async def load(self, command: dict[str, Any]) -> dict[str, Any]:
            """Every user asks at once (or, ``one_at_a_time``, each after the previous
            one's last reply); the tally of `bot.bench` and the updates refused."""
            self.reset()
            self.targets, self.plan = command["targets"], command["plan"]
            self.first_user, self.turn = command["first_user"], 0
            self.one_at_a_time = command.get("one_at_a_time", False)
            cpu, sent = time.process_time(), time.monotonic()
            for number in range(1 if self.one_at_a_time else len(self.plan)):
                self.ask(number)
            with contextlib.suppress(AssertionError):
                await self.wait_until(self.done, command["patience"], what="every reply")
            tally = tally_replies(self, sent, time.process_time() - cpu)
            self.plan = []  # late replies start nothing
            return {**tally, "refused": self.refused}

        async def vectors(self, url: str) -> float | None:
            """The passages in a replica's vector index, from its /metrics (None: no
            such gauge there)."""
            with contextlib.suppress(aiohttp.ClientError):
                async with self.session.get(url) as response:
                    if response.status == 200:
                        return index_passages(await response.text())
            return None

        async def add(self, command: dict[str, Any]) -> dict[str, Any]:
            """Upload to replica A; once it reports, ask B every `PROBE_INTERVAL` seconds
            (each time from a new user) until an answer quotes the article, and read B's
            vector index size from its /metrics until it grows."""
            self.reset()
            patience, metrics_at = command["patience"], command["metrics_at"]
            attempt = AddTry.number(command["attempt"])
            admin = FakeUser(id=ADMIN_ID + command["attempt"] % ADMINS, first_name="Admin")
            seen = len(self.replies.get(admin.id, []))
            baseline = await self.vectors(metrics_at)
            outcome: dict[str, Any] = {"report_s": None, "probes": 0, "why": ""}
            outcome |= {"answered_s": None, "vectors_s": None, "vectors_seen": baseline is not None}
            document = self.add_file(attempt.content, attempt.file_name, "text/plain")
            posted = time.monotonic()
            upload = self.message_update(FakeChat.private(admin), admin, document=document)
            self.post(upload, command["upload_to"])
            try:
                await self.wait_until(
                    lambda: len(self.replies.get(admin.id, [])) > seen, patience, what="report"
                )
            except AssertionError:
                return outcome | {"why": f"no report from replica A in {patience:g} s"}
            reported, report = self.replies[admin.id][seen]
            if not report.startswith("Added"):
                return outcome | {"why": f"the upload was not added: {report[:120]}"}
            outcome["report_s"] = reported - posted
            probes: list[int] = []  # the probes' chat ids
            next_user = PROBE_USERS + 1000 * command["attempt"]

            def answered() -> float | None:
                times = [
                    when
                    for chat_id in probes
                    for when, text in self.replies.get(chat_id, [])
                    if attempt.quoted(text)
                ]
                return min(times) if times else None

            async def watch_vectors() -> None:
                while baseline is not None:
                    count = await self.vectors(metrics_at)
                    if count is not None and count > baseline:
                        outcome["vectors_s"] = time.monotonic() - reported
                        return
                    await asyncio.sleep(PROBE_INTERVAL / 2)

            watcher = asyncio.create_task(watch_vectors())
            deadline = reported + patience
            while answered() is None and time.monotonic() < deadline:
                user = FakeUser(id=next_user + len(probes), first_name="Prober")
                probes.append(user.id)
                update = self.message_update(FakeChat.private(user), user, attempt.question)
                self.post(update, command["ask_at"])
                with contextlib.suppress(AssertionError):
                    await self.wait_until(lambda: answered() is not None, PROBE_INTERVAL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watcher, max(deadline - time.monotonic(), 0.1))
            found = answered()
            outcome["answered_s"] = None if found is None else found - reported
            missing = []
            if found is None:
                missing.append("no answer from B quoted it")
            if baseline is not None and outcome["vectors_s"] is None:
                missing.append("B's vector index did not grow")
            return outcome | {
                "probes": len(probes),
                "why": f"{' and '.join(missing)} in {patience:g} s" if missing else "",
            }

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session, UsersAPI(session) as api:
        emit({"base_url": api.base_url})
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            command = json.loads(line)
            if command["cmd"] == "load":
                emit(await api.load(command))
            elif command["cmd"] == "add":
                emit(await api.add(command))
