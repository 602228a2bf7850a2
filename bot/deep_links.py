"""Deep links that carry a question: ``https://t.me/<bot>?start=q<base64url of the question>``.

Telegram allows 64 characters of ``[A-Za-z0-9_-]`` in a start payload, so a question of up
to 47 UTF-8 bytes fits. Payloads without the ``q`` prefix are ordinary /start payloads.
"""

from __future__ import annotations

import base64
import binascii

__all__ = ["MAX_PAYLOAD", "decode_question", "encode_question", "question_link"]

MAX_PAYLOAD = 64
_PREFIX = "q"


def encode_question(question: str) -> str | None:
    """The start payload for ``question``, or None when it is too long to fit."""
    encoded = base64.urlsafe_b64encode(question.strip().encode()).decode().rstrip("=")
    payload = _PREFIX + encoded
    return payload if len(payload) <= MAX_PAYLOAD else None


def decode_question(payload: str | None) -> str | None:
    """The question a start payload carries, or None if it carries none."""
    if not payload or not payload.startswith(_PREFIX) or len(payload) > MAX_PAYLOAD:
        return None
    body = payload[len(_PREFIX) :]
    try:
        question = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return question.strip() or None


def question_link(bot_username: str, question: str) -> str | None:
    """A t.me link that opens the bot and asks ``question``; None if it is too long."""
    payload = encode_question(question)
    return f"https://t.me/{bot_username}?start={payload}" if payload else None
