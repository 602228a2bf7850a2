"""Admin commands (users in ADMIN_IDS): /stats, /add URL, file uploads, /remove, /reindex.

The admin filter is set once on the admin router; everyone else reaches the refusal router,
which answers politely and runs nothing."""

from __future__ import annotations

import contextlib
import io
import logging
from functools import partial
from pathlib import PurePath

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import CallbackQuery, Message
from aiogram.utils.formatting import Bold, Code, Text, as_key_value, as_list

from bot.answers import typing
from bot.i18n import N_, current_language, fill, ngettext
from bot.i18n import gettext as _
from bot.jobs import run_reindex
from bot.rendering import clip, html
from bot.services import Services
from bot.settings import BotSettings
from index import ArticleIndex, IngestReport

__all__ = ["DOCUMENT_EXTENSIONS", "IsAdmin", "create_router"]

log = logging.getLogger(__name__)

ADMIN_COMMAND_NAMES = ("stats", "add", "remove", "reindex")
DOCUMENT_EXTENSIONS = (".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl")
TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024  # getFile serves files up to 20 MB
ALREADY_REINDEXING = N_(
    "A reindex is already running; its status message above shows the progress."
)


class IsAdmin(Filter):
    """Passes events from users listed in ADMIN_IDS."""

    async def __call__(self, event: Message | CallbackQuery, settings: BotSettings) -> bool:
        user = event.from_user
        return user is not None and user.id in settings.admin_ids


# ----------------------------------------------------------------------------- texts


def size_text(size: int) -> str:
    """``1.2 MB`` (units in the current language)."""
    if size < 1024:
        return ngettext("{count} byte", "{count} bytes", size).format(count=size)
    value = size / 1024
    for unit in (_("{size} KB"), _("{size} MB")):
        if value < 1024:
            return unit.format(size=f"{value:.1f}")
        value /= 1024
    return _("{size} GB").format(size=f"{value:.1f}")


def duration_text(seconds: float) -> str:
    """``2 d 3 h``, ``4 h 05 min``, ``12 min 30 s`` or ``45 s``."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return _("{days} d {hours} h").format(days=days, hours=hours)
    if hours:
        return _("{hours} h {minutes} min").format(hours=hours, minutes=f"{minutes:02d}")
    if minutes:
        return _("{minutes} min {seconds} s").format(minutes=minutes, seconds=f"{secs:02d}")
    return _("{seconds} s").format(seconds=secs)


def report_text(report: IngestReport) -> Text:
    """What an ingestion added, updated, left unchanged or could not read, and why."""
    lines: list[Text] = []
    changed = ((_("Added: {title}"), report.added), (_("Updated: {title}"), report.updated))
    for template, titles in changed:
        lines += [fill(template, title=Bold(clip(title, 120))) for title in titles[:20]]
    unchanged = _("Already indexed: {title}")
    lines += [fill(unchanged, title=clip(title, 120)) for title in report.unchanged[:20]]
    failed = _("Failed: {name} — {reason}")
    lines += [fill(failed, name=clip(name, 80), reason=reason) for name, reason in report.failed]
    if report.passages:
        indexed = ngettext("{count} passage indexed.", "{count} passages indexed.", report.passages)
        lines.append(Text(indexed.format(count=report.passages)))
    return as_list(*lines) if lines else Text(_("Nothing to add: no articles found."))


async def stats_text(services: Services) -> Text:
    """The /stats answer."""
    stats = await services.index.stats()
    subscribers = await services.count_subscribers() if services.count_subscribers else None
    reindexing = await services.reindex_active()
    last = stats.last_ingest.strftime("%Y-%m-%d %H:%M UTC") if stats.last_ingest else _("never")
    model = _("{model} ({dimension} dimensions)").format(
        model=stats.model, dimension=stats.dimension
    )
    return as_list(
        Bold(_("📊 Statistics")),
        as_key_value(_("Articles"), stats.articles),
        as_key_value(_("Passages"), stats.passages),
        as_key_value(_("Outlets"), stats.outlets),
        as_key_value(_("Index size"), size_text(stats.index_bytes)),
        as_key_value(_("Model"), model),
        as_key_value(_("Last ingest"), last),
        as_key_value(_("Subscribers"), _("n/a") if subscribers is None else subscribers),
        as_key_value(_("Uptime"), duration_text(services.uptime)),
        as_key_value(_("Reindex"), _("running") if reindexing else _("idle")),
    )


# ----------------------------------------------------------------------------- handlers


async def stats(message: Message, services: Services) -> None:
    """/stats: articles, passages, outlets, index size, model, last ingest, uptime."""
    await message.answer(html(await stats_text(services)))


async def add(message: Message, command: CommandObject, bot: Bot, index: ArticleIndex) -> None:
    """/add URL: fetch an article page and ingest it."""
    url = (command.args or "").strip()
    if not url.startswith(("http://", "https://")) or " " in url:
        await message.answer(_("Usage: /add URL (an http:// or https:// article page)."))
        return
    async with typing(bot, message):
        report = await index.ingest([url])
    await message.answer(html(report_text(report)))


async def upload(message: Message, bot: Bot, index: ArticleIndex, settings: BotSettings) -> None:
    """A document sent by an admin: ingest it if its type and size are acceptable."""
    document = message.document
    assert document is not None  # guaranteed by the F.document filter
    name = document.file_name or "upload.txt"
    limit = min(settings.max_input_bytes, TELEGRAM_DOWNLOAD_LIMIT)
    if PurePath(name).suffix.lower() not in DOCUMENT_EXTENSIONS:
        text = fill(
            _("I can ingest these file types: {kinds}. {name} is not one."),
            kinds=" ".join(DOCUMENT_EXTENSIONS),
            name=clip(name, 80),
        )
        await message.answer(html(text))
    elif document.file_size and document.file_size > limit:
        text = fill(
            _(
                "{name} is too large ({size}; the limit is {limit}, set by MAX_INPUT_BYTES "
                "and Telegram's 20 MB download cap)."
            ),
            name=clip(name, 80),
            size=size_text(document.file_size),
            limit=size_text(limit),
        )
        await message.answer(html(text))
    else:
        async with typing(bot, message, "upload_document"):
            data = await bot.download(document, destination=io.BytesIO())
            assert isinstance(data, io.BytesIO)
            report = await index.ingest_document(name, data.getvalue())
        await message.answer(html(report_text(report)))


async def remove(message: Message, command: CommandObject, index: ArticleIndex) -> None:
    """/remove ARTICLE: remove an article (by id or URL) and its passages from search."""
    target = (command.args or "").strip()
    if not target:
        recent = [Text(Code(info.id), " ", clip(info.title, 60)) for info in await index.latest(5)]
        usage = Text(_("Usage: /remove ARTICLE_ID or /remove URL."))
        text = as_list(usage, "", Bold(_("Recent articles")), *recent) if recent else usage
        await message.answer(html(text))
        return
    info = await index.remove(target)
    if info is None:
        text = fill(_("No article has the id or URL {target}."), target=Code(target))
        await message.answer(html(text))
        return
    removed = fill(
        ngettext(
            "Removed {title} and its {count} passage.",
            "Removed {title} and its {count} passages.",
            info.passages,
        ),
        title=Bold(info.title),
        count=info.passages,
    )
    await message.answer(html(removed))


async def reindex(message: Message, services: Services) -> None:
    """/reindex: rebuild in the background (on whichever worker takes the job), editing one
    status message with progress."""
    if await services.reindex_active():
        await message.answer(_(ALREADY_REINDEXING))
        return
    status = await message.answer(_("🔄 Reindexing: starting…"))
    if services.jobs is None:  # no database of the bot's own: here, now
        show = partial(_edit_status, status)
        services.reindex_task = services.spawn(run_reindex(services.index, show), "reindex")
    elif not await services.jobs.request(status.chat.id, status.message_id, current_language()):
        await status.edit_text(_(ALREADY_REINDEXING))  # another replica queued one just now


async def _edit_status(status: Message, text: str) -> None:
    with contextlib.suppress(TelegramBadRequest):  # not modified, or deleted
        await status.edit_text(text)


async def refuse(message: Message) -> None:
    """An admin command from someone who is not an admin: refuse, run nothing."""
    await message.answer(_("Sorry, that command is only for the bot's admins."))


async def refuse_upload(message: Message) -> None:
    """A file from someone who is not an admin, in a private chat."""
    await message.answer(
        _("Only the bot's admins can add articles. Send me your question as a text message.")
    )


def create_router() -> Router:
    """Admin commands for admins; a polite refusal for everyone else."""
    admin = Router(name="admin")
    admin.message.filter(IsAdmin())
    admin.message.register(stats, Command("stats"))
    admin.message.register(add, Command("add"))
    admin.message.register(remove, Command("remove"))
    admin.message.register(reindex, Command("reindex"))
    admin.message.register(upload, F.document, F.chat.type == ChatType.PRIVATE)
    refusal = Router(name="admin-refusal")
    refusal.message.register(refuse, Command(*ADMIN_COMMAND_NAMES))
    refusal.message.register(refuse_upload, F.document, F.chat.type == ChatType.PRIVATE)
    router = Router(name="admin-commands")
    router.include_routers(admin, refusal)
    return router
