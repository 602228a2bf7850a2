"""Groups: the bot answers /ask, mentions and replies to itself, and nothing else;
in forum topics it answers in the same topic."""

from __future__ import annotations

from tests.fake_telegram import FakeChat
from tests.test_bot.harness import OTHER, USER, RunningBot

GROUP = FakeChat.supergroup()
FORUM = FakeChat.supergroup(id=-1001000000077, title="News forum", is_forum=True)


async def test_plain_group_chatter_is_ignored(running: RunningBot) -> None:
    conv = running.chat(USER, GROUP)

    assert await conv.send("the volcano erupted again, wow", expect_reply=False) == []
    assert await conv.send("/frobnicate", expect_reply=False) == []

    assert conv.messages == []
    assert running.api.calls_of("sendChatAction") == []


async def test_ask_command_in_a_group_replies_to_the_asker(running: RunningBot) -> None:
    conv = running.chat(USER, GROUP)

    [answer] = await conv.send("/ask@newsbot_test who won the cup final?")

    assert answer.reply_to is not None and answer.reply_to.sender.id == USER.id
    assert "Cup final won on penalties" in answer.text


async def test_a_mention_is_a_question(running: RunningBot) -> None:
    conv = running.chat(USER, FakeChat.group())

    [answer] = await conv.send("@newsbot_test did the central bank raise rates?")

    assert answer.text.startswith("🔎 did the central bank raise rates?")
    assert "Central bank raises interest rates" in answer.text


async def test_a_mention_of_someone_else_is_ignored(running: RunningBot) -> None:
    conv = running.chat(USER, GROUP)

    assert await conv.send("@bob did the central bank raise rates?", expect_reply=False) == []


async def test_a_reply_to_the_bot_is_a_question(running: RunningBot) -> None:
    conv = running.chat(USER, GROUP)
    [answer] = await conv.send("/ask volcano")
    other = running.chat(OTHER, GROUP)

    [follow_up] = await other.send("and what about interest rates?", reply_to=answer)

    assert follow_up.reply_to is not None and follow_up.reply_to.sender.id == OTHER.id
    assert "Central bank raises interest rates" in follow_up.text


async def test_forum_topics_get_answers_in_the_same_topic(running: RunningBot) -> None:
    conv = running.chat(USER, FORUM)

    [answer] = await conv.send("/ask volcano eruption", thread_id=77)

    assert answer.thread_id == 77
    [typing] = running.api.calls_of("sendChatAction")
    assert typing.params["message_thread_id"] == 77
    [page] = [m for m in await conv.press("More results") if m.message_id != answer.message_id]
    assert page.thread_id == 77
