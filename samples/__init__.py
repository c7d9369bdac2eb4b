"""gandapt.samples: the embedded default model, pack, bundle and clip, shipped as package data.

The files live in ``data/`` beside this module, in the repository and in an installed copy alike.
"""

from __future__ import annotations

from pathlib import Path

from gandapt.errors import GandaptError


def data_dir() -> Path:
    """The folder holding the sample files."""
    return Path(__file__).resolve().parent / "data"


def data_path(name: str) -> Path:
    """Path of one sample file, e.g. ``data_path("tiny_g32.pt")``.

    Raises:
        GandaptError: no such sample file (lists the ones there are).
    """
    path = data_dir() / name
    if not path.is_file():
        have = sorted(p.name for p in data_dir().glob("*") if p.is_file()) if data_dir().is_dir() else []
        raise GandaptError(
            f"no sample file {name!r} in {data_dir()}; available: {', '.join(have) or 'none'}"
        )
    return path
