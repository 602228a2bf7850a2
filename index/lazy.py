"""Names a package exports but imports on first use (PEP 562), so importing the package
stays cheap: ``from index import IndexSettings`` loads no FAISS, and a feed-parsing child
imports ``bot.feeds.parse`` without the poller's dependencies.

In the package's ``__init__.py``, next to the ``TYPE_CHECKING`` imports that type checkers
read::

    __getattr__, __dir__ = lazy_exports(__name__, {"IndexCore": "index.core", ...})
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, homes: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` for ``package``, whose names (the keys of
    ``homes``) are imported from their modules (the values) when first read, then kept."""
    module = sys.modules[package]

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        setattr(module, name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(module)) | set(homes))

    return __getattr__, __dir__
