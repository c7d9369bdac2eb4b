"""Lazy package exports: names load from their submodule on first use (keeps imports cheap).

Packages that must import without torch (``gandapt``, ``gandapt.trainer.data``,
``gandapt.trainer.metrics``) expose their public names this way (PEP 562).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Dict, List, Tuple


def lazy_exports(package: str, names: Dict[str, str]) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """Build a module ``__getattr__`` and ``__dir__`` serving ``names``.

    Args:
        package: the package's ``__name__``.
        names: exported name → submodule, relative to ``package`` (``"folder"``) or absolute
            when it contains a dot (``"gandapt.layout"``).

    Returns:
        ``(__getattr__, __dir__)`` to assign in the package's ``__init__``.
    """
    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        target = names[name] if "." in names[name] else f"{package}.{names[name]}"
        value = getattr(importlib.import_module(target), name)
        setattr(sys.modules[package], name, value)  # cache: later lookups skip this
        return value

    def __dir__() -> List[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__
