"""The benchmark commands run end to end (on tiny inputs, with the fake embedder)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from index import IndexSettings
from index import vectors as vectors_module
from index.bench import run_bench
from index.evaluate import run_eval
from tests.factories import TOPICS, write_text
from tests.fakes import HashEmbedder


def _squad(path: Path) -> Path:
    """A SQuAD 2.0-style file: one paragraph per topic, one answerable and one
    unanswerable question each."""
    data = [
        {
            "title": title.replace(" ", "_"),
            "paragraphs": [
                {
                    "context": text,
                    "qas": [
                        {"question": f"What about {title.lower()}?", "is_impossible": False},
                        {"question": "Who painted the ceiling?", "is_impossible": True},
                    ],
                }
            ],
        }
        for title, text in TOPICS.values()
    ]
    path.write_text(json.dumps({"version": "v2.0", "data": data}))
    return path


def test_eval_prints_recall_for_each_retriever_and_the_refusal_table(
    tmp_path: Path, settings: IndexSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    squad = _squad(tmp_path / "squad.json")
    run_eval(str(squad), settings, as_json=True, limit=None, refusal=True, embedder=HashEmbedder())
    report = json.loads(capsys.readouterr().out)
    assert report["paragraphs"] == 3 and report["questions"] == 6
    assert report["hybrid"]["R@1"] == 1.0  # each question names its own headline
    assert set(report["dense"]) == {"R@1", "R@5", "R@10", "MRR@10"}
    [row, *_] = report["refusal"]
    assert set(row) == {
        "threshold",
        "answerable_refused",
        "unanswerable_answered",
        "off_topic_answered",
    }


def test_eval_samples_every_nth_question(
    tmp_path: Path, settings: IndexSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    squad = _squad(tmp_path / "squad.json")
    run_eval(
        str(squad),
        settings,
        as_json=True,
        limit=None,
        refusal=False,
        every=2,
        embedder=HashEmbedder(),
    )
    report = json.loads(capsys.readouterr().out)
    assert report["questions"] == 3  # of 6 (each paragraph's first question)


def test_bench_reports_throughput_overhead_latency_and_memory(
    tmp_path: Path, settings: IndexSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    for number, topic in enumerate(TOPICS):
        write_text(tmp_path / "corpus" / topic, f"{number}.txt", topic)
    corpus = str(tmp_path / "corpus")
    old = HashEmbedder(name="old-embedder")
    run_bench(corpus, settings, [20, 50], 5, embedder=HashEmbedder(), baseline=old, million=False)
    out = capsys.readouterr().out
    assert "corpus: 3 articles" in out
    assert "passages/s" in out and "speedup" in out
    assert "p50" in out and "old:" in out and "peak memory" in out
    latency_rows = [line.split() for line in out.splitlines() if line.strip()[:2].isdigit()]
    sizes = [int(row[0]) for row in latency_rows]
    assert len(sizes) == 2 and 20 <= sizes[0] < 25 and 50 <= sizes[1] < 55  # 5 per article


def test_bench_json_names_each_figure_next_to_the_old_path(
    tmp_path: Path,
    settings: IndexSettings,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(vectors_module, "APPROXIMATE_FROM", 30)  # the 60-passage point is IVF
    for number, topic in enumerate(TOPICS):
        write_text(tmp_path / "corpus" / topic, f"{number}.txt", topic)
    corpus = str(tmp_path / "corpus")
    old = HashEmbedder(name="old-embedder")
    run_bench(
        corpus,
        settings,
        [60],
        5,
        embedder=HashEmbedder(),
        baseline=old,
        as_json=True,
        million=False,
    )
    figures = json.loads(capsys.readouterr().out)
    assert figures["latency_60"]["passages"] >= 60
    assert 0 < figures["ivf_recall_at_50"] <= 1
    for key in (
        "query_p50_ms",
        "query_p99_ms",
        "baseline_query_p50_ms",
        "ingest_passages_per_s",
        "ingest_speedup",
        "peak_rss_mb",
    ):
        assert figures[key] > 0, key
    assert figures["baseline"] == "old-embedder + flat"
