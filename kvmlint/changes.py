"""Which lines a change adds or modifies, from `git diff --unified=0`.

`--staged` compares the index with HEAD (what `git commit` would record;
pre-commit stashes unstaged edits first, so the work tree then matches the
index).  `--diff-base REF` compares the merge base of REF and HEAD with the
work tree: the lines a branch changed since it left REF, as a pull request
shows them, plus any uncommitted edits.  A new file is all new lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from kvmlint.errors import UsageError
from kvmlint.git import SAFE_DIFF_OPTIONS, GitError, git_output

HUNK_HEADER = re.compile(rb"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")
# Stable output whatever the user's git configuration says.
GIT_DIFF = (
    "diff", "--unified=0", *SAFE_DIFF_OPTIONS,
    "--relative", "--src-prefix=a/", "--dst-prefix=b/", "--diff-filter=ACMR",
)


@dataclass(frozen=True)
class ChangedLines:
    """Root-relative path -> the line numbers the change added or modified."""

    lines: dict[str, frozenset[int]]

    def touches(self, path: str, first_line: int, last_line: int) -> bool:
        changed = self.lines.get(path)
        return bool(changed) and any(line in changed for line in range(first_line, last_line + 1))

    @property
    def paths(self) -> list[str]:
        return sorted(path for path, lines in self.lines.items() if lines)


def staged_changes(root: Path) -> ChangedLines:
    return ChangedLines(parse_diff(_git(root, "git diff --cached", *GIT_DIFF, "--cached")))


def changes_since(root: Path, base_ref: str) -> ChangedLines:
    merge_base = _git(root, f"--diff-base {base_ref}", "merge-base", "--end-of-options", base_ref, "HEAD").decode().strip()
    return ChangedLines(parse_diff(_git(root, f"--diff-base {base_ref}", *GIT_DIFF, merge_base, "--")))


def parse_diff(diff: bytes) -> dict[str, frozenset[int]]:
    changed: dict[str, set[int]] = {}
    current: set[int] | None = None
    for raw in diff.splitlines():
        if raw.startswith(b"+++ "):
            target = raw[4:].decode("utf-8", "surrogateescape")
            current = None if target == "/dev/null" else changed.setdefault(_strip_prefix(target), set())
        elif current is not None and (match := HUNK_HEADER.match(raw)):
            start, count = int(match.group(1)), int(match.group(2) or 1)
            current.update(range(start, start + count))  # count 0: a pure deletion adds no line
    return {path: frozenset(lines) for path, lines in changed.items()}


def _strip_prefix(target: str) -> str:
    if target.startswith('"'):  # git C-quotes a name holding control characters, '"' or '\\'
        target = target[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
    return target[2:] if target.startswith("b/") else target


def _git(root: Path, purpose: str, *args: str) -> bytes:
    try:
        return git_output(root, *args)
    except GitError as error:
        raise UsageError(f"{purpose}: {error}") from None
