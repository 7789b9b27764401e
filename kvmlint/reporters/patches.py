"""`git format-patch` style series: one mail-ready patch per change set."""

from __future__ import annotations

import re
import textwrap
from email.utils import formatdate
from pathlib import Path

from kvmlint import __version__
from kvmlint.codemods.engine import Plan, unified_diff
from kvmlint.git import GitError, git_output

NULL_COMMIT = "0" * 40


def _author(root: Path) -> str:
    def config(key: str) -> str:
        try:
            return git_output(root, "config", key).decode("utf-8", "replace").strip()
        except GitError:
            return ""

    name, email = config("user.name"), config("user.email")
    return f"{name} <{email}>" if name and email else "kvmlint <kvmlint@invalid>"


def patch_filename(number: int, title: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.]+", "-", title).strip("-.")[:52].rstrip("-.")
    return f"{number:04d}-{slug}.patch"


def diffstat(diff: str) -> str:
    counts: dict[str, list[int]] = {}
    current = None
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            current = line.split(" b/", 1)[1]
            counts[current] = [0, 0]
        elif current and line.startswith("+") and not line.startswith("+++"):
            counts[current][0] += 1
        elif current and line.startswith("-") and not line.startswith("---"):
            counts[current][1] += 1
    width = max((len(path) for path in counts), default=0)
    rows = [f" {path:<{width}} | {added + removed:>3} {'+' * added}{'-' * removed}" for path, (added, removed) in counts.items()]
    total_added = sum(a for a, _ in counts.values())
    total_removed = sum(r for _, r in counts.values())
    rows.append(
        f" {len(counts)} file{'s' if len(counts) != 1 else ''} changed, "
        f"{total_added} insertion{'s' if total_added != 1 else ''}(+), "
        f"{total_removed} deletion{'s' if total_removed != 1 else ''}(-)"
    )
    return "\n".join(rows)


def wrap_body(body: str, width: int = 72) -> str:
    """Commit-message lines of at most `width` columns; indented lines keep their indent."""
    lines = []
    for line in body.rstrip().splitlines():
        indent = line[: len(line) - len(line.lstrip())]
        lines.append(textwrap.fill(line, width, subsequent_indent=indent + "  ") if line.strip() else "")
    return "\n".join(lines)


def write_series(plan: Plan, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    author = _author(plan.root)
    total = len(plan.accepted)
    written = []
    for number, change_set in enumerate(plan.accepted, 1):
        diff = unified_diff(plan, [change_set], before=plan.accepted[: number - 1])
        subject = f"[PATCH {number}/{total}] {change_set.title}" if total > 1 else f"[PATCH] {change_set.title}"
        mail = (
            f"From {NULL_COMMIT} Mon Sep 17 00:00:00 2001\n"
            f"From: {author}\n"
            f"Date: {formatdate(localtime=True)}\n"
            f"Subject: {subject}\n\n"
            f"{wrap_body(change_set.body)}\n"
            f"---\n{diffstat(diff)}\n\n{diff}-- \nkvmlint {__version__}\n\n"
        )
        path = directory / patch_filename(number, change_set.title)
        path.write_text(mail, encoding="utf-8", errors="surrogateescape")
        written.append(path)
    return written
