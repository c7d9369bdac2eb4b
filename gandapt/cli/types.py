"""Click parameter types shared by the command-line tools."""

from __future__ import annotations

import math

import click


class FiniteFloatRange(click.FloatRange):
    """``click.FloatRange`` that also refuses NaN (which compares false with both bounds and so
    passes a plain range check)."""

    name = "finite float range"

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if isinstance(rv, float) and math.isnan(rv):
            self.fail(f"{value!r} is not a number in {self._describe_range()}", param, ctx)
        return rv


PSI = FiniteFloatRange(0, 1)  # truncation ψ: 0 (the mean face) … 1 (no truncation)
