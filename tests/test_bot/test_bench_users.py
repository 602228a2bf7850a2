"""The benches' users' side (bot/bench_users.py): the child process's JSON lines reach the
bench whole, however many replies a tally holds."""

from __future__ import annotations

from bot.bench_users import UsersProcess


async def test_a_tally_line_larger_than_the_stream_default_is_read() -> None:
    """500 users asking 6 questions each: 3,000 latencies and 3,000 times to "typing" make a
    line of about 120 kB, above asyncio's 64 KiB line limit."""
    entry = (
        "from bot.bench_users import emit; emit({'base_url': 'http://127.0.0.1:1'}); "
        "emit({'latencies': [0.123456789012345] * 3000, 'to_typing': [0.0123456789] * 3000})"
    )
    users = await UsersProcess.start(entry)
    try:
        tally = await users.read(30)
    finally:
        await users.close()
    assert len(tally["latencies"]) == len(tally["to_typing"]) == 3000
