"""``python -m index bench``: ingestion throughput, query latency and memory.

1. Ingestion: a slice of the BBC corpus goes through the whole pipeline (parse, chunk,
   embed, SQLite, FAISS, save); the same texts then go through the model's raw
   ``encode`` alone, so the pipeline's overhead over the model is measured.
2. Latency: the index is filled to each size with synthetic passages recombined from
   the real sentences embedded in step 1 (their real vectors; the passage vector is the
   normalised mean of its sentences), then questions built from real BBC headlines are
   searched one at a time, embedding included.
"""

from __future__ import annotations

import random
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from index.chunking import chunk_article
from index.core import IndexCore
from index.embedding import Embedder, passage_vector, sentence_inputs
from index.formats import make_article, parse
from index.models import Article, Passage
from index.settings import IndexSettings


def load_corpus(folder: str) -> list[Article]:
    """Every article file below ``folder`` (the BBC corpus layout)."""
    articles = []
    for path in sorted(Path(folder).rglob("*.txt")):
        if path.name.lower() != "readme.txt":
            articles += parse(path.name, path.read_bytes())
    return articles


def run_bench(
    folder: str,
    settings: IndexSettings,
    sizes: list[int],
    queries: int,
    ingest_articles: int = 400,
    embedder: Embedder | None = None,
) -> int:
    articles = load_corpus(folder)
    print(f"corpus: {len(articles)} articles from {folder}")
    with tempfile.TemporaryDirectory(prefix="index-bench-") as data_dir:
        core = IndexCore.open(settings.model_copy(update={"data_dir": Path(data_dir)}), embedder)
        core.embedder.encode(["warm-up"])
        sample = articles[:ingest_articles]
        started = time.perf_counter()
        report = core.add_articles(sample)
        pipeline = time.perf_counter() - started
        texts = _embedded_texts(sample, settings.passage_chars)
        started = time.perf_counter()
        core.embedder.encode(texts)
        raw = time.perf_counter() - started
        print(
            f"\ningestion of {len(sample)} articles, {report.passages} passages "
            f"({len(texts)} texts embedded):"
        )
        print(f"  pipeline      {report.passages / pipeline:8.1f} passages/s  ({pipeline:.1f} s)")
        print(f"  raw encode    {report.passages / raw:8.1f} passages/s  ({raw:.1f} s)")
        print(f"  overhead      {100 * (pipeline - raw) / raw:8.1f} %")

        questions = _questions(articles, queries)
        print(f"\nquery latency, {len(questions)} questions, embedding included:")
        print(f"  {'passages':>9} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
        for size in sizes:
            _fill(core, size)
            latencies = []
            for question in questions:
                started = time.perf_counter()
                core.search(question, k=3)
                latencies.append(1000 * (time.perf_counter() - started))
            latencies.sort()
            p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
            print(
                f"  {core.vectors.count:>9} {statistics.median(latencies):>8.1f} "
                f"{p99:>8.1f} {statistics.fmean(latencies):>8.1f}"
            )
        core.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory (RSS): {peak:.0f} MB")
    return 0


def _embedded_texts(articles: list[Article], passage_chars: int) -> list[str]:
    texts: list[str] = []
    for article in articles:
        passages = chunk_article(article, passage_chars)
        for p in passages:
            texts += sentence_inputs(article.title, p.text, p.sentences)
    return texts


def _questions(articles: list[Article], count: int) -> list[str]:
    rng = random.Random(7)
    picked = rng.sample(articles, min(count, len(articles)))
    return [f"What happened: {a.title.lower()}?" for a in picked]


def _fill(core: IndexCore, size: int) -> None:
    """Add synthetic articles until the index holds ``size`` passages."""
    rows = list(core.store.passages(core.store.passage_ids()[:5000]).values())
    pool = [
        (row.text[a:b], row.sentence_vectors[i])
        for row in rows
        for i, (a, b) in enumerate(row.sentences)
    ]
    rng = random.Random(size)
    number = 0
    while core.vectors.count < size:
        number += 1
        picks = [pool[rng.randrange(len(pool))] for _ in range(5 * 4)]
        paragraphs, passages, vectors, sentence_vectors = [], [], [], []
        offset = 0
        for p in range(5):
            chosen = picks[4 * p : 4 * p + 4]
            text = " ".join(s for s, _ in chosen)
            spans, cursor = [], 0
            for sentence, _ in chosen:
                spans.append((cursor, cursor + len(sentence)))
                cursor += len(sentence) + 1
            passages.append(Passage("", p, offset, offset + len(text), text, tuple(spans)))
            matrix = np.stack([v for _, v in chosen])
            sentence_vectors.append(matrix)
            vectors.append(passage_vector(matrix))
            paragraphs.append(text)
            offset += len(text) + 2
        article = make_article(
            title=f"Synthetic report {size}-{number}",
            text="\n\n".join(paragraphs),
            url=None,
            outlet="Synthetic",
            author=None,
            published=None,
            source=None,
        )
        passages = [
            Passage(article.id, p.position, p.start, p.end, p.text, p.sentences) for p in passages
        ]
        _, ids = core.store.replace_article(
            article, article.id, passages, np.stack(vectors), sentence_vectors
        )
        core.vectors.add(np.array(ids, dtype=np.int64), np.stack(vectors))
