"""Polling feeds inside the bot: schedule, fetch, turn entries into articles, index them,
and queue alerts for the subscriptions they match.

Each feed keeps its own schedule: the configured interval, raised when the feed's ``<ttl>``
or ``Cache-Control: max-age`` asks for more; conditional GETs (ETag, Last-Modified) make
unchanged feeds cheap; errors back off exponentially and, after ``feed_max_failures`` in a
row, pause the feed and tell the admins why. The first successful poll of a feed indexes
its backlog without alerting anyone.

Any number of workers may poll: each claims a due feed before fetching it (a lease in the
feeds table, renewed while it polls), so each feed is fetched by one worker at a time, and
new stories are deduplicated and indexed by one worker at a time (a database-wide lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from bot.alerts.matching import article_passages, match_subscriptions
from bot.alerts.rendering import alert_payload
from bot.alerts.settings import AlertSettings
from bot.feeds.dedupe import content_hash, minhash, most_similar
from bot.feeds.errors import FeedError
from bot.feeds.fetch import Fetcher
from bot.feeds.parse import FeedEntry, parse_feed, published_date
from bot.i18n import N_
from bot.metrics import FEED_POLLS
from bot.storage import BotStore, Delivery, FeedRow, Story
from bot.storage.base import new_owner
from index import Article, ArticleIndex, InputError, parsing_pool
from index.formats import make_article, parse

__all__ = ["FeedPoller", "PollReport"]

log = logging.getLogger(__name__)
DUPLICATE_WINDOW = 7 * 86400  # compare new stories with those of the last week
PAGE_FETCHES = 4  # teaser pages fetched at once per feed
# Sent to each admin in the language they chose (rendered when sent: bot.alerts.rendering)
FEED_PAUSED = N_(
    "⏸ Feed paused: {url}\nFailures in a row: {failures}\nLast error: {reason}\n"
    "Fix it, then resume it with /feeds add {url}"
)
FEEDS_AT_ONCE = 4  # feeds one worker polls at the same time
FEED_LEASE = 60.0  # seconds a claim on a feed lasts unless renewed
CLAIM_WAIT = 0.5  # seconds between looks while another worker polls a feed


@dataclass
class PollReport:
    """What one poll of one feed did."""

    url: str
    status: str  # "new", "not modified", "error", "paused"
    entries: int = 0
    added: list[str] = field(default_factory=list)  # titles of new articles indexed
    duplicates: list[str] = field(default_factory=list)
    alerts: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Candidate:
    entry: FeedEntry
    article: Article
    story: Story
    fresh: bool


class FeedPoller:
    """Polls due feeds; ``run()`` loops, ``poll_due()`` / ``poll(feed)`` poll once."""

    def __init__(
        self,
        store: BotStore,
        index: ArticleIndex,
        fetcher: Fetcher,
        settings: AlertSettings,
        *,
        on_alerts: Callable[[], None] = lambda: None,
        notify_admins: Callable[[str, dict[str, str | int]], Awaitable[None]] | None = None,
        owner: str | None = None,
        lease: float = FEED_LEASE,
    ) -> None:
        self.store = store
        self.owner = owner or new_owner()  # this worker's name on the feeds it claims
        self.lease = lease
        self.index = index
        self.fetcher = fetcher
        self.settings = settings
        self.on_alerts = on_alerts
        self.notify_admins = notify_admins
        self.threshold = settings.topic_threshold(index.core.embedder.name)
        self._wake = asyncio.Event()
        self._stopping = False
        self._ingest_lock = asyncio.Lock()  # one poll at a time writes articles and stories

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Poll feeds as they fall due until stopped."""
        while not self._stopping:
            self._wake.clear()
            try:
                await self.poll_due()
            except Exception:
                log.exception("Feed polling failed; trying again shortly")
            now = self.store.clock()
            upcoming = await self.store.feeds.next_poll_time()
            wait = (now + 60 if upcoming is None else upcoming) - now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(max(wait, 0.05), 60.0))

    async def poll_due(self) -> list[PollReport]:
        """Poll every feed whose time has come and that no other worker is polling, a few
        at a time; each is claimed first (and released after)."""
        reports: list[PollReport] = []
        taken: set[int] = set()  # polled in this round: not again, whatever happened

        async def take_turns() -> None:
            while not self._stopping:
                feed = await self.store.feeds.claim_due(
                    owner=self.owner, lease=self.lease, skip=taken
                )
                if feed is None:
                    return
                taken.add(feed.id)
                reports.append(await self._poll_claimed(feed))

        keeper = asyncio.create_task(self._keep_leases())
        try:
            await asyncio.gather(*(take_turns() for _ in range(FEEDS_AT_ONCE)))
        finally:
            keeper.cancel()
        return reports

    async def poll_one(self, feed_id: int, patience: float = 2 * FEED_LEASE) -> PollReport | None:
        """Poll one feed now, due or not (after /feeds add); if another worker is polling
        it, wait for that poll to end first (up to ``patience`` seconds). None if the feed
        is gone, or still being polled after that."""
        deadline = self.store.clock() + patience
        while (
            feed := await self.store.feeds.claim(feed_id, owner=self.owner, lease=self.lease)
        ) is None:
            if await self.store.feeds.get(feed_id) is None or self.store.clock() > deadline:
                return None
            await asyncio.sleep(CLAIM_WAIT)
        keeper = asyncio.create_task(self._keep_leases())
        try:
            return await self._poll_claimed(feed)
        finally:
            keeper.cancel()

    async def _poll_claimed(self, feed: FeedRow) -> PollReport:
        try:
            return await self.poll(feed)
        finally:
            await self.store.feeds.release(feed.id, self.owner)

    async def _keep_leases(self) -> None:
        """Renew this worker's claims on the feeds it is polling."""
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                await self.store.feeds.renew(self.owner, self.lease)
            except Exception:
                log.exception("Renewing the feed claims failed; trying again")

    async def poll(self, feed: FeedRow) -> PollReport:
        """Fetch one feed and process what is new in it (counted in newsbot_feed_polls_total)."""
        try:
            report = await self._poll(feed)
        except Exception:
            FEED_POLLS.labels(result="error").inc()
            raise
        FEED_POLLS.labels(result=report.status.replace(" ", "_")).inc()
        return report

    async def _poll(self, feed: FeedRow) -> PollReport:
        report = PollReport(feed.url, "new")
        try:
            result = await self.fetcher.get(
                feed.url, etag=feed.etag, last_modified=feed.last_modified
            )
            interval, asked = self._interval(result.max_age, None)
            changes: dict[str, object] = {
                "etag": result.etag,
                "last_modified": result.last_modified,
                "last_success_at": self.store.clock(),
                "failures": 0,
                "last_error": None,
                "min_interval": asked,
                "next_poll_at": self.store.clock() + interval,
            }
            if (
                result.moved_permanently
                and result.url != feed.url
                and await self.store.feeds.by_url(result.url) is None
            ):
                log.info("Feed %s moved permanently to %s", feed.url, result.url)
                changes["url"] = result.url
            if result.not_modified:
                report.status = "not modified"
                await self.store.feeds.update(feed.id, **changes)
                return report
            try:  # in a child process, within PARSE_TIMEOUT
                parsed = await parsing_pool.run_async(
                    parse_feed, result.data, result.url, result.content_type
                )
            except InputError as error:  # took too long, or its process died
                raise FeedError(str(error)) from None
            interval, asked = self._interval(result.max_age, parsed.ttl_minutes)
            changes.update(
                min_interval=asked,
                next_poll_at=self.store.clock() + interval,
                title=parsed.title or feed.title,
                polls=feed.polls + 1,
            )
            report.entries = len(parsed.entries)
            await self._process(feed, parsed.title or feed.title, parsed.entries, changes, report)
        except FeedError as error:
            return await self._failed(feed, str(error), report)
        return report

    def _interval(self, max_age: float | None, ttl_minutes: int | None) -> tuple[float, float]:
        """(seconds until the next poll, what the feed asked for)."""
        asked = max(max_age or 0.0, (ttl_minutes or 0) * 60.0)
        asked = min(asked, self.settings.feed_max_interval)
        return max(self.settings.feed_poll_interval, asked), asked

    async def _failed(self, feed: FeedRow, reason: str, report: PollReport) -> PollReport:
        failures = feed.failures + 1
        paused = failures >= self.settings.feed_max_failures
        delay = min(
            self.settings.feed_poll_interval * 2 ** (failures - 1), self.settings.feed_max_interval
        )
        await self.store.feeds.update(
            feed.id,
            failures=failures,
            last_error=reason,
            last_error_at=self.store.clock(),
            paused=paused,
            next_poll_at=self.store.clock() + delay,
        )
        report.status, report.error = ("paused" if paused else "error"), reason
        log.warning("Feed %s failed (%s in a row): %s", feed.url, failures, reason)
        if paused and self.notify_admins is not None:
            await self.notify_admins(
                FEED_PAUSED, {"url": feed.url, "failures": failures, "reason": reason}
            )
        return report

    async def _process(
        self,
        feed: FeedRow,
        outlet: str | None,
        entries: Sequence[FeedEntry],
        changes: dict[str, object],
        report: PollReport,
    ) -> None:
        seen = await self.store.feeds.seen_entries(feed.id, [e.key for e in entries])
        unseen = list({e.key: e for e in entries if e.key not in seen}.values())
        pages = asyncio.Semaphore(PAGE_FETCHES)

        async def build(entry: FeedEntry) -> Article | None:
            async with pages:
                return await self._article(entry, outlet, feed.url)

        built = await asyncio.gather(*(build(e) for e in unseen))
        async with self._ingest_lock, self.store.database.lock("feeds-ingest"):
            await self._ingest(feed, unseen, built, changes, report)

    async def _ingest(
        self,
        feed: FeedRow,
        unseen: list[FeedEntry],
        built: Sequence[Article | None],
        changes: dict[str, object],
        report: PollReport,
    ) -> None:
        """Dedupe, index, match and record one poll's new entries."""
        cutoff = datetime.now(UTC) - timedelta(hours=self.settings.feed_alert_max_age_hours)
        ids, signatures = await self.store.stories.recent_signatures(
            self.store.clock() - DUPLICATE_WINDOW
        )
        candidates: list[_Candidate] = []
        batch_ids: set[str] = set()
        for entry, article in zip(unseen, built, strict=True):
            if article is None or article.id in batch_ids:
                continue
            digest = content_hash(article.title, article.text)
            known = await self.store.stories.by_id_or_hash(article.id, digest)
            if known is not None:  # same URL or same text: already have it
                report.duplicates.append(article.title)
                continue
            signature = minhash(f"{article.title}\n{article.text}")
            original = None
            if signature is not None:
                similar, resemblance = most_similar(signature, ids, signatures)
                if resemblance >= self.settings.alert_duplicate_similarity:
                    original = similar
                else:  # later entries of this poll are compared with it too
                    ids.append(article.id)
                    signatures = (
                        signature[None, :]
                        if signatures is None
                        else np.vstack([signatures, signature[None, :]])
                    )
            fresh = entry.published_at is None or entry.published_at >= cutoff
            story = Story(
                article.id, article.url, digest, article.title, article.outlet, original, signature
            )
            candidates.append(_Candidate(entry, article, story, fresh))
            batch_ids.add(article.id)
        if candidates:
            ingest = await self.index.add_articles([c.article for c in candidates])
            for name, reason in ingest.failed:
                log.warning("Feed %s: could not index %s: %s", feed.url, name, reason)
            indexed = set(ingest.article_ids)
            candidates = [c for c in candidates if c.article.id in indexed]
        report.added = [c.article.title for c in candidates if c.story.duplicate_of is None]
        report.duplicates += [c.article.title for c in candidates if c.story.duplicate_of]
        deliveries: list[Delivery] = []
        if feed.polls > 0:  # the first poll indexes the backlog quietly
            deliveries = await self._deliveries(
                [c for c in candidates if c.fresh and c.story.duplicate_of is None]
            )
        entries = [(e.key, a.id if a else None) for e, a in zip(unseen, built, strict=True)]
        report.alerts = await self.store.stories.record_poll(
            feed.id,
            entries,
            [c.story for c in candidates],
            deliveries,
            changes,
        )
        for c in candidates:
            if c.story.duplicate_of:
                await self.store.stories.link_duplicate(
                    c.story.duplicate_of,
                    {"title": c.article.title, "url": c.article.url, "outlet": c.article.outlet},
                )
        if report.alerts:
            self.on_alerts()

    async def _deliveries(self, candidates: list[_Candidate]) -> list[Delivery]:
        if not candidates:
            return []
        subscriptions = await self.store.subscriptions.active()
        if not subscriptions:
            return []
        deliveries = []
        for c in candidates:
            passages = await asyncio.to_thread(article_passages, self.index.core, c.article.id)
            for match in match_subscriptions(c.article, passages, subscriptions, self.threshold):
                sub = match.subscription
                deliveries.append(
                    Delivery(
                        sub.chat_id,
                        sub.thread_id,
                        c.article.id,
                        sub.id,
                        alert_payload(
                            article_id=c.article.id,
                            title=c.article.title,
                            url=c.article.url,
                            outlet=c.article.outlet,
                            published=c.article.published,
                            quote=match.quote,
                            topic=sub.topic,
                            source=sub.outlet,
                            sub_id=sub.id,
                        ),
                    )
                )
        return deliveries

    async def _article(self, entry: FeedEntry, outlet: str | None, feed_url: str) -> Article | None:
        """The entry as an article; a teaser's page is fetched for the full text."""
        title, text, url = entry.title, entry.text, entry.link
        author, published = entry.author, published_date(entry)
        if len(text) < self.settings.feed_teaser_chars and url and url.startswith("http"):
            try:
                page = await self.fetcher.get(url)
                [full] = await asyncio.to_thread(parse, "page.html", page.data, url=page.url)
                if len(full.text) > len(text):
                    text, url = full.text, full.url or page.url
                    title = title or full.title
                    author = author or full.author
                    published = published or full.published
            except (FeedError, InputError, ValueError) as error:
                log.info("Keeping the feed's text for %s: page unavailable (%s)", url, error)
        text = text or title
        if not title:
            return None
        return make_article(
            title=title,
            text=text,
            url=url,
            outlet=outlet,
            author=author,
            published=published,
            source=feed_url,
        )
