"""BOT_TOKEN is checked for the shape Telegram's tokens have, not for a guess at it:
the bot's numeric id, a colon, and a secret in the URL-safe base64 alphabet."""

from __future__ import annotations

import pytest

from bot.settings import SettingsError, load_settings

VALID = [
    "123:abc",
    "7:x",
    "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",  # the shape @BotFather hands out
    "5000000000:AAE-_0123456789abcdefghijklmnopqrstu",  # ids past 32 bits
    "  123456:ABC-DEF\n",  # pasted with spaces around
]
INVALID = [
    "abc",
    "987654",
    "123456:",
    ":AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
    "12a456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
    "-123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
    "123456:AAH dqTcv",
    "123456:AAH/../getMe",
    "123456:AAH?x=1",
    "123456:AAH:more",
    "١٢٣:abc",  # digits, but not ASCII ones
    "123456:ÄÖÜ",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOT_TOKEN", raising=False)


@pytest.mark.parametrize("token", VALID)
def test_tokens_of_telegrams_shape_are_accepted(token: str) -> None:
    settings = load_settings(bot_token=token, _env_file=None)

    assert settings.token == token.strip()


@pytest.mark.parametrize("token", INVALID)
def test_other_tokens_are_refused_in_one_line_without_the_value(token: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(bot_token=token, _env_file=None)

    message = str(refused.value)
    assert message.startswith("BOT_TOKEN is invalid: a token is the bot's numeric id, a colon")
    assert "\n" not in message
    assert token.strip() not in message


def test_a_token_copied_from_an_api_url_is_told_to_drop_bot() -> None:
    with pytest.raises(SettingsError, match="drop the leading 'bot'"):
        load_settings(bot_token="bot123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", _env_file=None)
