"""Ingestion: batches, duplicates, replacements and bad inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from index import IndexCore
from tests.factories import SAMPLE, article, write_text


def _index_matches_database(core: IndexCore) -> bool:
    return sorted(core.vectors.ids().tolist()) == core.store.passage_ids()


def test_folder_is_ingested_recursively_with_a_summary(core: IndexCore, tmp_path: Path) -> None:
    write_text(tmp_path / "in", "a.txt", "volcano")
    write_text(tmp_path / "in" / "deeper", "b.md", "football")
    (tmp_path / "in" / "notes.pdf").write_bytes(b"%PDF")  # not an article format: skipped
    progress: list[tuple[int, int]] = []
    report = core.ingest(
        [str(tmp_path / "in"), str(SAMPLE)], progress=lambda d, t: progress.append((d, t))
    )
    assert sorted(report.added) == sorted(
        [
            "Volcano erupts near village",
            "Cup final won on penalties",
            core.article(report.article_ids[-1]).title,  # type: ignore[union-attr]
        ]
    )
    assert report.failed == [] and report.passages >= 3
    assert progress[-1] == (3, 3)
    assert _index_matches_database(core)


def test_same_article_twice_adds_nothing(core: IndexCore) -> None:
    core.ingest([str(SAMPLE)])
    passages = core.stats().passages
    report = core.ingest([str(SAMPLE)])
    assert report.unchanged and not report.added and not report.updated
    assert core.stats().passages == passages
    assert core.stats().articles == 1


def test_changed_version_replaces_passages_and_no_stale_vector_stays(core: IndexCore) -> None:
    url = "https://news.example/volcano"
    core.add_articles([article("volcano", url=url)])
    old_ids = core.store.passage_ids()
    changed = article("volcano", url=url, text="The volcano is quiet again. Tourists returned.")
    report = core.add_articles([changed])
    assert report.updated == ["Volcano erupts near village"] and not report.added
    assert core.stats().articles == 1
    assert not set(old_ids) & set(core.vectors.ids().tolist())
    assert _index_matches_database(core)
    hits = core.search("lava flows evacuated residents ash", k=5).hits
    assert all("lava" not in hit.passage for hit in hits)


def test_bad_file_is_reported_and_the_batch_goes_on(core: IndexCore, tmp_path: Path) -> None:
    good = write_text(tmp_path, "good.txt", "bank")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    binary = tmp_path / "image.txt"
    binary.write_bytes(b"\x00\x01\x02 binary")
    report = core.ingest([str(empty), str(binary), str(good), str(tmp_path / "missing.txt")])
    assert report.added == ["Central bank raises interest rates"]
    reasons = dict(report.failed)
    assert reasons[str(empty)] == "empty file"
    assert "binary" in reasons[str(binary)]
    assert reasons[str(tmp_path / "missing.txt")] == "no such file"


def test_too_large_file_is_refused_with_the_limit(core: IndexCore, tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("Headline\n\n" + "word " * (core.settings.max_input_bytes // 5 + 10))
    report = core.ingest([str(big)])
    [(name, reason)] = report.failed
    assert name == str(big) and "too large" in reason and "MAX_INPUT_BYTES" in reason
    assert core.stats().articles == 0


def test_failure_while_storing_leaves_nothing_half_ingested(
    core: IndexCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_text = "\n\n".join(f"Paragraph {i} about the volcano and its ash. " * 12 for i in range(4))
    store_article = core.store.replace_article

    def fail_after_two_passages(article_, digest, passages, vectors, sentences):  # type: ignore[no-untyped-def]
        # zip(strict=True) inside raises after the first two passages were inserted
        return store_article(article_, digest, passages, vectors[:2], sentences)

    monkeypatch.setattr(core.store, "replace_article", fail_after_two_passages)
    with pytest.raises(ValueError):
        core.add_articles([article("volcano", text=long_text)])
    assert core.store.counts().articles == 0
    assert core.store.passage_ids() == [] and core.vectors.count == 0


def test_remove_by_any_spelling_of_the_url_or_an_id_prefix(core: IndexCore) -> None:
    core.add_articles(
        [
            article("volcano", url="https://news.example/volcano"),
            article("bank", url="https://news.example/bank"),
        ]
    )
    removed = core.remove("HTTPS://NEWS.example/volcano/#comments")
    assert removed is not None and removed.title == "Volcano erupts near village"
    bank_id = core.store.latest(1)[0].id
    assert core.remove(bank_id[:8]) is not None
    assert core.remove("https://news.example/volcano") is None
    assert core.stats().articles == 0 and core.vectors.count == 0
