"""Every git command kvmlint runs, with the checked repository's power to run commands taken away.

A checked tree may be anyone's, and its `.git/config` can name programs that
git runs on a plain `git diff` or `git ls-files`: `core.fsmonitor`, clean
filters, textconv and external diff drivers.  kvmlint only needs file lists
and diffs, so it turns all of them off, and bounds how long git may take.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

# A git that has not answered by then is stuck (a FIFO as .git/index, a dead network mount).
GIT_TIMEOUT_SECONDS = 120
SAFE_OPTIONS = (
    "--no-pager",
    "-c", "core.fsmonitor=false",
    "-c", "core.hooksPath=" + os.devnull,
    "-c", "diff.external=",
    "-c", "core.quotePath=false",
)
# Options for `git diff`: no external diff program, no textconv filter.
SAFE_DIFF_OPTIONS = ("--no-ext-diff", "--no-textconv", "--no-color")


class GitError(Exception):
    """git is missing, stuck or failed; the message says which, in one line."""


def run_git(root: Path, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    """`git ARGS` run in `root`, whatever its exit status; GitError when git cannot run."""
    return _run(["git", *SAFE_OPTIONS, *_filter_overrides(root), *args], root, input)


def git_output(root: Path, *args: str) -> bytes:
    """`git ARGS` run in `root`, its standard output; GitError when it fails."""
    result = run_git(root, *args)
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(message[0] if message else f"exit status {result.returncode}")
    return result.stdout


def _filter_overrides(root: Path) -> list[str]:
    """`-c filter.NAME.clean=` (and smudge, process) for every filter the configuration defines.

    A clean filter runs whenever git reads a work-tree file for a diff, and
    only configuration naming it can switch it off.  Reading configuration
    runs nothing.
    """
    result = _run(["git", *SAFE_OPTIONS, "config", "--null", "--name-only", "--get-regexp", r"^filter\."], root)
    names = result.stdout.decode("utf-8", "surrogateescape").split("\0") if result.returncode == 0 else []
    drivers = {name.rsplit(".", 1)[0] for name in names if name.count(".") >= 2}
    return [option for driver in sorted(drivers) for key in ("clean", "smudge", "process")
            for option in ("-c", f"{driver}.{key}=")]


def _run(command: list[str], root: Path, input: bytes | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            command,
            cwd=root,
            capture_output=True,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            timeout=GIT_TIMEOUT_SECONDS,
            # no index refresh written by a read-only command
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"},
        )
    except FileNotFoundError:
        raise GitError("git was not found") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git did not answer within {GIT_TIMEOUT_SECONDS} s") from None
    except OSError as error:
        raise GitError(f"git cannot be run ({error.strerror or error})") from None
