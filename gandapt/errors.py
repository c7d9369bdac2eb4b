"""User-facing errors.

Anything a user can cause (a wrong path, a corrupt checkpoint, a pack for another model) raises a
:class:`GandaptError` whose message is one line naming the problem and the fix. The CLIs print that
line and exit non-zero without a traceback; library callers can catch it like any ``ValueError``.
"""

from __future__ import annotations

from typing import Any, Optional


class GandaptError(ValueError):
    """A problem with the user's input: one line, says what is wrong and how to fix it."""


class CheckpointError(GandaptError):
    """A checkpoint file is missing, corrupt, of an unknown format, or refused as unsafe."""


class DomainError(GandaptError):
    """A domain vector or domain pack does not fit the generator it is applied to."""


def one_line(text: Any, limit: Optional[int] = None) -> str:
    """Collapse ``text``'s whitespace (newlines included) to one line, optionally cut at ``limit`` chars."""
    s = " ".join(str(text).split())
    return s if limit is None or len(s) <= limit else s[: limit - 3] + "..."
