"""``python -m bot.alerts calibrate``: how well the topic threshold separates articles
that are about a topic from those that are not.

SQuAD's articles stand in for topics: each article title ("Nikola Tesla", "Warsaw",
"Super Bowl 50") is a topic, and a paragraph is about it when it belongs to that article.
Paragraphs are embedded as the index embeds passages (the mean of their sentence vectors)
but without a headline, which here would be the topic itself. For each threshold it prints
the precision and recall of "cosine(topic, passage) >= threshold", which is the rule
``bot.alerts.matching`` applies to a new article's passages.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from index.chunking import split_sentences
from index.embedding import Embedder, passage_vector

THRESHOLDS = (0.25, 0.30, 0.35, 0.40, 0.45, 0.50, 0.55)


def calibrate(path: str, embedder: Embedder) -> list[dict[str, float]]:
    """Precision, recall and F1 per threshold, over every (topic, paragraph) pair."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    topics = [entry["title"].replace("_", " ") for entry in data]
    owners: list[int] = []
    sentences: list[str] = []
    bounds: list[tuple[int, int]] = []
    for number, entry in enumerate(data):
        for paragraph in entry["paragraphs"]:
            text = paragraph["context"]
            spans = split_sentences(text) or [(0, len(text))]
            bounds.append((len(sentences), len(sentences) + len(spans)))
            sentences += [text[a:b] for a, b in spans]
            owners.append(number)
    vectors = embedder.encode(sentences)
    passages = np.stack([passage_vector(vectors[a:b]) for a, b in bounds])
    scores = passages @ embedder.encode(topics).T  # paragraphs x topics
    about = np.array(owners)[:, None] == np.arange(len(topics))[None, :]
    rows = []
    for threshold in THRESHOLDS:
        alerted = scores >= threshold
        hits = int((alerted & about).sum())
        precision = hits / max(int(alerted.sum()), 1)
        recall = hits / int(about.sum())
        f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
        rows.append(
            {
                "threshold": threshold,
                "precision": round(precision, 3),
                "recall": round(recall, 3),
                "f1": round(f1, 3),
            }
        )
    return rows


def run(path: str, embedder: Embedder) -> int:
    rows = calibrate(path, embedder)
    print(f"topics: the article titles of {path}; model {embedder.name}")
    print(f"{'threshold':>10}{'precision':>11}{'recall':>9}{'F1':>7}")
    for row in rows:
        print(
            f"{row['threshold']:>10.2f}{row['precision']:>11.3f}{row['recall']:>9.3f}"
            f"{row['f1']:>7.3f}"
        )
    return 0
