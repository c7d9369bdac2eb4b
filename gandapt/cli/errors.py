"""Turn user errors into one line on stderr and a non-zero exit, never a traceback (DESIGN §9).

:func:`user_errors` works as a decorator on a click command or as a ``with`` block::

    @click.command()
    @user_errors()
    def main(path): ...

A :class:`~gandapt.errors.GandaptError` or a file-system error (missing file, no permission, a
directory where a file was expected) becomes a :class:`click.ClickException`: click prints
``Error: <message>`` and exits 1. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import click

from gandapt.errors import GandaptError, one_line  # noqa: F401 (re-exported for the CLIs)

_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


def describe_os_error(err: OSError) -> str:
    """``<path>: <reason>`` for an OSError, without errno noise."""
    reason = err.strerror or err.__class__.__name__
    if err.filename is None:
        return reason
    return f"{os.fsdecode(err.filename)}: {reason[0].lower()}{reason[1:]}"


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Re-raise user errors as :class:`click.ClickException` (usable as decorator or context)."""
    try:
        yield
    except GandaptError as err:
        raise click.ClickException(one_line(str(err)) or err.__class__.__name__) from None
    except _OS_ERRORS as err:
        raise click.ClickException(describe_os_error(err)) from None
