"""``python -m index.compare``: this checkout against another one (an older commit), on the
same machine at the same moment, so that a busy machine slows both alike.

    git archive OLD_COMMIT | tar -x -C /tmp/old
    python -m index.compare --side old=/tmp/old,DIR1 --side new=.,DIR2

Each side is a checkout with its own data folder (an index of the same passages: copy one;
a newer schema may not open in the older program) and, optionally, its own PostgreSQL
database (``--side new-pg=.,DIR3,postgresql://…``). Two figures, the sides taking turns:

1. Start-up: ``python -m index stats`` run ``--starts`` times by each side, wall and CPU
   seconds (medians).
2. Questions: each side opens its index in a worker process, as the CLI would; every
   question (BBC headlines, as ``bench`` asks them) goes to each side in turn, the order
   rotated every question. Wall and CPU milliseconds per question, embedding included, as
   each worker measures its own ``IndexCore.search``, and for every two sides the median
   of the paired differences (same question, same moment).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from index.bench import _percentiles, _questions, load_corpus

ROOT = Path(__file__).resolve().parents[1]
# Runs in either checkout, so it uses only what both have: IndexCore.open and search.
WORKER = """
import json, sys, time
from index import IndexCore, IndexSettings
core = IndexCore.open(IndexSettings())
core.embedder.encode(["warm-up"])
print("ready", flush=True)
for line in sys.stdin:
    question = json.loads(line)
    wall, cpu = time.perf_counter(), time.process_time()
    core.search(question, k=3)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps([1000 * wall, 1000 * cpu]), flush=True)
core.close()
"""


class Side:
    """One checkout with its data folder (and database)."""

    def __init__(self, name: str, root: Path, data_dir: Path, database_url: str | None) -> None:
        self.name = name
        self.root = root
        self.environment = os.environ | {"DATA_DIR": str(data_dir), "PYTHONPATH": str(root)}
        self.environment.pop("DATABASE_URL", None)
        if database_url:
            self.environment["DATABASE_URL"] = database_url
        self.worker: subprocess.Popen[str] | None = None

    def stats_seconds(self) -> tuple[float, float]:
        """Wall and CPU seconds of one ``python -m index stats``."""
        started, used = time.perf_counter(), _children_cpu()
        subprocess.run(
            [sys.executable, "-m", "index", "stats"],
            cwd=self.root,
            env=self.environment,
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - started, _children_cpu() - used

    def start(self) -> None:
        self.worker = subprocess.Popen(
            [sys.executable, "-c", WORKER],
            cwd=self.root,
            env=self.environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if _line(self.worker.stdout) != "ready":
            raise RuntimeError(f"the {self.name} side did not start (see its output above)")

    def ask(self, question: str) -> tuple[float, float]:
        assert self.worker is not None and self.worker.stdin is not None
        self.worker.stdin.write(json.dumps(question) + "\n")
        self.worker.stdin.flush()
        wall, cpu = json.loads(_line(self.worker.stdout))
        return float(wall), float(cpu)

    def stop(self) -> None:
        if self.worker is not None and self.worker.stdin is not None:
            self.worker.stdin.close()
            self.worker.wait(timeout=120)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _line(stream: IO[str] | None) -> str:
    assert stream is not None
    return stream.readline().strip()


def compare(sides: list[Side], questions: list[str], starts: int) -> dict[str, object]:
    """Both figures for every side, the sides taking turns (the order rotated each time)."""
    figures: dict[str, object] = {"load_average": round(os.getloadavg()[0], 1)}
    if starts:
        seconds: dict[str, list[tuple[float, float]]] = {side.name: [] for side in sides}
        for turn in range(starts):
            for side in _rotated(sides, turn):
                seconds[side.name].append(side.stats_seconds())
        for name, runs in seconds.items():
            figures[f"stats_seconds_{name}"] = round(statistics.median(w for w, _ in runs), 2)
            figures[f"stats_cpu_seconds_{name}"] = round(statistics.median(c for _, c in runs), 2)
    if not questions:
        return figures | {"load_average_after": round(os.getloadavg()[0], 1)}
    times: dict[str, list[tuple[float, float]]] = {side.name: [] for side in sides}
    try:
        for side in sides:
            side.start()
        for number, question in enumerate(questions):
            for side in _rotated(sides, number):
                times[side.name].append(side.ask(question))
    finally:
        for side in sides:
            side.stop()
    for name, values in times.items():
        figures[f"query_{name}"] = _percentiles([wall for wall, _ in values]) | {
            "cpu_p50": round(statistics.median(cpu for _, cpu in values), 2)
        }
    for i, earlier in enumerate(sides):  # paired: the same question, the same moment
        for side in sides[i + 1 :]:
            paired = [
                b[0] - a[0] for a, b in zip(times[earlier.name], times[side.name], strict=True)
            ]
            figures[f"{side.name}_minus_{earlier.name}_p50_ms"] = round(
                statistics.median(paired), 2
            )
    figures["load_average_after"] = round(os.getloadavg()[0], 1)
    return figures


def _rotated(sides: list[Side], turn: int) -> list[Side]:
    shift = turn % len(sides)
    return sides[shift:] + sides[:shift]


def _side(text: str) -> Side:
    """NAME=CHECKOUT,DATA_DIR[,DATABASE_URL]; CHECKOUT "." is this one."""
    name, _, rest = text.partition("=")
    root, data_dir, *url = rest.split(",", 2)
    if not name or not data_dir:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=CHECKOUT,DATA_DIR[,URL]")
    checkout = ROOT if root == "." else Path(root).resolve()
    return Side(name, checkout, Path(data_dir).resolve(), url[0] if url else None)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m index.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--side",
        type=_side,
        action="append",
        required=True,
        metavar="NAME=CHECKOUT,DATA_DIR[,DATABASE_URL]",
        help='a checkout (".": this one) with its data; two or more',
    )
    parser.add_argument("--corpus", default="../shared/corpus/bbc-news-2005")
    parser.add_argument("--queries", type=int, default=100, help="questions (0: none)")
    parser.add_argument("--starts", type=int, default=5, help="stats runs per side (0: none)")
    args = parser.parse_args(argv)
    questions = _questions(load_corpus(args.corpus), args.queries)
    print(json.dumps(compare(args.side, questions, args.starts), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
