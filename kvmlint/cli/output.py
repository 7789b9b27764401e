"""What every command shares: exit statuses, how a line reaches the user, and option word lists."""

from __future__ import annotations

import os

import click

from kvmlint.terminal import for_terminal, lines_for_terminal

EXIT_FINDINGS = 1
EXIT_USAGE = 2


def split_words(values: tuple[str, ...]) -> list[str]:
    return [word for value in values for word in value.split(",") if word.strip()]


def stderr(message: str, lines: bool = False) -> None:
    """`kvmlint: MESSAGE` on stderr, on one line unless `lines` (a compiler's output, its names escaped where they are made)."""
    click.echo(f"kvmlint: {(lines_for_terminal if lines else for_terminal)(message)}", err=True)


def echo(line: str, lines: bool = False) -> None:
    """A line of a human report on stdout: names from the tree cannot break it or act on the terminal."""
    click.echo((lines_for_terminal if lines else for_terminal)(line))


def warn(message: str) -> None:
    stderr(f"warning: {message}")


def use_color(stream) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ
