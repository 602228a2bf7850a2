"""The index's exceptions. Every message is one line that says what went wrong and what to do.

The root is ``ArticleIndexError``:

- ``InputError``: one input (file, page, record) cannot be ingested; the batch goes on.
- ``FetchError(InputError)``: a URL could not be fetched.
- ``ModelError``: the embedding model cannot be loaded.
- ``StorageError``: the database cannot be used as it is (written by a newer program, a
  backup that cannot be restored, ...); nothing was changed.
- ``DamagedDatabaseError(StorageError)``: the database fails its integrity check or is not a
  database at all; nothing is written to it. The message says how to restore it.
"""

from __future__ import annotations

from pathlib import Path


class ArticleIndexError(Exception):
    """Root of the index's exceptions."""


class InputError(ArticleIndexError):
    """An input cannot be ingested: the message names the reason."""


class FetchError(InputError):
    """A URL could not be fetched."""


class ModelError(ArticleIndexError):
    """The embedding model cannot be loaded."""


class StorageError(ArticleIndexError):
    """The database cannot be used as it is; nothing was changed."""


class DamagedDatabaseError(StorageError):
    """The database is damaged; it is left as it is and nothing is written to it."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = path
        self.problem = " ".join(problem.split())
        super().__init__(
            f"{path} is damaged ({self.problem}); nothing was written to it: restore a backup "
            "with `python -m index restore FILE`, or see `python -m index check` for details"
        )
