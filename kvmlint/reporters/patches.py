"""`git format-patch` style series: one mail-ready patch per change set."""

from __future__ import annotations

import re
from collections import Counter
from email.utils import formatdate
from pathlib import Path

from kvmlint import __version__
from kvmlint.codemods.engine import ChangeSet, Plan, unified_diff
from kvmlint.errors import UsageError
from kvmlint.files import read_only_refusal
from kvmlint.git.commits import history_prefix, path_prefix
from kvmlint.git.run import GitError, git_output
from kvmlint.prose import arch_name, join_words, wrap_message
from kvmlint.reporters import write_files_atomically

NULL_COMMIT = "0" * 40
MIXED_SERIES_TITLE = "Untangle architecture-specific questions from common code"


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
            quoted = line.endswith('"')  # git_quoted: a name with special characters is in quotes
            current = '"' + line.rsplit(' "b/', 1)[1] if quoted else line.split(" b/", 1)[1]
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


def subject(root: Path, change_set: ChangeSet) -> str:
    """The change set's title under the prefix the tree's own history uses for
    its files (else QEMU's path rules, else the code-mod's own prefix)."""
    default, _, text = change_set.title.partition(": ")
    paths = tuple(sorted(change_set.subject_paths or change_set.paths()))
    prefix = history_prefix(root, paths) or path_prefix(list(paths)) or default
    return f"{prefix}: {text}"


def commit_message(root: Path, change_set: ChangeSet) -> str:
    """What `git log` shows: the subject, a blank line, the body wrapped at 72 columns."""
    return f"{subject(root, change_set)}\n\n{wrap_message(change_set.body)}\n"


def write_series(plan: Plan, directory: Path, base_commit: str | None = None) -> list[Path]:
    """One patch per accepted change set, and a cover letter for two or more
    (QEMU's submitting-a-patch guide asks for one).  All are written or none:
    a symlink or other non-regular file in `directory` under a patch's name is
    refused (UsageError) before anything is written, and no file is written
    through a link."""
    author = _author(plan.root)
    date = formatdate(localtime=True)
    total = len(plan.accepted)
    base = f"base-commit: {base_commit}\n" if base_commit else ""
    files = []
    for number, change_set in enumerate(plan.accepted, 1):
        diff = unified_diff(plan, [change_set], before=plan.accepted[: number - 1])
        message = commit_message(plan.root, change_set)
        title, body = message.split("\n\n", 1)
        mail = (
            _mail_header(author, date, f"[PATCH{_numbering(number, total)}] {title}")
            + f"{body}---\n{diffstat(diff)}\n\n{diff}{base if total == 1 else ''}-- \nkvmlint {__version__}\n\n"
        )
        files.append((patch_filename(number, title), mail))
    if total > 1:
        files.insert(0, ("0000-cover-letter.patch", _cover_letter(plan, author, date, base)))
    refusal = read_only_refusal(directory)  # or, to be made, the folder it is made in
    if refusal is not None:
        raise UsageError(f"{refusal} (nothing written)")
    directory.mkdir(parents=True, exist_ok=True)
    write_files_atomically(directory, files)
    return [directory / name for name, _ in files]


def _numbering(number: int, total: int) -> str:
    return f" {number}/{total}" if total > 1 else ""


def _mail_header(author: str, date: str, subject_line: str) -> str:
    return f"From {NULL_COMMIT} Mon Sep 17 00:00:00 2001\nFrom: {author}\nDate: {date}\nSubject: {subject_line}\n\n"


def _cover_letter(plan: Plan, author: str, date: str, base: str) -> str:
    """`git format-patch --cover-letter`'s letter, with the blurb written: what
    the series does, and what changes on each architecture."""
    from kvmlint.codemods import codemods_by_rule

    modules = codemods_by_rule()
    subjects = [subject(plan.root, change_set) for change_set in plan.accepted]
    codes = list(dict.fromkeys(change_set.code for change_set in plan.accepted))
    prefixes = Counter(title.split(": ", 1)[0] for title in subjects)
    # A code-mod without series wording is described by its DESCRIPTION.
    title = getattr(modules[codes[0]], "SERIES_TITLE", MIXED_SERIES_TITLE) if len(codes) == 1 else MIXED_SERIES_TITLE
    summary = [
        f"{_patch_numbers(plan, code)}: {getattr(modules[code], 'SERIES_SUMMARY', modules[code].DESCRIPTION)}"
        for code in codes
    ]
    shortlog = "".join(f"  {line}\n" for line in subjects)
    body = (
        wrap_message(
            "This series makes QEMU's common KVM code ask the questions it means, and "
            "keeps each architecture's own concepts in that architecture's code.\n\n"
            + "\n".join(f"- {line}" for line in summary)
        )
        + "\n\n"
        + wrap_message(_arch_summary(plan))
        + f"\n\n{author.split(' <', 1)[0]} ({len(subjects)}):\n{shortlog}\n"
        + diffstat(unified_diff(plan))
        + "\n\n"
    )
    return (
        _mail_header(author, date, f"[PATCH 0/{len(subjects)}] {prefixes.most_common(1)[0][0]}: {title}")
        + f"{body}{base}-- \nkvmlint {__version__}\n\n"
    )


def _patch_numbers(plan: Plan, code: str) -> str:
    numbers = [n for n, change_set in enumerate(plan.accepted, 1) if change_set.code == code]
    if len(numbers) == 1:
        return f"Patch {numbers[0]}"
    if numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"Patches {numbers[0]}-{numbers[-1]}"
    return "Patches " + join_words([str(n) for n in numbers])


def _arch_summary(plan: Plan) -> str:
    """Per architecture, what the model says the series changes there."""
    effects: dict[str, list[str]] = {}
    for number, change_set in enumerate(plan.accepted, 1):
        for arch, effect in change_set.arch_effects:  # "" where nothing changes
            effects.setdefault(arch, []).extend([f"{effect} (patch {number})"] if effect else [])
    if not any(effects.values()):
        return "No patch changes behaviour on any architecture."
    lines = "\n".join(
        f"- {arch_name(arch)}: " + ("; ".join(said) if said else "nothing changes") + "."
        for arch, said in effects.items()
    )
    return f"What changes on each architecture, as the model every rewrite was checked against says:\n\n{lines}"
