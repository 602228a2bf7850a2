"""``python -m index eval``: retrieval quality on a SQuAD-format file.

Every paragraph becomes one passage (its SQuAD article title as headline) in a fresh
index in a temporary folder; every question is searched against all of them. R@k is the
share of questions whose own paragraph is among the first k results; MRR@10 the mean of
1/rank (0 beyond 10). With ``--refusal`` it also reports, per relevance threshold, how
often answerable questions are wrongly refused, unanswerable ones (SQuAD 2.0) wrongly
answered, and off-topic ones (questions about the first half of the articles searched
against the second half only) wrongly answered.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from index.core import IndexCore
from index.embedding import Embedder
from index.formats import make_article
from index.models import SearchFilters, SearchResult
from index.search import terms
from index.settings import IndexSettings
from index.store import match_expression

CUTOFFS = (1, 5, 10)
# Paragraphs are tagged by half as their outlet, so that questions about the first half can
# also be searched against the second half only: realistic off-topic questions.
FIRST_HALF, SECOND_HALF = "SQuAD first half", "SQuAD second half"


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    article_id: str  # of its paragraph
    answerable: bool
    first_half: bool  # asked about one of the first half of the SQuAD articles


def load_squad(path: str) -> tuple[list, list[Question]]:  # type: ignore[type-arg]
    """Paragraph articles and questions of a SQuAD v1.1 / v2.0 file."""
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
                Question(qa["question"], article.id, not qa.get("is_impossible", False), first_half)
                for qa in paragraph["qas"]
            ]
    return articles, questions


def metrics(ranks: list[int | None]) -> dict[str, float]:
    """R@1, R@5, R@10 and MRR@10 from 1-based ranks (None: not in the top 10)."""
    n = max(len(ranks), 1)
    result = {f"R@{k}": sum(1 for r in ranks if r and r <= k) / n for k in CUTOFFS}
    result["MRR@10"] = sum(1 / r for r in ranks if r and r <= 10) / n
    return {key: round(value, 4) for key, value in result.items()}


def _rank_of(target: str, ranked: list[str]) -> int | None:
    return ranked.index(target) + 1 if target in ranked else None


def run_eval(
    path: str,
    settings: IndexSettings,
    *,
    as_json: bool,
    limit: int | None,
    refusal: bool,
    embedder: Embedder | None = None,
) -> int:
    articles, questions = load_squad(path)
    questions = questions[:limit] if limit else questions
    with tempfile.TemporaryDirectory(prefix="squad-eval-") as folder:
        eval_settings = settings.model_copy(
            update={"data_dir": Path(folder), "passage_chars": 100_000}
        )
        core = IndexCore.open(eval_settings, embedder)
        started = time.perf_counter()
        core.add_articles(articles)
        ingest_seconds = time.perf_counter() - started
        core.min_relevance = -math.inf  # rank everything; thresholds are judged below
        # Rank everything: the cut of weak trailing hits only shortens what a user is shown.
        core.recipe = replace(core.recipe, per_article=1)
        core.min_hit_share = 0.0
        owner = {
            pid: row.article_id
            for pid, row in core.store.passages(core.store.passage_ids()).items()
        }
        started = time.perf_counter()
        vectors = core.embedder.encode([q.text for q in questions])
        ranks: dict[str, list[int | None]] = {"dense": [], "keyword": [], "hybrid": []}
        top_scores, off_topic_scores = [], []
        off_topic = SearchFilters(outlets=(SECOND_HALF,))
        for question, vector in zip(questions, vectors, strict=True):
            ids, _ = core.vectors.search(vector, 10)
            ranks["dense"].append(_rank_of(question.article_id, [owner[int(i)] for i in ids]))
            words = terms(question.text)
            keyword = (
                core.store.keyword_search(
                    match_expression(words),
                    10,
                    None,
                    (core.recipe.title_weight, core.recipe.body_weight),
                )
                if words
                else []
            )
            ranks["keyword"].append(_rank_of(question.article_id, [owner[i] for i, _ in keyword]))
            result = core.search_vector(question.text, vector, k=10)
            ranks["hybrid"].append(
                _rank_of(question.article_id, [h.article_id for h in result.hits])
            )
            top_scores.append(_relevance(result))
            if refusal and question.answerable and question.first_half:
                off_topic_scores.append(
                    _relevance(core.search_vector(question.text, vector, filters=off_topic))
                )
        search_seconds = time.perf_counter() - started
        core.close()
    answerable = [q.answerable for q in questions]
    report: dict[str, object] = {
        "file": path,
        "paragraphs": len(articles),
        "questions": len(questions),
        "model": settings.embedding_model,
        "ingest_seconds": round(ingest_seconds, 1),
        "search_seconds": round(search_seconds, 1),
        **{
            name: metrics([r for r, a in zip(rs, answerable, strict=True) if a])
            for name, rs in ranks.items()
        },
    }
    if refusal:
        report["refusal"] = refusal_table(
            np.array(top_scores), np.array(answerable), np.array(off_topic_scores)
        )
    print(json.dumps(report, indent=2) if as_json else _format(report))
    return 0


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
    for delta in (-0.1, 0.0, 0.1, 0.2, 0.3):
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
    lines = [
        f"{report['questions']} questions against {report['paragraphs']} paragraphs "
        f"({report['file']}, model {report['model']})",
        f"ingest {report['ingest_seconds']} s, search {report['search_seconds']} s",
        "",
        f"{'retriever':<10}{'R@1':>8}{'R@5':>8}{'R@10':>8}{'MRR@10':>8}",
    ]
    for name in ("dense", "keyword", "hybrid"):
        m = report[name]
        assert isinstance(m, dict)
        lines.append(
            f"{name:<10}" + "".join(f"{m[k]:>8.3f}" for k in ("R@1", "R@5", "R@10", "MRR@10"))
        )
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
