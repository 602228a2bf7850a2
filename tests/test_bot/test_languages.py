"""The bot speaks English, Russian and Azerbaijani: chosen from the user's language_code,
changed with /language, and honest when a question is in a language the model cannot read."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path

import pytest

from bot.alerts.rendering import alert_payload
from bot.app import build_services, create_bot, create_dispatcher
from bot.services import Services
from bot.settings import BotSettings
from bot.storage import BotStore, Delivery
from bot.storage.database import database_url, sqlite_url
from index import ArticleIndex
from tests.conversation import Conversation
from tests.fake_telegram import FakeBotAPI, FakeChat, FakeUser
from tests.test_bot.harness import RunningBot, StartBot

RUSSIAN = FakeUser(id=2001, first_name="Ирина", username="irina", language_code="ru")
AZERBAIJANI = FakeUser(id=2002, first_name="Aysel", username="aysel", language_code="az")
GERMAN = FakeUser(id=2003, first_name="Jonas", username="jonas", language_code="de")
MINES_RU = "Сколько людей пострадало от мин?"


async def test_russian_user_gets_russian_start_and_help(running: RunningBot) -> None:
    """language_code "ru": greeting, /help and the command list are in Russian."""
    conv = running.chat(RUSSIAN)

    [greeting] = await conv.send("/start")
    [help_reply] = await conv.send("/help")

    assert greeting.text.startswith("Здравствуйте, Ирина! Спросите меня")
    assert "Как спрашивать" in help_reply.text and "Команды" in help_reply.text
    assert "/latest — Самые новые статьи" in help_reply.text
    assert "How to ask" not in help_reply.text


async def test_an_unknown_language_code_gets_english(running: RunningBot) -> None:
    """A language the bot does not speak (de) falls back to English."""
    [help_reply] = await running.chat(GERMAN).send("/help")

    assert "How to ask" in help_reply.text


async def test_language_buttons_switch_the_chat_and_the_choice_stays(running: RunningBot) -> None:
    """/language shows a button per language; pressing one redraws the message in it, and the
    chat keeps that language for later messages, whatever the user's language_code."""
    conv = running.chat(RUSSIAN)

    [menu] = await conv.send("/language")
    assert menu.text.startswith("Здесь я говорю по-русски.")
    assert menu.buttons == [["English", "✅ Русский", "Azərbaycanca"]]

    [redrawn] = await conv.press("Azərbaycanca")
    assert redrawn.text.startswith("Burada azərbaycanca danışıram.")
    assert redrawn.buttons == [["English", "Русский", "✅ Azərbaycanca"]]

    [help_reply] = await conv.send("/help")
    assert "Necə soruşmalı" in help_reply.text and "Əmrlər" in help_reply.text
    [not_text] = await conv.send("/nonsense")
    assert not_text.text == "/nonsense əmrini tanımıram. Nə bacardığımı /help göstərir."


async def test_language_command_with_a_code(running: RunningBot) -> None:
    """``/language az`` switches at once; an unknown code is refused in the current language,
    and the private chat's command menu follows the choice."""
    conv = running.chat()

    [refused] = await conv.send("/language xx")
    assert refused.text == "I don't speak “xx”. Choose one of: en, ru, az."

    replies = await conv.send("/language az")
    assert replies[-1].text.startswith("Burada azərbaycanca danışıram.")
    [latest] = await conv.send("/sources")
    assert latest.text.startswith("Mənbələr")
    scope = json.dumps({"type": "chat", "chat_id": conv.chat.id}, sort_keys=True)
    menu = running.api.commands[(scope, "")]
    assert {"command": "help", "description": "Botdan necə istifadə etməli"} in menu


async def test_command_menus_exist_in_every_language(running: RunningBot) -> None:
    """set_my_commands runs per language_code: Telegram shows Russian and Azerbaijani users
    their own menu, everyone else the English one."""
    await running.chat().send("/help")  # start-up, menus included, is over

    def descriptions(language: str) -> dict[str, str]:
        key = (json.dumps({"type": "default"}, sort_keys=True), language)
        return {c["command"]: c["description"] for c in running.api.commands[key]}

    assert descriptions("")["help"] == "How to use this bot"
    assert descriptions("ru")["help"] == "Как пользоваться ботом"
    assert descriptions("az")["help"] == "Botdan necə istifadə etməli"


async def test_russian_question_with_the_english_model_gets_an_honest_reply(
    running: RunningBot,
) -> None:
    """The issue's example: with the English-only model, a Russian question is not searched
    and "found nothing"; the user is told, in Russian, to ask in English."""
    [reply] = await running.chat(RUSSIAN).send(MINES_RU)

    assert reply.text.startswith("Я понимаю вопросы только на английском")
    assert "How many people were hurt by mines?" in reply.text
    assert "ничего не нашлось" not in reply.text


async def test_honest_reply_follows_the_interface_language(running: RunningBot) -> None:
    """An English-speaking user asking in Azerbaijani gets the explanation in English; an
    Azerbaijani user gets it in Azerbaijani."""
    question = "Minalardan neçə nəfər zərər çəkib?"

    [english] = await running.chat().send(question)
    [azerbaijani] = await running.chat(AZERBAIJANI).send(question)

    assert english.text.startswith("I can only understand questions in English")
    assert azerbaijani.text.startswith("Mən yalnız ingilis dilində olan sualları başa düşürəm")


async def test_with_a_multilingual_model_russian_questions_are_searched(
    start_bot: StartBot,
) -> None:
    """EMBEDDING_MULTILINGUAL=true: the Russian question is searched like any other, and the
    answer's own texts (dates, buttons) are Russian."""
    running = await start_bot(embedding_multilingual=True)

    [reply] = await running.chat(RUSSIAN).send(MINES_RU)

    assert reply.text.startswith(f"🔎 {MINES_RU}")
    assert "Azernews · 21 июн. 2022" in reply.text
    assert reply.buttons[-1] == ["Ещё результаты »"]


async def test_inline_query_in_russian_says_english_only(running: RunningBot) -> None:
    """Inline mode gives the same honesty as a button under the empty results."""
    results = await running.chat(RUSSIAN).inline(MINES_RU)

    assert results == []
    answer = running.api.inline_answers
    [only] = answer.values()
    assert only["button"]["text"] == "Я понимаю вопросы только на английском"


async def test_group_language_is_for_group_admins(running: RunningBot) -> None:
    """In a group, /language from a member who is not an admin is refused (in the language
    the member reads) and changes nothing."""
    group = FakeChat.group(title="Newsroom")
    member = running.chat(RUSSIAN, group)
    admin = running.chat(AZERBAIJANI, group)
    running.api.set_member_status(group.id, AZERBAIJANI.id, "creator")

    [refused] = await member.send("/language en")
    assert refused.text == "Язык группы могут менять только её администраторы."

    replies = await admin.send("/language en")
    assert replies[-1].text.startswith("I speak English here.")
    [help_reply] = await member.send("/help")  # the group's choice, not the member's code
    assert "How to ask" in help_reply.text


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(sqlite_url(tmp_path / "bot.sqlite3"))
    return str(database_url(tmp_path, request.getfixturevalue("postgres_url")))


async def test_chats_keep_their_language_on_both_backends(store_url: str) -> None:
    """The chats repository stores the choice (a chat it has not seen yet included), changes
    it, another connection reads it back, and a group's migration carries it over."""
    store = BotStore.from_url(store_url)
    assert await store.chats.language(5) is None
    await store.chats.set_language(5, "ru")  # a chat first seen through /language
    await store.chats.ensure(6)
    await store.chats.set_language(6, "az")
    await store.chats.set_language(6, "en")
    await store.close()

    again = BotStore.from_url(store_url)
    assert (await again.chats.language(5), await again.chats.language(6)) == ("ru", "en")
    assert await again.chats.get(5) is not None  # a whole chat row, with default preferences
    await again.chats.migrate(5, -1005)  # a group that became a supergroup keeps its language
    assert await again.chats.language(-1005) == "ru"
    await again.close()


@asynccontextmanager
async def production_bot(
    api: FakeBotAPI, settings: BotSettings, index: ArticleIndex
) -> AsyncIterator[Services]:
    """The bot as ``python -m bot`` wires it (its own database, alerts), polling ``api``."""
    services = build_services(settings.model_copy(update={"bot_api_url": api.base_url}), index)
    bot = create_bot(services.settings)
    dispatcher = create_dispatcher(services)
    mark = len(api.calls_of("getUpdates"))
    task = asyncio.create_task(dispatcher.start_polling(bot, handle_signals=False))
    await api.wait_until(lambda: len(api.calls_of("getUpdates")) > mark, what="polling")
    try:
        yield services
    finally:
        await dispatcher.stop_polling()
        await task
        await bot.session.close()


async def test_the_choice_survives_a_restart_and_alerts_follow_it(
    api: FakeBotAPI, bot_settings: BotSettings, index: ArticleIndex
) -> None:
    """/language az is kept in the bot's database: after a restart the chat still reads
    Azerbaijani, and alerts to it are rendered in Azerbaijani; a chat that subscribed in
    Russian gets Russian alerts without ever using /language."""
    conv = Conversation(api, FakeChat.private(RUSSIAN), RUSSIAN)
    reader = Conversation(api, FakeChat.private(GERMAN), GERMAN)
    async with production_bot(api, bot_settings, index):
        await conv.send("/language az")
        await reader.send("/language ru")

    async with production_bot(api, bot_settings, index) as services:
        [help_reply] = await conv.send("/help")
        assert "Necə soruşmalı" in help_reply.text
        assert services.alerts is not None and services.alerts.sender is not None
        payload = alert_payload(
            article_id="a1",
            title="Demining in Aghdam",
            url="https://news.example.org/a1",
            outlet="Azernews",
            published=date(2022, 6, 21),
            quote="Over 200 people have become victims of mine explosions.",
            topic="mines",
            source="",
            sub_id=None,
        )
        queued = [Delivery(chat, 0, "a1", None, payload) for chat in (RUSSIAN.id, GERMAN.id)]
        await services.alerts.store.outbox.enqueue(queued)
        services.alerts.sender.wake()
        azerbaijani = await conv.wait_for(lambda m: "Demining in Aghdam" in m.text)
        russian = await reader.wait_for(lambda m: "Demining in Aghdam" in m.text)

    assert "Bunu niyə aldınız: “mines” mövzusuna abunəsiniz" in azerbaijani.text
    assert "Azernews · 21 iyun 2022" in azerbaijani.text
    assert azerbaijani.buttons == [["💬 Bu məqalə barədə soruş", "🔕 “mines” susdur"]]
    assert "Почему вы это получили: вы подписаны на тему «mines»" in russian.text
    assert "Azernews · 21 июня 2022" in russian.text


async def test_a_subscription_keeps_the_language_it_was_made_in(
    api: FakeBotAPI, bot_settings: BotSettings, index: ArticleIndex
) -> None:
    """A Russian user's /subscribe records Russian for the chat, for alerts sent later."""
    conv = Conversation(api, FakeChat.private(RUSSIAN), RUSSIAN)
    async with production_bot(api, bot_settings, index) as services:
        [reply] = await conv.send("/subscribe mines")
        assert reply.text.startswith("✅ Подписка оформлена: на тему «mines».")
        assert services.alerts is not None
        assert await services.alerts.store.chats.language(RUSSIAN.id) == "ru"
