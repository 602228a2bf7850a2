"""Subscriptions through the chat: /subscribe forms, listing and removing, /unsubscribe
with confirmation, delivery preferences, group admin rules, forum topics, /feeds."""

from __future__ import annotations

from pathlib import Path

from tests.alerts_support import Stack, alerts_stack, rss
from tests.conversation import Conversation
from tests.fake_telegram import FakeChat, FakeUser
from tests.test_bot.test_feeds import BANK, VOLCANO

ANN = FakeUser(id=1001, first_name="Ann")
BOB = FakeUser(id=1002, first_name="Bob")
ADMIN = FakeUser(id=42, first_name="Ada")


async def publish(stack: Stack, items: list[dict], path: str = "news.rss") -> None:  # type: ignore[type-arg]
    """Serve a feed (backlog first, then ``items``) and poll until they are processed."""
    feed = await stack.alerts.store.feeds.by_url(stack.feeds.url(path))
    if feed is None:
        url = stack.feeds.serve(path, rss("Daily Test", [{"title": "Backlog", "text": "x " * 50}]))
        feed, _, _ = await stack.alerts.add_feed(url)
    stack.feeds.serve(path, rss("Daily Test", items))
    await stack.alerts.store.feeds.update(feed.id, next_poll_at=0)
    await stack.alerts.poll_now()


async def test_subscribe_forms_list_and_remove(tmp_path: Path) -> None:
    """Every article, a topic, an outlet, a combination; listed with remove buttons."""
    async with alerts_stack(tmp_path) as stack:
        conv = Conversation(stack.api, FakeChat.private(ANN), ANN)
        [reply] = await conv.send("/subscribe")
        assert "Subscribed: every new article" in reply.text
        [reply] = await conv.send("/subscribe volcanic eruptions")
        assert "Subscribed: about “volcanic eruptions”" in reply.text
        [reply] = await conv.send('/subscribe source:"Daily Test" central bank')
        assert "about “central bank” from Daily Test" in reply.text
        assert "No article from “Daily Test” yet" in reply.text
        [reply] = await conv.send("/subscribe Volcanic eruptions")
        assert "You already follow about “volcanic eruptions”" in reply.text
        [listing] = await conv.send("/subscriptions")
        assert "1. every new article" in listing.text
        assert len(listing.buttons) == 3
        [edited] = await conv.press("Remove 2")
        assert "volcanic" not in edited.text and len(edited.buttons) == 2
        assert conv.last_callback_answer and conv.last_callback_answer["text"] == "Removed."


async def test_unsubscribe_asks_first(tmp_path: Path) -> None:
    """/unsubscribe removes everything only after "Yes"; Cancel keeps it."""
    async with alerts_stack(tmp_path) as stack:
        conv = Conversation(stack.api, FakeChat.private(ANN), ANN)
        [reply] = await conv.send("/unsubscribe")
        assert "nothing to unsubscribe" in reply.text
        await conv.send("/subscribe")
        await conv.send("/subscribe climate")
        [ask] = await conv.send("/unsubscribe")
        assert "Remove all 2 subscriptions" in ask.text
        [kept] = await conv.press("Cancel")
        assert "Kept" in kept.text
        await conv.send("/unsubscribe")
        [done] = await conv.press("Yes, remove all")
        assert "2 subscriptions removed" in done.text
        [listing] = await conv.send("/subscriptions")
        assert "No subscriptions here" in listing.text


async def test_delivery_preferences(tmp_path: Path) -> None:
    """/alerts, /quiet and /timezone show and change how alerts arrive."""
    async with alerts_stack(tmp_path) as stack:
        conv = Conversation(stack.api, FakeChat.private(ANN), ANN)
        [reply] = await conv.send("/alerts")
        assert "instant alerts" in reply.text
        [reply] = await conv.send("/timezone +2")
        assert "UTC+02:00" in reply.text
        [reply] = await conv.send("/quiet 22-7")
        assert "quiet 22:00-07:00 (UTC+02:00)" in reply.text
        [reply] = await conv.send("/alerts digest 9")
        assert "daily digest at 09:00 (UTC+02:00)" in reply.text
        [reply] = await conv.send("/alerts sometimes")
        assert "Use /alerts instant" in reply.text
        [reply] = await conv.send("/quiet 25-3")
        assert "Use /quiet 22-7" in reply.text


async def test_group_subscriptions_are_for_admins(tmp_path: Path) -> None:
    """In a group only its admins may subscribe; members are told so; anyone may list."""
    async with alerts_stack(tmp_path) as stack:
        group = FakeChat.supergroup()
        member = Conversation(stack.api, group, BOB)
        admin = Conversation(stack.api, group, ANN)
        stack.api.set_member_status(group.id, ANN.id, "creator")  # the fake has no admin rights
        [reply] = await member.send("/subscribe volcano")
        assert "Only this group's admins" in reply.text
        [reply] = await admin.send("/subscribe volcano")
        assert "Subscribed" in reply.text
        [listing] = await member.send("/subscriptions")
        assert "volcano" in listing.text
        await member.press("Remove 1")
        assert member.last_callback_answer is not None
        assert "Only this group's admins" in member.last_callback_answer["text"]
        assert await stack.alerts.store.subscriptions.of_chat(group.id)


async def test_forum_topic_gets_its_alerts_and_buttons_work(tmp_path: Path) -> None:
    """Alerts go to the forum topic where the subscription was made; "Mute" stops them and
    "Ask about this article" answers from that article."""
    async with alerts_stack(tmp_path) as stack:
        forum = FakeChat.supergroup(is_forum=True)
        conv = Conversation(stack.api, forum, ANN)
        stack.api.set_member_status(forum.id, ANN.id, "creator")
        [reply] = await conv.send("/subscribe volcano", thread_id=77)
        assert reply.thread_id == 77
        await publish(
            stack,
            [
                {
                    "title": "Volcano erupts near village",
                    "link": "http://a.test/v",
                    "text": VOLCANO,
                },
                {"title": "Bank raises rates", "link": "http://a.test/b", "text": BANK},
            ],
        )
        alert = await conv.wait_for(lambda m: "Volcano erupts" in m.text)
        assert alert.thread_id == 77
        assert "Why you got this: you follow “volcano”" in alert.text
        assert any(e["type"] == "blockquote" for e in alert.entities)
        assert alert.buttons == [["💬 Ask about this article", "🔕 Mute “volcano”"]]
        assert not [m for m in conv.messages if "Bank raises" in m.text]

        [prompt] = await conv.press("Ask about this article")
        assert "What would you like to know about “Volcano erupts near village”" in prompt.text
        [answer] = await conv.send("when did lava flows continue", reply_to=prompt)
        assert "lava flows could continue for weeks" in answer.text
        assert answer.thread_id == 77

        await conv.press("Mute")
        assert conv.last_callback_answer and "Muted" in conv.last_callback_answer["text"]
        await publish(
            stack,
            [
                {
                    "title": "Second volcano erupts",
                    "link": "http://a.test/v2",
                    "text": VOLCANO.replace("village", "town") + " More ash fell.",
                }
            ],
        )
        [listing] = await conv.send("/subscriptions", thread_id=77)
        assert "(muted)" in listing.text
        assert not [m for m in conv.messages if "Second volcano" in m.text]


async def test_feeds_command_is_for_admins(tmp_path: Path) -> None:
    """Admins list, add (polled at once) and remove feeds; others are refused."""
    async with alerts_stack(tmp_path, admin_ids=(ADMIN.id,)) as stack:
        admin = Conversation(stack.api, FakeChat.private(ADMIN), ADMIN)
        other = Conversation(stack.api, FakeChat.private(BOB), BOB)
        [reply] = await other.send("/feeds")
        assert "Only the bot's admins" in reply.text
        [reply] = await admin.send("/feeds")
        assert "No feeds yet" in reply.text
        url = stack.feeds.serve(
            "f.rss", rss("Daily Test", [{"title": "Bank raises rates", "text": BANK}])
        )
        [reply] = await admin.send(f"/feeds add {url}")
        assert "Added Daily Test" in reply.text and "1 new article indexed" in reply.text
        [reply] = await admin.send("/feeds")
        assert "Daily Test" in reply.text and "1 article ·" in reply.text and url in reply.text
        [reply] = await admin.send(f"/feeds add {stack.feeds.url('missing.rss')}")
        assert "failed: HTTP 404" in reply.text
        [reply] = await admin.send(f"/feeds remove {url}")
        assert "Removed" in reply.text
        [reply] = await admin.send("/feeds remove <x>&y")
        assert reply.text == "No feed <x>&y: /feeds lists them."


LONG_TOPIC = (
    "volcano erupted on Monday morning sending ash over the village residents evacuated by civil"
)


async def test_muting_a_long_subscription_fits_the_alert_popup(tmp_path: Path) -> None:
    """Muting a subscription with a long topic and source answers within Telegram's 200
    characters (a longer answer is refused and the button would spin)."""
    async with alerts_stack(tmp_path) as stack:
        conv = Conversation(stack.api, FakeChat.private(ANN), ANN)
        assert len(LONG_TOPIC) <= 100
        await conv.send(f'/subscribe {LONG_TOPIC} source:"Daily Test"')
        await publish(
            stack,
            [{"title": "Volcano erupts near village", "link": "http://a.test/v", "text": VOLCANO}],
        )
        await conv.wait_for(lambda m: "Volcano erupts" in m.text)

        await conv.press("Mute")

        answer = conv.last_callback_answer
        assert answer is not None and answer["text"].startswith("Muted: about “volcano erupted")
        assert len(answer["text"]) <= 200
        [listing] = await conv.send("/subscriptions")
        assert "(muted)" in listing.text


async def test_subscriptions_are_capped_and_always_fit_one_message(tmp_path: Path) -> None:
    """A chat keeps at most 20 subscriptions; 20 of the longest still list in one message
    with one remove button each."""
    async with alerts_stack(tmp_path) as stack:
        conv = Conversation(stack.api, FakeChat.private(ANN), ANN)
        outlet = "O" * 60
        for n in range(20):
            topic = f"topic {n:02d} " + "w" * 91
            assert len(topic) == 100
            [reply] = await conv.send(f"/subscribe {topic} source:{outlet}")
            assert "Subscribed" in reply.text
        [full] = await conv.send("/subscribe one more")
        assert "already has 20 subscriptions" in full.text
        [again] = await conv.send(f"/subscribe topic 00 {'w' * 91} source:{outlet}")
        assert "You already follow" in again.text  # an existing one is no new subscription

        [listing] = await conv.send("/subscriptions")

        assert listing.text.startswith("Subscriptions:") and "20. about “topic 19" in listing.text
        assert len(listing.text) <= 4096
        assert sum(len(row) for row in listing.buttons) == 20


async def test_overlong_or_malformed_subscriptions_are_explained(tmp_path: Path) -> None:
    """Too long a topic or source, an empty or repeated source: a usage line, no subscription."""
    async with alerts_stack(tmp_path) as stack:
        conv = Conversation(stack.api, FakeChat.private(ANN), ANN)
        [reply] = await conv.send("/subscribe " + "word " * 30)
        assert "topic is too long" in reply.text and "100 characters" in reply.text
        [reply] = await conv.send("/subscribe source:" + "O" * 61)
        assert "source name is too long" in reply.text and "60 characters" in reply.text
        for args in ("source:", "volcano source:", 'source:""', "source:BBC source:CNN"):
            [reply] = await conv.send(f"/subscribe {args}")
            assert reply.text.startswith("Use /subscribe"), args
        [listing] = await conv.send("/subscriptions")
        assert "No subscriptions here" in listing.text


async def test_time_zone_minutes_are_quarter_hours(tmp_path: Path) -> None:
    """/timezone +5:75 is refused with the reason; +5:45 is taken."""
    async with alerts_stack(tmp_path) as stack:
        conv = Conversation(stack.api, FakeChat.private(ANN), ANN)
        [reply] = await conv.send("/timezone +5:75")
        assert "minutes 00, 15, 30 or 45" in reply.text
        [reply] = await conv.send("/timezone +5:45")
        assert "Time zone UTC+05:45" in reply.text


async def test_feeds_never_fetched_are_not_shown_as_healthy(tmp_path: Path) -> None:
    """A FEEDS preset not polled yet is listed as waiting, not with a ✅."""
    url = "http://127.0.0.1:9/never.rss"
    async with alerts_stack(tmp_path, admin_ids=(ADMIN.id,), feeds=[url]) as stack:
        admin = Conversation(stack.api, FakeChat.private(ADMIN), ADMIN)

        [listing] = await admin.send("/feeds")

        assert url in listing.text and "⏳ 0 articles · not fetched yet" in listing.text
        assert "✅" not in listing.text
