"""Each input is all or nothing: a bad one gets a one-line reason, the rest are stored, and
the summary accounts for every file given."""

from __future__ import annotations

import logging
import os
import random
import re
import shutil
from pathlib import Path

import pytest

from index import IndexCore, IndexSettings
from tests.factories import SHARED, write_text
from tests.fakes import HashEmbedder

BBC_README = SHARED / "corpus" / "bbc-news-2005" / "README.TXT"


def _summary_total(summary: str) -> int:
    """The sum of every count in an ingest summary line."""
    return sum(int(number) for number in re.findall(r"\d+", summary))


def test_json_that_breaks_the_parser_fails_alone_and_the_batch_is_stored(
    core: IndexCore, tmp_path: Path
) -> None:
    first = write_text(tmp_path, "volcano.txt", "volcano")
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100_000 + "]" * 100_000)
    second = write_text(tmp_path, "bank.txt", "bank")
    huge = tmp_path / "huge-number.json"
    huge.write_text('{"title": "Numbers", "text": "Big.", "count": ' + "7" * 5000 + "}")

    report = core.ingest([str(first), str(nested), str(second), str(huge)])

    assert sorted(report.added) == [
        "Central bank raises interest rates",
        "Volcano erupts near village",
    ]
    reasons = dict(report.failed)
    assert reasons == {
        str(nested): "invalid JSON: nested too deeply",
        str(huge): "invalid JSON: a number is too long",
    }
    assert core.stats().articles == 2
    assert core.search("volcano ash evacuated").hits


def test_any_parser_exception_becomes_that_files_one_line_reason(
    core: IndexCore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from index import formats

    good = write_text(tmp_path, "bank.txt", "bank")
    odd = write_text(tmp_path, "odd.txt", "volcano")
    real_parse_text = formats.parse_text

    def parser_bug(text: str, *, source: str, url: str | None = None):  # type: ignore[no-untyped-def]
        if source.endswith("odd.txt"):
            raise LookupError("a bug\nspanning lines")
        return real_parse_text(text, source=source, url=url)

    monkeypatch.setattr(formats, "parse_text", parser_bug)
    report = core.ingest([str(odd), str(good)])
    assert report.added == ["Central bank raises interest rates"]
    [(name, reason)] = report.failed
    assert name == str(odd)
    assert reason == "cannot be parsed (LookupError: a bug spanning lines)"


def test_uploaded_document_that_breaks_the_parser_gets_a_reason(core: IndexCore) -> None:
    report = core.ingest_document("upload.json", b"[" * 100_000)
    assert report.failed == [("upload.json", "invalid JSON: nested too deeply")]


def test_summary_adds_up_to_the_files_given(core: IndexCore, tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    original = write_text(folder, "001.txt", "volcano")
    shutil.copy(original, folder / "002.txt")  # the same story saved twice
    shutil.copy(original, folder / "003.txt")
    write_text(folder, "004.txt", "bank")
    (folder / "005.json").write_text("{broken")
    shutil.copy(BBC_README, folder / "README.TXT")

    report = core.ingest([str(folder)])

    summary = report.summary()
    assert summary == (
        "added 2, updated 0, unchanged 0, failed 1, 2 duplicates of articles above, "
        "skipped 1 non-article file"
    )
    assert _summary_total(summary) == 6
    assert report.duplicates == [
        (str(folder / "002.txt"), str(original)),
        (str(folder / "003.txt"), str(original)),
    ]
    assert core.stats().articles == 2


def test_copies_in_later_batches_are_duplicates_not_unchanged(
    core: IndexCore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from index import core as core_module

    monkeypatch.setattr(core_module, "EMBED_BATCH_PASSAGES", 1)  # each file is its own batch
    folder = tmp_path / "in"
    original = write_text(folder, "a.txt", "volcano")
    shutil.copy(original, folder / "b.txt")
    write_text(folder, "c.txt", "bank")
    report = core.ingest([str(folder)])
    assert report.summary() == (
        "added 2, updated 0, unchanged 0, failed 0, 1 duplicate of an article above"
    )
    assert report.duplicates == [(str(folder / "b.txt"), str(original))]


def test_random_bytes_without_a_nul_are_refused_as_not_text(
    core: IndexCore, tmp_path: Path
) -> None:
    rng = random.Random(7)
    noise = tmp_path / "noise.txt"
    noise.write_bytes(bytes(rng.randrange(1, 256) for _ in range(20_000)))
    ascii_noise = tmp_path / "ascii-noise.txt"
    ascii_noise.write_bytes(bytes(rng.randrange(1, 128) for _ in range(20_000)))

    report = core.ingest([str(noise), str(ascii_noise)])

    reasons = dict(report.failed)
    assert reasons[str(noise)].startswith("not text")
    assert reasons[str(ascii_noise)].startswith("not text")
    assert core.stats().articles == 0


def test_legacy_encoded_and_non_latin_articles_are_still_text(
    core: IndexCore, tmp_path: Path
) -> None:
    latin1 = SHARED / "corpus" / "bbc-news-2005" / "sport" / "199.txt"
    russian = tmp_path / "ru.txt"
    russian.write_text("Разминирование\n\nСаперы обезвредили сотни мин за неделю.\n")  # noqa: RUF001
    report = core.ingest([str(latin1), str(russian)])
    assert report.failed == [] and len(report.added) == 2


def test_fifo_is_not_a_regular_file_and_does_not_block(core: IndexCore, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    report = core.ingest([str(fifo), str(tmp_path / "missing.txt")])
    assert dict(report.failed) == {
        str(fifo): "not a regular file (a FIFO)",
        str(tmp_path / "missing.txt"): "no such file",
    }


def test_readme_in_a_folder_is_skipped_but_ingested_when_named(
    core: IndexCore, tmp_path: Path
) -> None:
    folder = tmp_path / "bbc"
    folder.mkdir()
    shutil.copy(BBC_README, folder / "README.TXT")
    (folder / "LICENSE.md").write_text("Permission is granted\n\nto read this text.\n")
    write_text(folder / "business", "001.txt", "bank")

    from_folder = core.ingest([str(folder)])
    assert from_folder.added == ["Central bank raises interest rates"]
    assert sorted(from_folder.skipped) == [str(folder / "LICENSE.md"), str(folder / "README.TXT")]
    assert from_folder.summary().endswith("skipped 2 non-article files")

    named = core.ingest([str(folder / "README.TXT")])
    assert len(named.added) == 1 and not named.skipped


def test_vector_index_is_saved_when_the_last_batch_adds_nothing(
    settings: IndexSettings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    paragraphs = "\n\n".join(
        f"Paragraph {i} tells how the volcano sent ash over village number {i}. "
        "Residents left their homes and the airport closed." * 3
        for i in range(350)
    )  # two such files pass the size at which a batch is embedded and stored
    big = [
        write_text(tmp_path, f"big-{n}.txt", "volcano", body=f"Part {n}.\n\n{paragraphs}")
        for n in (1, 2)
    ]
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    core = IndexCore.open(settings, HashEmbedder())
    report = core.ingest([*map(str, big), str(empty)])
    assert len(report.added) == 2 and len(report.failed) == 1
    core.close()

    with caplog.at_level(logging.WARNING):
        again = IndexCore.open(settings, HashEmbedder())
    assert "Rebuilding" not in caplog.text
    assert again.vectors.count == again.stats().passages == report.passages
    again.close()
