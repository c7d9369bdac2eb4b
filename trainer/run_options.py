"""The shared behaviour of every trainer's frozen options dataclass: its JSON form (saved as
``training_options.json`` beside each run) and the resume check against a checkpoint's options."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, FrozenSet, Iterable, Mapping, Tuple

from gandapt.errors import GandaptError


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

    def check_ranges(self, positive: Iterable[str] = (), non_negative: Iterable[str] = ()) -> None:
        """Refuse a rate, budget or size that cannot train, naming its CLI flag.

        Every number must be finite; the fields in ``positive`` must be > 0 (each element of a tuple),
        those in ``non_negative`` and every ``lambda_*`` loss weight >= 0. None (a method default still
        to fill in) passes.

        Raises:
            GandaptError: the first field out of range.
        """
        fields = {f.name for f in dataclasses.fields(self)}
        weights = [n for n in fields if n.startswith("lambda_")]
        for names, ok, want in ((positive, lambda v: v > 0, "> 0"),
                                (list(non_negative) + weights, lambda v: v >= 0, ">= 0")):
            for name in names:
                value = getattr(self, name)
                for v in value if isinstance(value, tuple) else (value,):
                    if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
                        continue
                    if not (math.isfinite(v) and ok(v)):
                        flag = "--" + name.replace("_", "-")
                        raise GandaptError(f"{flag} must be a finite number {want}, got {value}")
