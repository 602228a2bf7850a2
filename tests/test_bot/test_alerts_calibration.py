"""The topic-threshold calibration command runs end to end (tiny file, fake embedder)."""

from __future__ import annotations

import json
from pathlib import Path

from bot.alerts.calibrate import THRESHOLDS, calibrate
from tests.factories import TOPICS
from tests.fakes import HashEmbedder


def test_calibration_reports_precision_and_recall_per_threshold(tmp_path: Path) -> None:
    data = [
        {"title": topic, "paragraphs": [{"context": text, "qas": []}]}
        for topic, (_, text) in TOPICS.items()
    ]
    path = tmp_path / "squad.json"
    path.write_text(json.dumps({"data": data}))

    rows = calibrate(str(path), HashEmbedder())

    assert [row["threshold"] for row in rows] == list(THRESHOLDS)
    recalls = [row["recall"] for row in rows]
    assert recalls == sorted(recalls, reverse=True)  # a higher bar alerts less
    assert all(0.0 <= row["precision"] <= 1.0 for row in rows)
