"""/subscribe, /subscriptions, /unsubscribe, delivery preferences (/alerts, /quiet,
/timezone) and the buttons under alerts (ask about the article, mute the topic).

In groups only the group's administrators may change what the group receives; forum
topics get the alerts of the subscriptions made in them.
"""

from __future__ import annotations

import re
from typing import Any

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject, Filter
from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    CallbackQuery,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from aiogram.utils.formatting import BlockQuote, Bold, Text, TextLink, as_list
from aiogram.utils.i18n import I18n
from pydantic import Field

from bot.alerts.rendering import AlertAction
from bot.alerts.service import SUBSCRIPTIONS_PER_CHAT, AlertsService
from bot.handlers.buttons import OnVisibleMessage
from bot.i18n import N_, ChatLanguages, fill, ngettext
from bot.i18n import gettext as _
from bot.rendering import clip
from bot.storage import ChatPrefs, Subscription, SubscriptionLimitError
from index import SearchFilters

__all__ = ["ManagesChat", "SubAction", "create_router"]

MAX_TOPIC_CHARS = 100
MAX_OUTLET_CHARS = 60
CALLBACK_TEXT_LIMIT = 200  # Telegram's limit for answerCallbackQuery texts
SUBSCRIBE_USAGE = N_(
    "Use /subscribe (every article), /subscribe TOPIC, /subscribe source:OUTLET or both, "
    'with one source (quote names with spaces: source:"Daily Test").'
)
_SOURCE = re.compile(r'source:(?:"([^"]+)"|(\S+))', re.IGNORECASE)
_SOURCE_WORD = re.compile(r"source:", re.IGNORECASE)
_HOUR = re.compile(r"^(\d{1,2})(?::00)?$")
_QUIET = re.compile(r"^(\d{1,2})(?::00)?\s*-\s*(\d{1,2})(?::00)?$")
_OFFSET = re.compile(r"^(?:utc|gmt)?\s*([+-])?(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)
_ZONE_MINUTES = {0, 15, 30, 45}  # every time zone in use is offset by whole quarter hours
ADMIN_STATUSES = {"creator", "administrator"}
NOT_ADMIN = N_("Only this group's admins can change its subscriptions.")
MANAGE_COMMANDS = ("subscribe", "unsubscribe", "alerts", "quiet", "timezone")
MAX_ROW_ID = 2**63 - 1  # SQLite's largest integer: a larger id in button data is forged


class SubAction(CallbackData, prefix="sub"):
    """Buttons of /subscriptions and /unsubscribe: ``rm`` one, ``all`` confirmed, ``keep``."""

    action: str
    id: int = Field(0, ge=0, le=MAX_ROW_ID)


class ManagesChat(Filter):
    """Private chats: the user. Groups: the group's administrators (asked via getChatMember),
    including an anonymous admin posting as the group."""

    async def __call__(self, event: Message | CallbackQuery, bot: Bot) -> bool:
        message = event if isinstance(event, Message) else event.message
        if message is None or message.chat.type == ChatType.PRIVATE:
            return True
        if (
            isinstance(event, Message)
            and event.sender_chat
            and event.sender_chat.id == event.chat.id
        ):
            return True
        if event.from_user is None:
            return False
        try:
            member = await bot.get_chat_member(message.chat.id, event.from_user.id)
        except TelegramBadRequest:  # a chat the bot is not in (a forged button press)
            return False
        return member.status in ADMIN_STATUSES


def _thread(message: Message) -> int:
    return message.message_thread_id or 0 if message.is_topic_message else 0


async def subscribe(
    message: Message,
    command: CommandObject,
    alerts: AlertsService,
    languages: ChatLanguages | None = None,
    i18n: I18n | None = None,
) -> None:
    """Subscribe this chat (or forum topic) to everything, a topic, an outlet, or both.
    Alerts come in the language the chat subscribed in, until /language changes it."""
    parsed = _parse_subscription(command.args or "")
    if isinstance(parsed, str):
        await message.answer(**Text(parsed).as_kwargs())
        return
    topic, outlet = parsed
    await alerts.ensure_chat(message.chat.id, message.chat.type, message.chat.title)
    if languages and i18n and await languages.get(message.chat.id) is None:
        await languages.set(message.chat.id, i18n.current_locale)
    user_id = message.from_user.id if message.from_user else None
    try:
        result = await alerts.subscribe(message.chat.id, _thread(message), topic, outlet, user_id)
    except SubscriptionLimitError:
        await message.answer(
            _(
                "This chat already has {limit} subscriptions, the most I keep. "
                "Remove one in /subscriptions first."
            ).format(limit=SUBSCRIPTIONS_PER_CHAT)
        )
        return
    what = describe(result.subscription)
    head = _("✅ Subscribed: {what}.") if result.created else _("You already follow {what}.")
    lines: list[Any] = [Bold(head.format(what=what))]
    if not result.known_outlet:
        lines.append(
            _("No article from “{outlet}” yet: check the name with /sources.").format(outlet=outlet)
        )
    prefs = await alerts.prefs(message.chat.id)
    lines += [
        _("Delivery: {prefs}.").format(prefs=_describe_prefs(prefs)),
        _("Manage with /subscriptions, /alerts and /quiet."),
    ]
    await message.answer(**as_list(*lines).as_kwargs())


def _parse_subscription(args: str) -> tuple[str, str] | str:
    """(topic, outlet) of /subscribe's arguments, or what to tell the user instead."""
    sources = _SOURCE_WORD.findall(args)
    found = _SOURCE.search(args)
    outlet = (found.group(1) or found.group(2)).strip().strip('"').strip() if found else ""
    if len(sources) > 1 or (sources and not outlet):
        return _(SUBSCRIBE_USAGE)
    topic = " ".join(_SOURCE.sub(" ", args).split())
    if len(topic) > MAX_TOPIC_CHARS:
        return _("That topic is too long: describe it in at most {limit} characters.").format(
            limit=MAX_TOPIC_CHARS
        )
    if len(outlet) > MAX_OUTLET_CHARS:
        return _("That source name is too long: at most {limit} characters (see /sources).").format(
            limit=MAX_OUTLET_CHARS
        )
    return topic, outlet


def describe(sub: Subscription) -> str:
    """How a subscription reads in lists: every new article / about X / from Y / both."""
    if sub.topic and sub.outlet:
        return _("about “{topic}” from {outlet}").format(topic=sub.topic, outlet=sub.outlet)
    if sub.topic:
        return _("about “{topic}”").format(topic=sub.topic)
    if sub.outlet:
        return _("from {outlet}").format(outlet=sub.outlet)
    return _("every new article")


async def list_subscriptions(message: Message, alerts: AlertsService) -> None:
    """The chat's subscriptions, with a button to remove each."""
    subs = await alerts.subscriptions(message.chat.id)
    await message.answer(**_list_content(subs))


def _list_content(subs: list[Subscription]) -> dict[str, Any]:
    if not subs:
        return Text(
            _(
                "No subscriptions here. Try /subscribe, /subscribe climate change "
                "or /subscribe source:BBC."
            )
        ).as_kwargs()
    lines: list[Text] = [Bold(_("Subscriptions:"))]
    rows = []
    # SUBSCRIPTIONS_PER_CHAT entries of ~190 characters at most: one message, 20 buttons
    for number, sub in enumerate(subs[:SUBSCRIPTIONS_PER_CHAT], start=1):
        what = clip(describe(sub), 160)
        if sub.muted and sub.thread_id:
            line = _("{number}. {what} (muted) · topic {thread}")
        elif sub.muted:
            line = _("{number}. {what} (muted)")
        elif sub.thread_id:
            line = _("{number}. {what} · topic {thread}")
        else:
            line = "{number}. {what}"
        lines.append(Text(line.format(number=number, what=what, thread=sub.thread_id)))
        label = clip(_("✖ Remove {number}: {what}").format(number=number, what=describe(sub)), 48)
        rows.append(
            [
                InlineKeyboardButton(
                    text=label, callback_data=SubAction(action="rm", id=sub.id).pack()
                )
            ]
        )
    if len(subs) > SUBSCRIPTIONS_PER_CHAT:
        lines.append(Text(_("…and {count} more.").format(count=len(subs) - SUBSCRIPTIONS_PER_CHAT)))
    return {
        **as_list(*lines).as_kwargs(),
        "reply_markup": InlineKeyboardMarkup(inline_keyboard=rows),
    }


async def remove_one(
    query: CallbackQuery, message: Message, callback_data: SubAction, alerts: AlertsService
) -> None:
    """The remove button of /subscriptions: remove it and refresh the list."""
    removed = await alerts.unsubscribe(message.chat.id, callback_data.id)
    subs = await alerts.subscriptions(message.chat.id)
    await message.edit_text(**_list_content(subs))
    await query.answer(_("Removed.") if removed else _("Already removed."))


async def unsubscribe(message: Message, alerts: AlertsService) -> None:
    """Ask for confirmation before removing every subscription of the chat."""
    subs = await alerts.subscriptions(message.chat.id)
    if not subs:
        await message.answer(_("There is nothing to unsubscribe from here."))
        return
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("Yes, remove all"), callback_data=SubAction(action="all").pack()
                ),
                InlineKeyboardButton(
                    text=_("Cancel"), callback_data=SubAction(action="keep").pack()
                ),
            ]
        ]
    )
    question = ngettext(
        "Remove all {count} subscription of this chat?",
        "Remove all {count} subscriptions of this chat?",
        len(subs),
    )
    await message.answer(question.format(count=len(subs)), reply_markup=keyboard)


async def confirm_unsubscribe(
    query: CallbackQuery, message: Message, callback_data: SubAction, alerts: AlertsService
) -> None:
    """The answer to the /unsubscribe confirmation."""
    if callback_data.action == "all":
        removed = await alerts.unsubscribe(message.chat.id)
        done = ngettext(
            "Unsubscribed: {count} subscription removed. /subscribe to start again.",
            "Unsubscribed: {count} subscriptions removed. /subscribe to start again.",
            removed,
        )
        await message.edit_text(done.format(count=removed))
    else:
        await message.edit_text(_("Kept your subscriptions."))
    await query.answer()


async def alert_mode(message: Message, command: CommandObject, alerts: AlertsService) -> None:
    """/alerts: show, or choose instant alerts or a daily digest at an hour."""
    words = (command.args or "").lower().split()
    await alerts.ensure_chat(message.chat.id, message.chat.type, message.chat.title)
    if not words:
        prefs = await alerts.prefs(message.chat.id)
        await message.answer(
            _(
                "Delivery: {prefs}.\nChange with "
                "/alerts instant or /alerts digest 8 (hour, your time)."
            ).format(prefs=_describe_prefs(prefs))
        )
        return
    hour = _HOUR.match(words[1]) if len(words) == 2 else None
    if words == ["instant"]:
        prefs = await alerts.set_prefs(message.chat.id, mode="instant")
    elif words[0] == "digest" and (len(words) == 1 or (hour and int(hour.group(1)) < 24)):
        digest_hour = int(hour.group(1)) if hour else 8
        prefs = await alerts.set_prefs(message.chat.id, mode="digest", digest_hour=digest_hour)
    else:
        await message.answer(_("Use /alerts instant, or /alerts digest HH (0-23, your time)."))
        return
    await message.answer(_("✅ Delivery: {prefs}.").format(prefs=_describe_prefs(prefs)))


async def quiet_hours(message: Message, command: CommandObject, alerts: AlertsService) -> None:
    """/quiet 22-7 holds alerts during those hours; /quiet off delivers at any time."""
    args = (command.args or "").strip().lower()
    await alerts.ensure_chat(message.chat.id, message.chat.type, message.chat.title)
    span = _QUIET.match(args)
    if args == "off":
        prefs = await alerts.set_prefs(message.chat.id, quiet_start=None, quiet_end=None)
    elif (
        span
        and int(span.group(1)) < 24
        and int(span.group(2)) < 24
        and span.group(1) != span.group(2)
    ):
        prefs = await alerts.set_prefs(
            message.chat.id, quiet_start=int(span.group(1)), quiet_end=int(span.group(2))
        )
    else:
        await message.answer(_("Use /quiet 22-7 (hours, your time) or /quiet off."))
        return
    await message.answer(_("✅ Delivery: {prefs}.").format(prefs=_describe_prefs(prefs)))


async def timezone(message: Message, command: CommandObject, alerts: AlertsService) -> None:
    """/timezone +2 (or -5:30, UTC+3): the clock used for digests and quiet hours."""
    found = _OFFSET.match((command.args or "").strip())
    minutes = None
    if found:
        minutes = int(found.group(2)) * 60 + int(found.group(3) or 0)
        minutes = -minutes if found.group(1) == "-" else minutes
    if found and int(found.group(3) or 0) not in _ZONE_MINUTES:
        await message.answer(
            _(
                "Time zone offsets have minutes 00, 15, 30 or 45: e.g. /timezone +5:30 "
                "or /timezone +5:45."
            )
        )
        return
    if minutes is None or not -12 * 60 <= minutes <= 14 * 60:
        await message.answer(
            _("Use /timezone +2, /timezone -5:30 or /timezone 0 (offset from UTC).")
        )
        return
    await alerts.ensure_chat(message.chat.id, message.chat.type, message.chat.title)
    prefs = await alerts.set_prefs(message.chat.id, tz_minutes=minutes)
    await message.answer(
        _("✅ Time zone {zone}. Delivery: {prefs}.").format(
            zone=_zone(minutes)[1:-1], prefs=_describe_prefs(prefs)
        )
    )


async def mute(
    query: CallbackQuery, message: Message, callback_data: AlertAction, alerts: AlertsService
) -> None:
    """The mute button under an alert: stop alerts of that subscription."""
    sub = await alerts.mute(message.chat.id, callback_data.sub)
    if sub is None:
        await query.answer(_("That subscription no longer exists."))
        return
    resume = f"/subscribe {sub.topic}" if sub.topic else "/subscribe"
    if sub.outlet:
        resume += f' source:"{sub.outlet}"' if " " in sub.outlet else f" source:{sub.outlet}"
    text = _("Muted: {what}. {command} resumes it.").format(what=describe(sub), command=resume)
    if len(text) > CALLBACK_TEXT_LIMIT:
        text = _("Muted: {what} (subscribe again to resume it).").format(
            what=clip(describe(sub), 120)
        )
    await query.answer(clip(text, CALLBACK_TEXT_LIMIT), show_alert=True)


async def ask_about(
    query: CallbackQuery, message: Message, callback_data: AlertAction, alerts: AlertsService
) -> None:
    """The ask button under an alert: prompt for a question about that article."""
    article = await alerts.index.article(callback_data.article)
    if article is None:
        await query.answer(_("That article is no longer in my index."), show_alert=True)
        return
    prompt = await message.answer(
        **fill(
            _(
                "What would you like to know about “{title}”? "
                "Reply to this message with your question."
            ),
            title=Bold(article.title),
        ).as_kwargs(),
        reply_markup=ForceReply(input_field_placeholder=_("Your question about this article")),
    )
    await alerts.add_ask_prompt(prompt.chat.id, prompt.message_id, article.id)
    await query.answer()


class AnswersAskPrompt(Filter):
    """A reply to an "ask about this article" prompt; gives the handler ``article_id``."""

    async def __call__(self, message: Message, alerts: AlertsService) -> bool | dict[str, Any]:
        replied = message.reply_to_message
        if replied is None or not message.text:
            return False
        article_id = await alerts.ask_prompt(message.chat.id, replied.message_id)
        return {"article_id": article_id} if article_id else False


async def answer_about_article(message: Message, article_id: str, alerts: AlertsService) -> None:
    """Answer a question about one article with its best matching passages."""
    article = await alerts.index.article(article_id)
    if article is None:
        await message.answer(_("That article is no longer in my index."))
        return
    filters = SearchFilters(
        outlets=(article.outlet,) if article.outlet else (),
        since=article.published,
        until=article.published,
    )
    result = await alerts.index.search(message.text or "", k=50, filters=filters)
    hits = [hit for hit in result.hits if hit.article_id == article_id][:2]
    headline = TextLink(article.title, url=article.url) if article.url else Bold(article.title)
    if not hits:
        await message.answer(
            **fill(
                _("I found no answer to that in {headline}. Try other words, or read it in full."),
                headline=headline,
            ).as_kwargs()
        )
        return
    parts: list[Any] = []
    for hit in hits:
        start, end = hit.quote_span
        parts += [
            BlockQuote(hit.passage[:start], Bold(hit.passage[start:end]), hit.passage[end:]),
            "\n",
        ]
    await message.answer(**Text(*parts, fill(_("From {headline}"), headline=headline)).as_kwargs())


async def refuse(event: Message | CallbackQuery) -> None:
    """A group member who is not an admin tried to change the group's subscriptions."""
    if isinstance(event, CallbackQuery):
        await event.answer(_(NOT_ADMIN), show_alert=True)
    else:
        await event.answer(_(NOT_ADMIN))


def _describe_prefs(prefs: ChatPrefs) -> str:
    zone = _zone(prefs.tz_minutes)
    if prefs.mode == "digest":
        return _("daily digest at {hour}:00 {zone}").format(
            hour=f"{prefs.digest_hour:02d}", zone=zone
        )
    if prefs.quiet_start is not None and prefs.quiet_end is not None:
        return _("instant alerts, quiet {start}:00-{end}:00 {zone}").format(
            start=f"{prefs.quiet_start:02d}", end=f"{prefs.quiet_end:02d}", zone=zone
        )
    return _("instant alerts")


def _zone(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    return f"(UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d})"


def create_router() -> Router:
    """Subscriptions, delivery preferences and alert buttons; group changes need an admin."""
    router = Router(name="subscriptions")
    manage = ManagesChat()
    router.message.register(subscribe, Command("subscribe"), manage)
    router.message.register(unsubscribe, Command("unsubscribe"), manage)
    router.message.register(alert_mode, Command("alerts"), manage)
    router.message.register(quiet_hours, Command("quiet"), manage)
    router.message.register(timezone, Command("timezone"), manage)
    router.message.register(refuse, Command(*MANAGE_COMMANDS))
    router.message.register(list_subscriptions, Command("subscriptions"))
    router.message.register(answer_about_article, AnswersAskPrompt(), F.text)
    # buttons work on messages the bot can see; other presses end at bot.handlers.buttons
    router.callback_query.filter(OnVisibleMessage())
    muting = AlertAction.filter((F.action == "mute") & (F.sub >= 0) & (F.sub <= MAX_ROW_ID))
    router.callback_query.register(remove_one, SubAction.filter(F.action == "rm"), manage)
    router.callback_query.register(
        confirm_unsubscribe, SubAction.filter(F.action.in_({"all", "keep"})), manage
    )
    router.callback_query.register(mute, muting, manage)
    router.callback_query.register(ask_about, AlertAction.filter(F.action == "ask"))
    router.callback_query.register(refuse, SubAction.filter(F.action.in_({"rm", "all", "keep"})))
    router.callback_query.register(refuse, muting)
    return router
