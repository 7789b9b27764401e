"""Trees kvmlint judges without checking them out: a patch series applied in memory, or a commit.

`check --patch` reviews a series the way the list does (patchew checks each
patch of a series on its own).  The mail is split and decoded by git itself
(`git mailsplit`, `git mailinfo`): mbox or `git format-patch` output, one
patch or a series, or a bare `git diff`; a message without a diff (a cover
letter, a reply) is passed over.  Each patch is applied with `git apply
--cached` to a private index (run.PrivateIndex) that starts as the base
commit's tree, so neither the user's work tree, nor the index, nor the object
store changes.  What each patch leaves is a `TreeState`: the content to judge
where it differs from the work tree (an overlay for the source stage, read as
diffs.index_overlay reads the index) and the lines that patch adds.

`check --diff-base A..B` is one such state: B, with the lines B changed since
it left A.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kvmlint.errors import UsageError
from kvmlint.files import Overlay, UnreadableFile, format_size, read_regular_file
from kvmlint.git.diffs import (
    GIT_DIFF, ChangedLines, _commit, _merge_base, _require_work_tree, _shallow_hint, added_lines, index_overlay,
)
from kvmlint.git.run import GitError, PrivateIndex, run_git

# A series larger than this is not one anyone mails.
MAX_SERIES_BYTES = 64 * 1024 * 1024
MAX_SUBJECT_CHARS = 100
# The repository's index, copied for its file stats: current QEMU's is about 1 MiB.
MAX_INDEX_BYTES = 256 * 1024 * 1024
# `A..B` or `A...B`: both mean what B changed since it left A (`git diff A...B`); an empty side is HEAD.
RANGE = re.compile(r"^(.*?)\.\.\.?(.*)$")
# Pinned for `git apply`: the repository's apply.* settings do not decide what applies.
APPLY = ("-c", "apply.whitespace=nowarn", "-c", "apply.ignoreWhitespace=no", "apply", "--cached", "-p1")


@dataclass(frozen=True)
class TreeState:
    """A tree to judge: its content where the work tree differs, and the lines that count as new."""

    overlay: Overlay
    changes: ChangedLines
    label: str | None = None  # `PATCH 2/3 "subject"`, for a patch of a series
    # The lines the series added up to here (this patch and those before it), for a patch of a series.
    series_changes: ChangedLines | None = None


def read_series(source: str) -> bytes:
    """The bytes of a patch file, or of standard input for `-`; bounded."""
    if source == "-":
        data = sys.stdin.buffer.read(MAX_SERIES_BYTES + 1)
    else:
        try:
            data = read_regular_file(Path(source), MAX_SERIES_BYTES)
        except UnreadableFile as problem:
            raise UsageError(f"--patch {source}: {str(problem).removesuffix('; skipped')}") from None
    if len(data) > MAX_SERIES_BYTES:
        raise UsageError(f"--patch {source}: larger than {format_size(MAX_SERIES_BYTES)}")
    return data


def patch_states(root: Path, series: bytes, base: str, wanted: Callable[[str], bool], purpose: str) -> list[TreeState]:
    """What each patch of `series` leaves, applied in order on `base`, and the lines it adds."""
    _require_work_tree(root, purpose)
    base_commit = _commit(root, base)
    if base_commit is None:
        raise UsageError(f"{purpose}: --base {base}: no such commit{_shallow_hint(root)}")
    with _private_index(root, purpose) as (private, folder):
        patches = _split(root, series, folder, purpose)
        top = Path(_git(root, purpose, "rev-parse", "--show-toplevel").decode("utf-8", "surrogateescape").strip("\n"))
        _start_at(root, base_commit, private, purpose)
        before = start = _git(root, purpose, "rev-parse", base_commit + "^{tree}").decode().strip()
        states = []
        for number, (subject, patch) in enumerate(patches, start=1):
            label = f'PATCH {number}/{len(patches)} "{subject}"'
            _apply(top, patch, private, f"{purpose}: {label}", base)
            after = _git(root, purpose, "write-tree", private=private).decode().strip()
            changes, so_far = (ChangedLines(added_lines(_git(root, purpose, *GIT_DIFF, old, after, "--", private=private)))
                               for old in (before, start))
            states.append(TreeState(index_overlay(root, wanted, purpose, private), changes, label, so_far))
            before = after
        return states


def is_range(revisions: str) -> bool:
    return RANGE.match(revisions) is not None  # a ref name cannot hold ".."


def range_state(root: Path, revisions: str, wanted: Callable[[str], bool], purpose: str) -> TreeState:
    """`A..B`: B's tree, with the lines B changed since it left A."""
    _require_work_tree(root, purpose)
    matched = RANGE.match(revisions)
    base, tip = matched.group(1) or "HEAD", matched.group(2) or "HEAD"
    merge_base = _merge_base(root, base, purpose, tip=tip)
    tip_commit = _commit(root, tip)
    with _private_index(root, purpose) as (private, _):
        _start_at(root, tip_commit, private, purpose)
        changes = ChangedLines(added_lines(_git(root, purpose, *GIT_DIFF, merge_base, tip_commit, "--")))
        return TreeState(index_overlay(root, wanted, purpose, private), changes)


@contextmanager
def _private_index(root: Path, purpose: str) -> Iterator[tuple[PrivateIndex, Path]]:
    objects = _git(root, purpose, "rev-parse", "--git-path", "objects").decode("utf-8", "surrogateescape").strip("\n")
    try:
        scratch = tempfile.TemporaryDirectory(prefix="kvmlint-review-")
    except OSError as error:
        raise UsageError(f"{purpose}: no temporary folder for the review's index ({error.strerror or error})") from None
    with scratch as folder:
        try:
            private = PrivateIndex.create(Path(folder), root / objects)
        except OSError as error:
            raise UsageError(f"{purpose}: cannot set up the review's index ({error.strerror or error})") from None
        yield private, Path(folder)


def _start_at(root: Path, commit: str, private: PrivateIndex, purpose: str) -> None:
    """The private index holds `commit`'s tree, with the work tree's file stats (so later diffs against
    the work tree do not read every file again).  It starts as a copy of the repository's index, whose
    stats `read-tree --reset` keeps for every entry the commit holds unchanged; without one (or when
    git will not read the copy), every file is looked at once."""
    index = _git(root, purpose, "rev-parse", "--git-path", "index").decode("utf-8", "surrogateescape").strip("\n")
    try:
        private.index_file.write_bytes(read_regular_file(root / index, MAX_INDEX_BYTES))
        seeded = _run(root, purpose, "read-tree", "--reset", commit, private=private).returncode == 0
    except (UnreadableFile, OSError):
        seeded = False
    if not seeded:
        private.index_file.unlink(missing_ok=True)
        _git(root, purpose, "read-tree", commit, private=private)
    # exit status 1 names the files the work tree changed: they are what the overlay is for
    _run(root, purpose, "update-index", "-q", "--refresh", private=private)


def _split(root: Path, series: bytes, folder: Path, purpose: str) -> list[tuple[str, Path]]:
    """(subject, patch file) of each message that holds a diff, in order."""
    mails = folder / "mails"
    mails.mkdir()
    _git(root, purpose, "mailsplit", "-b", f"-o{mails}", input=series)
    patches = []
    for mail in sorted(mails.iterdir()):
        message, patch = folder / f"{mail.name}.message", folder / f"{mail.name}.patch"
        headers = _git(root, purpose, "mailinfo", "--no-scissors", str(message), str(patch), input=mail.read_bytes())
        if patch.stat().st_size:
            patches.append((_subject(headers) or f"patch {len(patches) + 1}", patch))
    if not patches:
        raise UsageError(f"{purpose}: no patch in it (expected an mbox or `git format-patch` output with a diff)")
    return patches


def _subject(headers: bytes) -> str:
    for line in headers.decode("utf-8", "replace").splitlines():
        if line.startswith("Subject: "):
            subject = " ".join(line[len("Subject: "):].split())
            return subject if len(subject) <= MAX_SUBJECT_CHARS else subject[:MAX_SUBJECT_CHARS - 3] + "..."
    return ""


def _apply(top: Path, patch: Path, private: PrivateIndex, purpose: str, base: str) -> None:
    """`git apply --cached` of one patch to the private index; one line when it is not a patch or does not apply."""
    parsed = _run(top, purpose, "apply", "--numstat", "-p1", "--", str(patch), private=private)
    if parsed.returncode != 0:
        raise UsageError(f"{purpose}: not a valid patch: {_reason(parsed)}")
    applied = _run(top, purpose, *APPLY, "--", str(patch), private=private)
    if applied.returncode != 0:
        raise UsageError(f"{purpose}: does not apply to {base}: {_reason(applied)}")


def _reason(result) -> str:
    """git's first error line, without its `error:` or `fatal:`."""
    lines = [line.strip() for line in result.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    errors = [line for line in lines if not line.startswith("warning:")] or lines
    if not errors:
        return f"git apply: exit status {result.returncode}"
    return re.sub(r"^(error|fatal): ", "", errors[0])


def _run(root: Path, purpose: str, *args: str, input: bytes | None = None, private: PrivateIndex | None = None):
    try:
        return run_git(root, *args, input=input, private=private)
    except GitError as error:
        raise UsageError(f"{purpose}: {error}") from None


def _git(root: Path, purpose: str, *args: str, input: bytes | None = None, private: PrivateIndex | None = None) -> bytes:
    result = _run(root, purpose, *args, input=input, private=private)
    if result.returncode != 0:
        raise UsageError(f"{purpose}: {_reason(result)}")
    return result.stdout
