"""Hostile text in an upload does not hold up other users of the bot."""

from __future__ import annotations

from tests.test_bot.harness import ADMIN, RunningBot, longest_help_wait_during_upload

# 40,000 dots in a row made the sentence splitter backtrack for 44 s, holding the GIL, so
# the whole bot (and this test, which shares its process) stood still meanwhile. The run
# must not be followed by a capital: then the first try matches and nothing backtracks.
HOSTILE = b"Dots everywhere\n\nIt starts here. " + b"." * 40_000 + b" then it ends.\n"


async def test_help_is_answered_promptly_while_a_hostile_upload_is_ingested(
    running: RunningBot,
) -> None:
    """Another user's /help is answered within seconds at every moment of the ingest.

    /help is sent again and again until the upload's report arrives; the longest time
    between two answers covers any moment the process stood still, even one that began
    between two requests."""
    longest = await longest_help_wait_during_upload(running, "dots.txt", HOSTILE, "text/plain")

    assert longest < 5, f"/help waited {longest:.1f} s while the upload was ingested"
    assert running.chat(ADMIN).messages[-1].text.startswith("Added: Dots everywhere")
