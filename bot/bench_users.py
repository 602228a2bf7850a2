"""The users' side that both bot benches share (``python -m bot bench`` and ``python -m bot
bench replicas``): the child process running the users and the fake Bot API, spoken to in
JSON lines (`UsersProcess`, `emit`); the questions each user asks (`question_plan`); what
the users saw (`tally_replies`), and the reply figures made of it (`reply_figures`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

__all__ = [
    "ROOT",
    "STARTUP_TIMEOUT",
    "UsersProcess",
    "emit",
    "question_plan",
    "reply_figures",
    "tally_replies",
]

ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT = 120.0  # seconds the users wait for the bot's first getUpdates
# The longest JSON line read from the child: a tally lists every latency (500 users asking
# 6 questions: about 120 kB, above asyncio's default of 64 KiB)
LINE_LIMIT = 64 * 2**20
ANSWER_PREFIX = "🔎"  # bot.rendering.answer_text
NOT_FOUND_PREFIX = "I found nothing"  # bot.rendering.not_found_text


def question_plan(corpus: Sequence[Any], users: int, questions: int) -> list[list[str]]:
    """Each user's ``questions`` questions: BBC headlines, as ``python -m index bench``
    asks them, in turn."""
    from index.bench import _questions as headline_questions

    asked = headline_questions(list(corpus), users * questions)
    return [
        [asked[(u * questions + q) % len(asked)] for q in range(questions)] for u in range(users)
    ]


class UsersProcess:
    """The child process running the users and the fake Bot API, spoken to in JSON lines
    over its pipes; its first line gives the API's base URL."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.base_url = ""

    @classmethod
    async def start(cls, entry: str, first: dict[str, Any] | None = None) -> Self:
        """Run the Python line ``entry`` (from the project root), send it ``first`` if
        given, and read the API's base URL."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            entry,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=LINE_LIMIT,
        )
        users = cls(process)
        try:
            if first is not None:
                await users.send(first)
            users.base_url = (await users.read(STARTUP_TIMEOUT))["base_url"]
        except BaseException:
            await users.close()
            raise
        return users

    async def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        await self.process.stdin.drain()

    async def read(self, seconds: float) -> dict[str, Any]:
        """The child's next line, waited for ``seconds`` at most."""
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), seconds)
        if not line:
            raise RuntimeError("the users' process exited early (see its error above)")
        message: dict[str, Any] = json.loads(line)
        return message

    async def call(self, command: dict[str, Any], seconds: float) -> dict[str, Any]:
        """Send ``command``; its answer, waited for ``seconds`` at most."""
        await self.send(command)
        return await self.read(seconds)

    async def close(self) -> None:
        """Let the child stop its server (its stdin closes), or kill it after a few seconds."""
        if self.process.returncode is None:
            assert self.process.stdin is not None
            with contextlib.suppress(ConnectionError):
                self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), 5.0)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


def emit(message: dict[str, Any]) -> None:
    """In the child: one JSON line to the bench."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def note_typing(api: Any, params: Mapping[str, Any]) -> None:
    """In the child: when the bot sent "typing" to a chat (``api.typing``)."""
    api.typing.setdefault(int(params["chat_id"]), []).append(time.monotonic())


def note_reply(
    api: Any, params: Mapping[str, Any], plan: Sequence[Sequence[str]], first_user: int
) -> int | None:
    """In the child: records a reply (``api.replies``); the number of the user whose
    question was the last one asked and is now answered (None for another reply)."""
    chat_id = int(params["chat_id"])
    replies = api.replies.setdefault(chat_id, [])
    replies.append((time.monotonic(), str(params["text"])))
    number = chat_id - first_user
    answered = 0 <= number < len(plan) and len(replies) == len(api.asked.get(chat_id, []))
    return number if answered else None


def tally_replies(api: Any, sent: float, cpu: float) -> dict[str, Any]:
    """Latencies of the answered questions, reply kinds, duplicates, and the time span.

    ``api`` is the users' fake Bot API: ``asked`` (chat id -> update ids of its questions),
    ``replies`` (chat id -> (when, text)), ``delivered`` (update id -> when the bot got it)
    and ``typing`` (chat id -> when "typing" arrived); ``sent`` is when the first questions
    went out and ``cpu`` the users' CPU seconds meanwhile."""
    latencies: list[float] = []
    to_typing: list[float] = []
    kinds = {"answer": 0, "not_found": 0, "other": 0}
    duplicates = 0
    last = sent
    others: list[str] = []
    for chat_id, update_ids in api.asked.items():
        replies = api.replies.get(chat_id, [])
        duplicates += max(len(replies) - len(update_ids), 0)
        for update_id, (when, text) in zip(update_ids, replies, strict=False):
            delivered = api.delivered.get(update_id, sent)
            latencies.append(when - delivered)
            typing = [t for t in api.typing.get(chat_id, []) if delivered <= t <= when]
            if typing:  # the handler's first call: what came before the search
                to_typing.append(typing[0] - delivered)
            last = max(last, when)
            if text.startswith(ANSWER_PREFIX):
                kinds["answer"] += 1
            elif text.startswith(NOT_FOUND_PREFIX):
                kinds["not_found"] += 1
            else:
                kinds["other"] += 1
                others.append(text[:80])
    return {
        "latencies": latencies,
        "to_typing": to_typing,
        "kinds": kinds,
        "duplicates": duplicates,
        "seconds": last - sent,
        "cpu": cpu,
        "other_samples": others[:3],
    }


def reply_figures(tally: Mapping[str, Any], asked: int, tail: int) -> dict[str, Any]:
    """The figures of the replies to ``asked`` questions in a `tally_replies`, named as the benches'
    results name them: replies by kind, dropped (no reply) and duplicates, the seconds for
    all and questions per second, and the reply latency in ms at p50, p``tail`` and max
    (NaN without replies)."""
    latencies = sorted(tally["latencies"])
    replied = len(latencies)
    seconds = tally["seconds"]
    return {
        "questions": asked,
        "replied": replied,
        "answered": tally["kinds"]["answer"],
        "not_found": tally["kinds"]["not_found"],
        "other": tally["kinds"]["other"],
        "dropped": asked - replied,
        "duplicates": tally["duplicates"],
        "seconds": seconds,
        "questions_per_s": replied / seconds if seconds else 0.0,
        "reply_p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
        f"reply_p{tail}_ms": _percentile_ms(latencies, tail / 100),
        "reply_max_ms": 1000 * latencies[-1] if latencies else float("nan"),
    }


def _percentile_ms(latencies: Sequence[float], share: float) -> float:
    """The latency (seconds, sorted) below which ``share`` of them fall, in ms."""
    if not latencies:
        return float("nan")
    return 1000 * latencies[min(len(latencies) - 1, int(share * len(latencies)))]
