"""The index's exceptions. Every message says what went wrong and what to do.

The root is ``ArticleIndexError``:

- ``InputError``: one input (file, page, record) cannot be ingested; the batch goes on.
- ``FetchError(InputError)``: a URL could not be fetched.
- ``ModelError``: the embedding model cannot be loaded.
"""

from __future__ import annotations


class ArticleIndexError(Exception):
    """Root of the index's exceptions."""


class InputError(ArticleIndexError):
    """An input cannot be ingested: the message names the reason."""


class FetchError(InputError):
    """A URL could not be fetched."""


class ModelError(ArticleIndexError):
    """The embedding model cannot be loaded."""
