"""How long HTML pages take to parse here and in a parsing child, and how long parsing here
holds the GIL: the figures behind ``IN_PROCESS_HTML_CHARS``.

``python -m index.parsing_bench [--sizes 4,16,64,256,1024] [--json]`` (sizes in KB).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from index import parsing_pool
from index.formats import parse_html_here

PARAGRAPH = (
    "<p>The harbour authority said on 2024-03-02 that dredging of the channel would resume "
    "next week, after talks with the ministry.</p>\n"
)
HEAD = (
    "<html><head><title>Harbour news</title></head><body><nav><a href='/'>Home</a></nav>"
    "<article><h1>Harbour news</h1>"
)
TAIL = "</article><footer>Port Gazette</footer></body></html>"


def article_page(size: int) -> str:
    """An article page of about ``size`` characters: a headline and many paragraphs."""
    return HEAD + PARAGRAPH * max(1, (size - len(HEAD) - len(TAIL)) // len(PARAGRAPH)) + TAIL


def timed(call: Callable[[], object], repeat: int) -> dict[str, float]:
    """Best wall and caller-CPU milliseconds of ``repeat`` calls, and the longest time a
    thread sleeping 1 ms at a time waited meanwhile (how long the GIL was held)."""
    wall = cpu = float("inf")
    longest = 0.0
    for _ in range(repeat):
        stop = threading.Event()
        gaps: list[float] = []
        ticker = threading.Thread(target=_tick, args=(stop, gaps))
        ticker.start()
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        call()
        wall = min(wall, time.perf_counter() - wall_start)
        cpu = min(cpu, time.process_time() - cpu_start)
        stop.set()
        ticker.join()
        longest = max(longest, max(gaps, default=0.0))
    return {"wall_ms": wall * 1000, "caller_cpu_ms": cpu * 1000, "gil_hold_ms": longest * 1000}


def _tick(stop: threading.Event, gaps: list[float]) -> None:
    last = time.perf_counter()
    while not stop.is_set():
        time.sleep(0.001)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now


def measure(sizes_kb: list[int], repeat: int = 3) -> list[dict[str, Any]]:
    pool = parsing_pool.ParsingPool(workers=1)
    try:
        pool.run(parse_html_here, article_page(2000), source="warm-up.html")  # start the child
        rows = []
        for size in sizes_kb:
            page = article_page(size * 1024)
            here = timed(partial(parse_html_here, page, source="page.html"), repeat)
            child = timed(partial(pool.run, parse_html_here, page, source="page.html"), repeat)
            rows.append({"kb": size, "here": here, "child": child})
        return rows
    finally:
        pool.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m index.parsing_bench", description=__doc__)
    parser.add_argument("--sizes", default="4,16,64,256,1024", help="page sizes in KB")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    rows = measure([int(s) for s in args.sizes.split(",")], args.repeat)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print("page KB | here: wall ms, GIL held ms | in a child: wall ms, caller CPU ms")
    for row in rows:
        here, child = row["here"], row["child"]
        print(
            f"{row['kb']:7} | {here['wall_ms']:8.1f} {here['gil_hold_ms']:8.1f} "
            f"| {child['wall_ms']:8.1f} {child['caller_cpu_ms']:8.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
