"""A scaled deployment's first start: every replica and worker starts at once on a new,
empty PostgreSQL database. Each creates or waits for the index's and the bot's schemas;
none fails (two CREATE SCHEMA IF NOT EXISTS at the same moment used to make all but one
process exit with "duplicate key value violates unique constraint")."""

from __future__ import annotations

import asyncio
import sys

import psycopg

PROCESSES = 4
# Each process imports and connects first, says so, then migrates both schemas when told
MIGRATE = """
import asyncio, sys
from bot.storage import BotStore
from index.database import Database, postgres_url

index = Database(postgres_url(sys.argv[1]))
with index.read() as connection:  # connected before the start signal
    connection.exec_driver_sql("SELECT 1")
store = BotStore.from_url(postgres_url(sys.argv[1]))
print("ready", flush=True)
sys.stdin.readline()
index.migrate()

async def open_store() -> None:
    await store.open()
    await store.close()

asyncio.run(open_store())
print("migrated", flush=True)
"""


async def test_processes_starting_at_once_on_a_new_database_all_migrate(
    postgres_url: str,
) -> None:
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            MIGRATE,
            postgres_url,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(PROCESSES)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), 120)
            assert line == b"ready\n", (await process.communicate())[1].decode()[-2000:]
        for process in processes:  # as close to the same moment as it gets
            assert process.stdin is not None
            process.stdin.write(b"go\n")
        results = [await asyncio.wait_for(p.communicate(), 120) for p in processes]
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()

    errors = [err.decode()[-1500:] for _, err in results if b"Error" in err]
    assert errors == []
    assert [out for out, _ in results] == [b"migrated\n"] * PROCESSES
    assert [p.returncode for p in processes] == [0] * PROCESSES
    with psycopg.connect(postgres_url) as connection:
        schemas = connection.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'newsbot_%' ORDER BY 1"
        ).fetchall()
    assert schemas == [("newsbot_bot",), ("newsbot_index",)]
