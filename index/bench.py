"""``python -m index bench``: ingestion throughput, query latency and memory, each next to
the old path (torch fp32 embedding, exact flat index) measured in the same run.

1. Ingestion: a slice of the BBC corpus (parsed beforehand) goes through the whole
   pipeline (chunk, embed with the configured backend, SQLite, keywords, FAISS, save), and
   its sentence texts through the configured embedder's ``encode`` alone and torch fp32
   ``encode`` alone, in turns, a quarter of the slice at a time. ``ingest_speedup`` is the
   pipeline's passages/s over torch's, ``ingest_model_speedup`` the embedder's alone.
2. Latency: the index is filled to each size with synthetic passages recombined from the
   real sentences embedded in step 1 (their real vectors; the passage vector is the
   normalised mean of its sentences), then questions built from real BBC headlines are
   searched one at a time, embedding included: alternately by the configured path
   (backend + the index kind for that size) and the old one (torch + flat), so both see
   the same machine load. The approximate index's top 50 is compared with the exact top 50.
   The new path's keyword query is the in-memory index (``index/memory_keywords.py``) from
   20k passages, built before the questions; the old path's is the store's (FTS5).
3. A million passages: filled in one subprocess, then opened and queried in another, so
   the peak RSS reported is that of a process serving a 1M index (model included).
"""

from __future__ import annotations

import functools
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from index.chunking import chunk_article
from index.core import IndexCore, vector_index_from_store
from index.embedding import (
    Embedder,
    SentenceTransformerEmbedder,
    create_embedder,
    passage_vector,
    sentence_inputs,
)
from index.formats import make_article, parse
from index.models import Article, IngestReport
from index.settings import IndexSettings
from index.store import Store, StoredArticle
from index.vectors import VectorIndex

MILLION = 1_000_000
INGEST_SLICES = 4  # the ingestion sample is timed in this many slices, taken in turns
_FILL_TRANSACTION = 20_000  # synthetic passages written per transaction


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
    *,
    baseline: Embedder | None = None,
    as_json: bool = False,
    million: bool = True,
) -> int:
    """Print the figures (a table, or one JSON object with ``as_json``). ``baseline`` is
    the old path's embedder (torch fp32 unless given); ``million`` adds the 1M point."""
    say: Callable[[str], None] = (lambda _: None) if as_json else print
    articles = load_corpus(folder)
    embedder = embedder or create_embedder(settings)
    baseline = baseline or SentenceTransformerEmbedder(settings.embedding_model, backend="torch")
    figures: dict[str, object] = {"backend": embedder.name, "baseline": f"{baseline.name} + flat"}
    say(f"corpus: {len(articles)} articles from {folder}")
    with tempfile.TemporaryDirectory(prefix="index-bench-") as data_dir:
        bench_settings = settings.model_copy(update={"data_dir": Path(data_dir)})
        core = IndexCore.open(bench_settings, embedder)
        for model in (embedder, baseline):
            model.encode(["warm-up"])
        figures |= _ingestion(core, baseline, articles[:ingest_articles], say)

        questions = _questions(articles, queries)
        say(f"\nquery latency, {len(questions)} questions, embedding included (ms):")
        say(
            f"  {'passages':>9} {'index':>8} {'p50':>6} {'p99':>6} {'cpu50':>6}"
            f"   old: {'p50':>6} {'p99':>6} {'cpu50':>6}  recall@50"
        )
        pool = _sentence_pool(core.store)
        for size in sizes:
            _fill(core.store, size, pool)
            core.vectors = vector_index_from_store(core.store, embedder.dimension, embedder.name)
            built = _keywords_in_memory(core)
            point = _latency(core, baseline, questions) | built
            say(
                f"  {core.vectors.count:>9} {core.vectors.kind:>8} {point['p50']:>6.1f} "
                f"{point['p99']:>6.1f} {point['cpu_p50']:>6.1f}        {point['old_p50']:>6.1f} "
                f"{point['old_p99']:>6.1f} {point['old_cpu_p50']:>6.1f}  {point['recall']:.3f}"
            )
            say(
                f"  keyword query: {point['keyword_engine']} (old: {point['old_keyword_engine']})"
                + (
                    f", built in {built['keyword_build_s']:.1f} s, "
                    f"+{built['keyword_memory_mb']:.0f} MB RSS"
                    if core.keywords_in_memory and core.keywords_in_memory.ready
                    else ""
                )
            )
            figures[f"latency_{size}"] = point
        largest = point
        figures |= {
            "query_p50_ms": largest["p50"],
            "query_p99_ms": largest["p99"],
            "baseline_query_p50_ms": largest["old_p50"],
            "baseline_query_p99_ms": largest["old_p99"],
            "query_p50_cpu_ms": largest["cpu_p50"],
            "baseline_query_p50_cpu_ms": largest["old_cpu_p50"],
            "ivf_recall_at_50": largest["recall"],
            "keyword_engine": largest["keyword_engine"],
            "passages": largest["passages"],
        }
        core.close()
        if million:
            say(f"\n{MILLION:,} passages (filled, then opened and queried in a fresh process):")
            cache = settings.model_cache_dir or settings.data_dir / "models"
            million_point = _million(Path(data_dir), questions, cache)
            say(
                "  p50 {query_p50_ms_1m:.1f} ms, p99 {query_p99_ms_1m:.1f} ms, peak RSS "
                "{peak_rss_mb_1m:.0f} MB ({index_1m}, {index_mb_1m:.0f} MB index)".format(
                    **million_point
                )
            )
            figures |= million_point
    figures["peak_rss_mb"] = _peak_rss_mb()
    say(f"\npeak memory of this process (RSS): {figures['peak_rss_mb']:.0f} MB")
    if as_json:
        print(json.dumps(figures))
    return 0


def _ingestion(
    core: IndexCore, baseline: Embedder, sample: list[Article], say: Callable[[str], None]
) -> dict[str, object]:
    """The sample in slices, each slice three ways in turns (the first of them rotating):
    through the whole pipeline, through the configured embedder's ``encode`` alone (the
    model without the rest) and through the old path's (torch fp32) ``encode`` alone, on
    the same sentence texts. Taking turns slice by slice, all three see the same load on a
    shared machine; one after the other, a minute each, the ratio swung from 1.1x to 2.9x.
    The pipeline's time includes saving the vector index at the end."""
    seconds = {"pipeline": 0.0, "model": 0.0, "baseline": 0.0}
    passages = embedded = 0
    for number, part in enumerate(_slices(sample, INGEST_SLICES)):
        texts = _embedded_texts(part, core.settings.passage_chars)
        steps: dict[str, Callable[[], object]] = {
            "pipeline": functools.partial(core.add_articles, part, save=False),
            "model": functools.partial(core.embedder.encode, texts),
            "baseline": functools.partial(baseline.encode, texts),
        }
        turn = number % len(steps)
        for step in [*steps][turn:] + [*steps][:turn]:
            started = time.perf_counter()
            done = steps[step]()
            seconds[step] += time.perf_counter() - started
            if isinstance(done, IngestReport):
                passages += done.passages
        embedded += len(texts)
    started = time.perf_counter()
    core.save()
    seconds["pipeline"] += time.perf_counter() - started
    rate = {step: passages / spent for step, spent in seconds.items()}
    say(
        f"\ningestion of {len(sample)} articles, {passages} passages ({embedded} texts "
        f"embedded), in {INGEST_SLICES} slices taken in turns:"
    )
    for step, what in (
        ("pipeline", f"pipeline ({core.embedder.name})"),
        ("model", f"{core.embedder.name} encode alone"),
        ("baseline", f"{baseline.name} encode alone"),
    ):
        say(f"  {what:<44} {rate[step]:8.1f} passages/s  ({seconds[step]:.1f} s)")
    say(
        f"  speedup over {baseline.name}: pipeline {rate['pipeline'] / rate['baseline']:.2f}x, "
        f"model alone {rate['model'] / rate['baseline']:.2f}x"
    )
    return {
        "ingest_passages_per_s": round(rate["pipeline"], 1),
        "baseline_ingest_passages_per_s": round(rate["baseline"], 1),
        "ingest_speedup": round(rate["pipeline"] / rate["baseline"], 2),
        "ingest_model_speedup": round(rate["model"] / rate["baseline"], 2),
    }


def _slices(articles: list[Article], count: int) -> list[list[Article]]:
    """``articles`` in ``count`` runs of nearly equal length (fewer when there are fewer)."""
    size = max(1, -(-len(articles) // count))
    return [articles[start : start + size] for start in range(0, len(articles), size)]


def _keywords_in_memory(core: IndexCore) -> dict[str, Any]:
    """The in-memory keyword index of the new path (index/memory_keywords.py), built anew
    for the passages there are now, before any question is timed: seconds, RSS added."""
    if core.keywords_in_memory is not None:
        core.keywords_in_memory.close()
        core.keywords_in_memory = None
    rss = _rss_mb()
    core.keep_keywords_in_memory()
    memory = core.keywords_in_memory
    if memory is None or not memory.wait():
        return {}
    return {
        "keyword_build_s": round(memory.build_seconds, 1),
        "keyword_memory_mb": round(_rss_mb() - rss),
    }


def _keyword_engine(core: IndexCore) -> str:
    """Which keyword query a search of ``core`` runs now."""
    memory = core.keywords_in_memory
    if memory is not None and memory.ready and core.vectors.count >= memory.threshold:
        return "tantivy (memory)"
    return "fts5" if core.store.dialect == "sqlite" else "tsvector"


def _latency(core: IndexCore, baseline: Embedder, questions: list[str]) -> dict[str, Any]:
    """New and old path, question by question in turn, and the index's recall@50. The old
    path runs the store's keyword query, the new one the in-memory index when it is built."""
    new_index, new_embedder, memory = core.vectors, core.embedder, core.keywords_in_memory
    engines = (_keyword_engine(core), "fts5" if core.store.dialect == "sqlite" else "tsvector")
    flat = VectorIndex(new_index.dimension, new_index.model, approximate_from=sys.maxsize)
    for ids, vectors in core.store.iter_vectors():
        flat.add(ids, vectors)
    new, old, new_cpu, old_cpu, recalls = [], [], [], [], []
    for question in questions:
        core.vectors, core.embedder, core.keywords_in_memory = new_index, new_embedder, memory
        wall, cpu = _timed(core, question)
        new.append(wall)
        new_cpu.append(cpu)
        core.vectors, core.embedder, core.keywords_in_memory = flat, baseline, None
        wall, cpu = _timed(core, question)
        old.append(wall)
        old_cpu.append(cpu)
        query = new_embedder.encode([question])[0]
        exact = set(flat.search(query, 50)[0].tolist())
        recalls.append(len(exact & set(new_index.search(query, 50)[0].tolist())) / len(exact))
    core.vectors, core.embedder, core.keywords_in_memory = new_index, new_embedder, memory
    return {
        "passages": new_index.count,
        "keyword_engine": engines[0],
        "old_keyword_engine": engines[1],
        **_percentiles(new),
        **{f"old_{key}": value for key, value in _percentiles(old).items()},
        "cpu_p50": round(statistics.median(new_cpu), 2),
        "old_cpu_p50": round(statistics.median(old_cpu), 2),
        "recall": round(statistics.fmean(recalls), 3),
    }


def _timed(core: IndexCore, question: str) -> tuple[float, float]:
    """Wall and CPU milliseconds (all threads of the process) of one search. On a busy
    machine the CPU time is the steadier figure: waiting for a core is not counted."""
    started, started_cpu = time.perf_counter(), time.process_time()
    core.search(question, k=3)
    return 1000 * (time.perf_counter() - started), 1000 * (time.process_time() - started_cpu)


def _percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return {
        "p50": round(statistics.median(ordered), 2),
        "p99": round(p99, 2),
        "mean": round(statistics.fmean(ordered), 2),
    }


def _million(data_dir: Path, questions: list[str], model_cache: Path) -> dict[str, Any]:
    """Fill to a million in one subprocess, then open and query it in another."""
    (data_dir / "questions.json").write_text(json.dumps(questions))
    environment = os.environ | {"MODEL_CACHE_DIR": str(model_cache.absolute())}
    for step in ("fill", "query"):
        done = subprocess.run(
            [sys.executable, "-m", "index.bench", step, str(data_dir), str(MILLION)],
            capture_output=True,
            text=True,
            check=False,
            env=environment,
        )
        if done.returncode:
            raise RuntimeError(f"the 1M {step} step failed:\n{done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.splitlines()[-1]))


def _point_main(argv: Sequence[str]) -> int:
    """The 1M subprocesses: ``fill DATA_DIR SIZE`` or ``query DATA_DIR SIZE``."""
    step, data_dir, size = argv[0], Path(argv[1]), int(argv[2])
    settings = IndexSettings().model_copy(update={"data_dir": data_dir})
    if step == "fill":
        store = Store(data_dir / "articles.sqlite3")
        pool = _sentence_pool(store)
        _fill(store, size, pool)
        model = store.get_meta("vectors_model") or ""
        index = vector_index_from_store(store, len(pool[0][1]), model)
        index.save(data_dir / "passages.faiss")
        store.close()
        return 0
    questions = json.loads((data_dir / "questions.json").read_text())
    core = IndexCore.open(settings)
    core.embedder.encode(["warm-up"])
    built = _keywords_in_memory(core)
    timings = [_timed(core, question) for question in questions]
    figures = _percentiles([wall for wall, _ in timings])
    print(
        json.dumps(
            {
                "query_p50_ms_1m": figures["p50"],
                "query_p99_ms_1m": figures["p99"],
                "query_p50_cpu_ms_1m": round(statistics.median(cpu for _, cpu in timings), 2),
                "peak_rss_mb_1m": round(_peak_rss_mb()),
                "index_1m": core.vectors.kind,
                "index_mb_1m": round(core.vectors.nbytes / 2**20),
                "passages_1m": core.vectors.count,
                "keyword_engine_1m": _keyword_engine(core),
                **{f"{key}_1m": value for key, value in built.items()},
            }
        )
    )
    core.close()
    return 0


def _rss_mb() -> float:
    """This process's resident memory now (Linux), in MB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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


Sentence = tuple[str, np.ndarray]


def _sentence_pool(store: Store, passages: int = 5000) -> list[Sentence]:
    """Real sentences and their vectors, from the first passages ingested."""
    rows = store.passages(store.passage_ids()[:passages]).values()
    return [
        (row.text[a:b], row.sentence_vectors[i])
        for row in rows
        for i, (a, b) in enumerate(row.sentences)
    ]


def _fill(store: Store, size: int, pool: list[Sentence]) -> None:
    """Add synthetic articles (5 passages of 4 pooled sentences) until the database holds
    ``size`` passages, many articles to a transaction. The rows are what
    ``Store.replace_article`` writes; the vector index is rebuilt from them afterwards."""
    rng = random.Random(size)
    number = store.counts().articles
    while (missing := size - store.counts().passages) > 0:
        batch = []
        for _ in range(0, min(missing, _FILL_TRANSACTION), 5):
            number += 1
            picks = [rng.randrange(len(pool)) for _ in range(20)]
            batch.append(_synthetic_article(number, picks, pool))
        store.put_articles(batch)


def _synthetic_article(number: int, picks: list[int], pool: list[Sentence]) -> StoredArticle:
    paragraphs = [" ".join(pool[i][0] for i in picks[p : p + 4]) for p in range(0, 20, 4)]
    article = make_article(
        title=f"Synthetic report {number}",
        text="\n\n".join(paragraphs),
        url=None,
        outlet="Synthetic",
        author=None,
        published=None,
        source=None,
    )
    now = datetime.now(UTC).isoformat(timespec="seconds")
    row = {
        "id": article.id,
        "title": article.title,
        "text": article.text,
        "outlet": article.outlet,
        "content_hash": article.id,
        "ingested_at": now,
        "updated_at": now,
    }
    passages = []
    offset = 0
    for position, text in enumerate(paragraphs):
        chosen = picks[4 * position : 4 * position + 4]
        spans, cursor = [], 0
        for i in chosen:
            spans.append((cursor, cursor + len(pool[i][0])))
            cursor += len(pool[i][0]) + 1
        sentence_vectors = np.stack([pool[i][1] for i in chosen])
        passages.append(
            {
                "position": position,
                "start": offset,
                "end": offset + len(text),
                "text": text,
                "sentences": json.dumps(spans),
                "vector": passage_vector(sentence_vectors).astype(np.float32).tobytes(),
                "sentence_vectors": sentence_vectors.astype(np.float16).tobytes(),
            }
        )
        offset += len(text) + 2
    return StoredArticle(row, passages)


if __name__ == "__main__":
    sys.exit(_point_main(sys.argv[1:]))
