"""What every command shares: exit statuses, how a line reaches the user, and option word lists.

Everything a command prints on standard output goes through `out`: a full
disk (`> /dev/full`) is one line, `kvmlint: cannot write output: ...`, exit
status 2; a reader that went away (`| head -1`) ends the command quietly with
status 1, as other tools end.  Either way standard output then leads to
/dev/null, so the interpreter's last flush has nothing to fail on.
"""

from __future__ import annotations

import os
import sys
import traceback
from contextlib import contextmanager

import click

from kvmlint.errors import UsageError
from kvmlint.terminal import for_terminal, lines_for_terminal

EXIT_FINDINGS = 1
EXIT_USAGE = 2


def split_words(values: tuple[str, ...]) -> list[str]:
    return [word for value in values for word in value.split(",") if word.strip()]


def out(text: str, nl: bool = True, err: bool = False) -> None:
    """`text` as it is (a report, a diff) on standard output, or with `err` on standard error."""
    if err:
        _to_stderr(text, nl)
        return
    with _writing_stdout():
        click.echo(text, nl=nl)


@contextmanager
def click_output():
    """What click prints itself (`--help`, `--version`) fails as `out` does; any other OSError passes."""
    try:
        yield
    except OSError as error:
        if not any(frame.f_code is click.utils.echo.__code__ for frame, _ in traceback.walk_tb(error.__traceback__)):
            raise
        with _writing_stdout():
            raise


@contextmanager
def _writing_stdout():
    """OSError while writing standard output as one line (UsageError), a gone reader as BrokenPipeError
    (click ends the command quietly with status 1); either way standard output leads nowhere after."""
    try:
        yield
    except BrokenPipeError:
        _discard(1)
        raise
    except OSError as error:
        _discard(1)
        raise UsageError(f"cannot write output: {error.strerror or error}") from None


def _to_stderr(text: str, nl: bool = True) -> None:
    """A standard error that cannot take `text` (`2> /dev/full`) loses it: there is nowhere left to say so."""
    try:
        click.echo(text, nl=nl, err=True)
    except OSError:
        _discard(2)


def echo(line: str, lines: bool = False) -> None:
    """A line of a human report on stdout: names from the tree cannot break it or act on the terminal."""
    out((lines_for_terminal if lines else for_terminal)(line))


def stderr(message: str, lines: bool = False) -> None:
    """`kvmlint: MESSAGE` on stderr, on one line unless `lines` (a compiler's output, its names escaped where they are made)."""
    _to_stderr(f"kvmlint: {(lines_for_terminal if lines else for_terminal)(message)}")


def warn(message: str) -> None:
    stderr(f"warning: {message}")


def use_color(stream) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def require_standard_streams() -> None:
    """Standard input or error closed (`<&-`, `2>&-`): /dev/null in its place, as git does, so that no
    file kvmlint opens takes its number and no message of a child (git, gcc) lands in that file.
    Standard output closed (`>&-`): refused with one line, since a report nobody can read is no answer."""
    closed = [descriptor for descriptor in (0, 1, 2) if not _is_open(descriptor)]
    for descriptor in closed:
        _discard(descriptor)
    if 0 in closed:
        sys.stdin = open(0, closefd=False)
    if 2 in closed:
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    if 1 in closed:
        raise UsageError("standard output is closed: nothing could be reported (redirect it to /dev/null to discard it)")


def _is_open(descriptor: int) -> bool:
    try:
        os.fstat(descriptor)
        return True
    except OSError:
        return False


def _discard(descriptor: int) -> None:
    """`descriptor` leads to /dev/null from now on."""
    null = os.open(os.devnull, os.O_WRONLY if descriptor else os.O_RDONLY)
    if null != descriptor:
        os.dup2(null, descriptor)
        os.close(null)
