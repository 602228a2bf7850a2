"""Commands that never embed start without loading torch, onnxruntime or
sentence-transformers: each runs in a fresh interpreter that reports what it imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from index import IndexCore, IndexSettings
from index.database import head_revision, newest_revision_file
from index.embedding import model_identity
from index.settings import DEFAULT_MODEL
from tests.factories import article
from tests.fakes import HashEmbedder

ROOT = Path(__file__).resolve().parents[2]
MODEL_LIBRARIES = (
    "torch",
    "sentence_transformers",
    "onnxruntime",
    "transformers",
    "optimum.onnxruntime",
)

RUN_AND_REPORT = """
import json, sys
from {module} import main
try:
    code = main({argv!r})
except SystemExit as exit:
    code = exit.code
print(json.dumps({{"code": code, "modules": sorted(sys.modules)}}))
"""


def run_and_report(module: str, argv: list[str], data_dir: Path) -> tuple[int, set[str], str]:
    """Run ``module.main(argv)`` in a new interpreter: its exit code, the modules it had
    imported at the end, and its output."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATA_DIR": str(data_dir),
        "BOT_TOKEN": "123456:ABCdefGHIjkl",
    }
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_REPORT.format(module=module, argv=argv)],
        cwd=data_dir,  # no .env of the developer's is read
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    *output, report = done.stdout.strip().splitlines()
    result = json.loads(report)
    return result["code"], set(result["modules"]), "\n".join(output) + done.stderr


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An index of two articles whose vectors were made by the configured model and backend
    (so opening it has nothing to re-embed)."""
    settings = IndexSettings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    name = model_identity(DEFAULT_MODEL, settings.embedding_backend)
    core = IndexCore.open(settings, HashEmbedder(dimension=384, name=name))
    core.add_articles([article("volcano"), article("bank")])
    core.close()
    return tmp_path


def loaded(modules: set[str]) -> list[str]:
    return [name for name in MODEL_LIBRARIES if name in modules]


@pytest.mark.parametrize("argv", [["stats"], ["--help"]])
def test_index_commands_that_never_embed_load_no_model_library(
    data_dir: Path, argv: list[str]
) -> None:
    code, modules, output = run_and_report("index.cli", argv, data_dir)
    assert code == 0, output
    assert loaded(modules) == []
    if argv == ["stats"]:
        assert "articles     2" in output and "@" in output  # the backend is named


def test_stats_on_an_up_to_date_database_loads_neither_alembic_nor_aiohttp(
    data_dir: Path,
) -> None:
    code, modules, output = run_and_report("index.cli", ["stats"], data_dir)
    assert code == 0, output
    assert sorted({"alembic", "aiohttp"} & modules) == []


def test_the_newest_migration_file_names_alembics_head_revision() -> None:
    """Opening skips Alembic when the database is at the revision the newest file names."""
    assert newest_revision_file() == head_revision()


def test_removing_an_article_loads_no_model_library(data_dir: Path) -> None:
    code, modules, output = run_and_report("index.cli", ["remove", article("bank").id], data_dir)
    assert code == 0 and "removed" in output, output
    assert loaded(modules) == []


@pytest.mark.parametrize("argv", [["--help"], ["healthcheck"]])
def test_bot_help_and_healthcheck_load_no_model_library_nor_aiogram(
    tmp_path: Path, argv: list[str]
) -> None:
    (tmp_path / "heartbeat").write_text(str(time.time()))
    code, modules, output = run_and_report("bot.__main__", argv, tmp_path)
    assert code == 0, output
    assert loaded(modules) == []
    assert "aiogram" not in modules and "faiss" not in modules
    if argv == ["--help"]:
        assert "EMBEDDING_BACKEND" in output and "onnx-int8" in output
