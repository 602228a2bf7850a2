"""Builders of test inputs: articles on disk and in memory."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from index.formats import make_article
from index.models import Article

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "azernews-2022-06-21-anama.txt"
SHARED = Path(__file__).resolve().parents[2] / "shared"

# Three small articles on distinct topics, for search and filter tests.
TOPICS = {
    "volcano": (
        "Volcano erupts near village",
        "The volcano erupted on Monday morning, sending ash over the village. "
        "Residents were evacuated by the civil defence service.\n\n"
        "Scientists said lava flows could continue for weeks. The airport closed its runway.",
    ),
    "football": (
        "Cup final won on penalties",
        "The home team won the cup final on penalties after a goalless draw. "
        "The goalkeeper saved two penalties in the shootout.\n\n"
        "Fans celebrated in the streets until midnight. The coach praised his players.",
    ),
    "bank": (
        "Central bank raises interest rates",
        "The central bank raised interest rates by half a point to fight inflation. "
        "Mortgage costs will rise for millions of households.\n\n"
        "Economists expect one more rate rise this year. Markets fell after the announcement.",
    ),
}


def article(
    topic: str = "volcano",
    *,
    outlet: str = "Daily Test",
    published: date | None = None,
    url: str | None = None,
    text: str | None = None,
) -> Article:
    title, body = TOPICS[topic]
    return make_article(
        title=title,
        text=text or body,
        url=url,
        outlet=outlet,
        author="A. Writer",
        published=published or date(2024, 5, 1),
        source=f"{topic}.txt",
    )


def write_text(folder: Path, name: str, topic: str = "volcano", body: str | None = None) -> Path:
    """A headline-first text file, the BBC corpus layout."""
    title, text = TOPICS[topic]
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{title}\n\n{body or text}\n", encoding="utf-8")
    return path
