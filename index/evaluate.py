"""``python -m index eval``: retrieval quality on a SQuAD-format file.

Works on SQuAD v1.1 / v2.0 and on any file in the same layout, such as the news-quiz set.
Every paragraph becomes one passage (its SQuAD article title as headline) in a fresh
index; every question is searched against all of them. R@k is the share of questions whose
own paragraph is among the first k results; MRR@10 the mean of 1/rank (0 beyond 10).

It also reports:

- **quotes:** of the questions whose paragraph is among the hybrid top 10 ("gold hit"),
  the share whose answer (any of the file's answer strings, case-insensitive) lies inside
  the quote the search returns for that hit, i.e. the sentences shown in bold;
- with ``--typos``: the same figures for the questions with one or two typos injected at a
  fixed seed (``add_typos``);
- with ``--refusal``: per relevance threshold, how often answerable questions are wrongly
  refused, unanswerable ones (SQuAD 2.0) wrongly answered, and off-topic ones (questions
  about the first half of the articles searched against the second half only) wrongly
  answered.

``--cache-dir`` keeps the embedded index between runs (keyed by the file, the model and
its backend, and the schema), which spares re-embedding 16k passages on every iteration.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from index.core import IndexCore
from index.embedding import Embedder, create_embedder
from index.formats import make_article
from index.models import Article, SearchFilters, SearchResult
from index.search import STOP_WORDS, terms
from index.settings import IndexSettings
from index.store import SCHEMA_VERSION

CUTOFFS = (1, 5, 10)
# Paragraphs are tagged by half as their outlet, so that questions about the first half can
# also be searched against the second half only: realistic off-topic questions.
FIRST_HALF, SECOND_HALF = "first half", "second half"
TYPO_SEED = 2026
THRESHOLD_STEPS = (-0.15, -0.1, -0.05, 0.0, 0.05, 0.1, 0.15, 0.2, 0.3)


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    article_id: str  # of its paragraph
    answerable: bool
    first_half: bool  # asked about one of the first half of the file's articles
    answers: tuple[str, ...] = ()


def load_squad(path: str) -> tuple[list[Article], list[Question]]:
    """Paragraph articles and questions of a SQuAD v1.1 / v2.0 layout file."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    articles, questions = [], []
    for number, entry in enumerate(data):
        title = entry["title"].replace("_", " ")
        first_half = number < len(data) // 2
        for paragraph in entry["paragraphs"]:
            article = make_article(
                title=title,
                text=paragraph["context"],
                url=None,
                outlet=FIRST_HALF if first_half else SECOND_HALF,
                author=None,
                published=None,
                source=path,
            )
            articles.append(article)
            questions += [
                Question(
                    qa["question"],
                    article.id,
                    not qa.get("is_impossible", False),
                    first_half,
                    tuple(a["text"] for a in qa.get("answers", ())),
                )
                for qa in paragraph["qas"]
            ]
    return articles, questions


# -- typos ------------------------------------------------------------------------------

_LETTERS = re.compile(r"[A-Za-z]+")
_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS = {
    letter: "".join(
        rows[j]
        for rows in _KEYBOARD_ROWS[max(r - 1, 0) : r + 2]
        for j in (i - 1, i, i + 1)
        if 0 <= j < len(rows) and rows[j] != letter
    )
    for r, row in enumerate(_KEYBOARD_ROWS)
    for i, letter in enumerate(row)
}


def misspell(word: str, rng: random.Random) -> str:
    """One typing slip in a word, its first letter kept: a letter dropped, two neighbours
    swapped, a letter doubled, or a letter replaced by a key next to it."""
    i = rng.randrange(1, len(word))
    kind = rng.choice(("drop", "swap", "double", "replace"))
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "swap" and i < len(word) - 1 and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "double":
        return word[: i + 1] + word[i:]
    near = _NEIGHBOURS.get(word[i].lower())
    if near:
        return word[:i] + rng.choice(near) + word[i + 1 :]
    return word[:i] + word[i + 1 :]


def add_typos(question: str, seed: int = TYPO_SEED) -> str:
    """The question with one or two of its words of four letters or more (not stop words)
    misspelled; the same question and seed always give the same result."""
    rng = random.Random(f"{seed}:{question}")
    eligible = [
        match.span()
        for match in _LETTERS.finditer(question)
        if len(match.group()) >= 4 and match.group().lower() not in STOP_WORDS
    ]
    if not eligible:
        return question
    chosen = rng.sample(eligible, min(len(eligible), rng.choice((1, 2))))
    for start, end in sorted(chosen, reverse=True):  # right to left keeps offsets valid
        question = question[:start] + misspell(question[start:end], rng) + question[end:]
    return question


# -- measuring --------------------------------------------------------------------------


def metrics(ranks: list[int | None]) -> dict[str, float]:
    """R@1, R@5, R@10 and MRR@10 from 1-based ranks (None: not in the top 10)."""
    n = max(len(ranks), 1)
    result = {f"R@{k}": sum(1 for r in ranks if r and r <= k) / n for k in CUTOFFS}
    result["MRR@10"] = sum(1 / r for r in ranks if r and r <= 10) / n
    return {key: round(value, 4) for key, value in result.items()}


def _rank_of(target: str, ranked: list[str]) -> int | None:
    return ranked.index(target) + 1 if target in ranked else None


@dataclass(slots=True)
class _Run:
    """What searching one list of questions measured."""

    ranks: dict[str, list[int | None]]
    relevance: list[float]
    quoted: list[bool]  # per question whose gold paragraph is a hit: answer inside the quote
    quote_chars: list[int]
    passage_chars: list[int]
    off_topic: list[float]


def _search_all(
    core: IndexCore,
    questions: Sequence[Question],
    owner: dict[int, str],
    *,
    off_topic: bool,
    cache_dir: Path | None,
) -> _Run:
    vectors = _encode([q.text for q in questions], core.embedder, cache_dir)
    run = _Run({"dense": [], "keyword": [], "hybrid": []}, [], [], [], [], [])
    second_half = SearchFilters(outlets=(SECOND_HALF,))
    for question, vector in zip(questions, vectors, strict=True):
        ids, _ = core.vectors.search(vector, 10)
        run.ranks["dense"].append(_rank_of(question.article_id, [owner[int(i)] for i in ids]))
        words = terms(question.text)
        keyword = (
            core.store.keyword_search(
                words,
                10,
                None,
                (core.recipe.title_weight, core.recipe.body_weight),
            )
            if words
            else []
        )
        run.ranks["keyword"].append(_rank_of(question.article_id, [owner[i] for i, _ in keyword]))
        result = core.search_vector(question.text, vector, k=10)
        hits = [h.article_id for h in result.hits]
        run.ranks["hybrid"].append(_rank_of(question.article_id, hits))
        run.relevance.append(_relevance(result))
        gold = next((h for h in result.hits if h.article_id == question.article_id), None)
        if gold is not None and question.answerable and question.answers:
            quote = gold.quote.casefold()
            run.quoted.append(any(a.casefold() in quote for a in question.answers))
            run.quote_chars.append(len(gold.quote))
            run.passage_chars.append(len(gold.passage))
        if off_topic and question.answerable and question.first_half:
            run.off_topic.append(
                _relevance(core.search_vector(question.text, vector, filters=second_half))
            )
    return run


def _encode(texts: list[str], embedder: Embedder, cache_dir: Path | None) -> np.ndarray:
    """The questions' vectors, kept in ``cache_dir`` (if given) for the next run."""
    if cache_dir is None:
        return embedder.encode(texts)
    key = hashlib.sha256("\n".join([embedder.name, *texts]).encode()).hexdigest()[:16]
    path = cache_dir / f"questions-{key}.npy"
    if path.exists():
        return np.load(path)
    vectors = embedder.encode(texts)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


@contextmanager
def _eval_index(
    path: str,
    articles: list[Article],
    settings: IndexSettings,
    embedder: Embedder | None,
    cache_dir: Path | None,
) -> Iterator[tuple[IndexCore, float | None]]:
    """An index holding every paragraph, and the seconds its ingestion took (None when it
    came from ``cache_dir``)."""
    embedder = embedder or create_embedder(settings)  # made before DATA_DIR is replaced, so
    # the ONNX export is cached in the real DATA_DIR/models, not in a scratch folder
    with tempfile.TemporaryDirectory(prefix="squad-eval-") as scratch:
        folder = Path(scratch)
        if cache_dir is not None:
            folder = cache_dir / _cache_key(path, settings, embedder)
        eval_settings = settings.model_copy(update={"data_dir": folder, "passage_chars": 100_000})
        complete = folder / "complete"
        core = IndexCore.open(eval_settings, embedder)
        try:
            seconds = None
            if not complete.exists():
                started = time.perf_counter()
                core.add_articles(articles)
                seconds = time.perf_counter() - started
                if cache_dir is not None:
                    core.save()
                    complete.touch()
            yield core, seconds
        finally:
            core.close()


def _cache_key(path: str, settings: IndexSettings, embedder: Embedder | None) -> str:
    stat = Path(path).stat()
    key = json.dumps(
        [
            str(Path(path).resolve()),
            stat.st_size,
            stat.st_mtime_ns,
            settings.embedding_model,
            str(getattr(settings, "embedding_backend", "")),
            embedder.name if embedder else None,
            SCHEMA_VERSION,
        ],
        sort_keys=True,
    )
    return Path(path).stem + "-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def run_eval(
    path: str,
    settings: IndexSettings,
    *,
    as_json: bool,
    limit: int | None,
    refusal: bool,
    every: int = 1,
    embedder: Embedder | None = None,
    typos: bool = False,
    typo_seed: int = TYPO_SEED,
    cache_dir: Path | None = None,
) -> int:
    articles, questions = load_squad(path)
    questions = questions[::every][:limit] if limit else questions[::every]
    with _eval_index(path, articles, settings, embedder, cache_dir) as (core, ingest_seconds):
        core.min_relevance = -math.inf  # rank everything; thresholds are judged below
        # Rank everything: the cut of weak trailing hits only shortens what a user is shown.
        core.recipe = replace(core.recipe, per_article=1)
        core.min_hit_share = 0.0
        owner = {
            pid: row.article_id
            for pid, row in core.store.passages(core.store.passage_ids()).items()
        }
        started = time.perf_counter()
        clean = _search_all(core, questions, owner, off_topic=refusal, cache_dir=cache_dir)
        search_seconds = time.perf_counter() - started
        typo_run = None
        if typos:
            misspelt = [replace(q, text=add_typos(q.text, typo_seed)) for q in questions]
            typo_run = _search_all(core, misspelt, owner, off_topic=False, cache_dir=cache_dir)
    answerable = [q.answerable for q in questions]
    report: dict[str, object] = {
        "file": path,
        "paragraphs": len(articles),
        "questions": len(questions),
        "model": settings.embedding_model,
        "ingest_seconds": round(ingest_seconds, 1) if ingest_seconds is not None else None,
        "search_seconds": round(search_seconds, 1),
        **_retrievers(clean, answerable),
        "quotes": _quotes(clean),
    }
    if typo_run is not None:
        report["typos"] = {"seed": typo_seed, **_retrievers(typo_run, answerable)}
    if refusal:
        report["refusal"] = refusal_table(
            np.array(clean.relevance), np.array(answerable), np.array(clean.off_topic)
        )
    print(json.dumps(report, indent=2) if as_json else _format(report))
    return 0


def _retrievers(run: _Run, answerable: list[bool]) -> dict[str, dict[str, float]]:
    return {
        name: metrics([r for r, a in zip(ranks, answerable, strict=True) if a])
        for name, ranks in run.ranks.items()
    }


def _quotes(run: _Run) -> dict[str, float | int]:
    n = len(run.quoted)
    return {
        "gold_hits": n,
        "answer_in_quote": round(sum(run.quoted) / n, 4) if n else float("nan"),
        "mean_quote_chars": round(sum(run.quote_chars) / n) if n else 0,
        "mean_passage_chars": round(sum(run.passage_chars) / n) if n else 0,
    }


def _relevance(result: SearchResult) -> float:
    return result.relevance if result.relevance is not None else -math.inf


def refusal_table(
    scores: np.ndarray, answerable: np.ndarray, off_topic: np.ndarray
) -> list[dict[str, float]]:
    """Per threshold: answerable questions wrongly refused (top relevance below it),
    unanswerable ones (SQuAD 2.0, written against the same paragraph) wrongly answered, and
    off-topic ones (first-half questions against second-half paragraphs) wrongly answered."""
    from index.search import DEFAULT_MIN_RELEVANCE

    def share(mask: np.ndarray) -> float:
        return round(float(mask.mean()), 4) if len(mask) else float("nan")

    rows = []
    for delta in THRESHOLD_STEPS:
        threshold = round(DEFAULT_MIN_RELEVANCE + delta, 3)
        rows.append(
            {
                "threshold": threshold,
                "answerable_refused": share(scores[answerable] < threshold),
                "unanswerable_answered": share(scores[~answerable] >= threshold),
                "off_topic_answered": share(off_topic >= threshold),
            }
        )
    return rows


def _format(report: dict[str, object]) -> str:
    ingest = report["ingest_seconds"]
    lines = [
        f"{report['questions']} questions against {report['paragraphs']} paragraphs "
        f"({report['file']}, model {report['model']})",
        f"ingest {'(cached index)' if ingest is None else f'{ingest} s'}, "
        f"search {report['search_seconds']} s",
        "",
        f"{'retriever':<16}{'R@1':>8}{'R@5':>8}{'R@10':>8}{'MRR@10':>8}",
    ]
    typos = report.get("typos")
    for prefix, figures in (("", report), ("typos ", typos)):
        if not isinstance(figures, dict):
            continue
        for name in ("dense", "keyword", "hybrid"):
            m = figures[name]
            lines.append(
                f"{prefix + name:<16}"
                + "".join(f"{m[k]:>8.3f}" for k in ("R@1", "R@5", "R@10", "MRR@10"))
            )
    if isinstance(typos, dict):
        loss = report["hybrid"]["R@5"] - typos["hybrid"]["R@5"]  # type: ignore[index]
        lines.append(f"(typos: seed {typos['seed']}; hybrid R@5 loses {loss * 100:.1f} points)")
    quotes = report["quotes"]
    assert isinstance(quotes, dict)
    lines += [
        "",
        f"answer inside the bold quote of the gold hit: {quotes['answer_in_quote']:.1%} "
        f"of {quotes['gold_hits']} questions whose paragraph is a top-10 hybrid hit "
        f"(quote {quotes['mean_quote_chars']} chars on average, "
        f"passage {quotes['mean_passage_chars']})",
    ]
    if "refusal" in report:
        lines += [
            "",
            f"{'threshold':>10}{'answerable refused':>20}{'unanswerable answered':>23}"
            f"{'off-topic answered':>20}",
        ]
        for row in report["refusal"]:  # type: ignore[attr-defined]
            lines.append(
                f"{row['threshold']:>10.2f}{row['answerable_refused']:>20.1%}"
                f"{row['unanswerable_answered']:>23.1%}{row['off_topic_answered']:>20.1%}"
            )
    return "\n".join(lines)
