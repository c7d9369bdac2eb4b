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


class NotAvailableYet(click.ClickException):
    """A command whose implementation lands with a later issue; exits 2 with one line."""

    exit_code = 2

    def __init__(self, command: str, issues: str) -> None:
        super().__init__(f"{command} is not available yet: it arrives with {issues}.")


def pending_command(issues: str, arguments: str, help: str) -> click.Command:
    """A click command that documents a coming command and, when run, says which issue brings it.

    It takes any arguments, so a user trying the planned syntax gets the same one-line answer
    instead of a usage error.

    Args:
        issues: where it arrives, e.g. ``"issue #7"``.
        arguments: the planned positional arguments, for the usage line (``"MODEL OUT_DIR"``).
        help: the ``--help`` text describing the planned command.
    """

    @click.command(
        help=help,
        context_settings={"ignore_unknown_options": True, "help_option_names": ["-h", "--help"]},
    )
    @click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar=arguments)
    @click.pass_context
    def command(ctx: click.Context, args: tuple) -> None:
        raise NotAvailableYet(ctx.command_path, issues)

    return command
