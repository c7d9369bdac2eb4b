"""The shared behaviour of every trainer's frozen options dataclass: its JSON form (saved as
``training_options.json`` beside each run) and the resume check against a checkpoint's options."""

from __future__ import annotations

import dataclasses
from typing import Any, FrozenSet, Mapping, Tuple


class RunOptions:
    """Mixin for a frozen dataclass of run settings.

    Subclasses set ``resumable``: the fields a resumed run may change (output paths, budgets,
    threads, progress); any other difference means the checkpoint belongs to another run.
    """

    resumable: FrozenSet[str] = frozenset()

    def to_dict(self) -> dict:
        """Plain JSON-ready values: tuples become lists."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]):
        """The options back from :meth:`to_dict` (unknown keys, e.g. from a newer version, are dropped)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in names})

    def incompatible_with(self, other: "RunOptions") -> Tuple[str, ...]:
        """Fields whose difference means ``other``'s checkpoint cannot be resumed with these options."""
        a, b = self.to_dict(), other.to_dict()
        return tuple(k for k in a if k not in self.resumable and a[k] != b.get(k))
