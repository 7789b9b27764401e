"""Which lines a change adds, and the content it is judged on, from git.

`--staged` judges what `git commit` would record: the index against HEAD,
on the index's content whatever the work tree holds (`index_overlay` gives
the source stage the index's version of every file where the two differ).
During a merge (a MERGE_HEAD) a line is new only when it is added against
every parent, as git's combined diff shows it: what the merge itself brings,
such as conflict resolutions, not what the merged branch already had.

`--diff-base REF` compares the merge base of REF and HEAD with the work
tree: the lines a branch changed since it left REF, as a pull request shows
them, plus any uncommitted edits.  A new file is all new lines.

File names are read NUL-separated, never out of a diff's headers, and every
option that shapes a diff is given, so neither an odd name (spaces, quotes,
newlines) nor the user's diff configuration changes which lines count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kvmlint.errors import UsageError
from kvmlint.files import MAX_FILE_BYTES, Overlay, UnreadableFile, read_regular_file
from kvmlint.git.run import SAFE_DIFF_OPTIONS, GitError, PrivateIndex, git_output, run_git
from kvmlint.terminal import for_terminal, git_quoted

HUNK_HEADER = re.compile(rb"^@@ -\d+(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
FILE_HEADER = b"diff --git "
# `git diff` printing each file's added and deleted line counts, NUL-terminated with the name verbatim,
# then the patch, whatever the configuration says: no context, no hunks merged across unchanged lines,
# git's default algorithm, heuristic and rename detection (a moved file's old lines stay old; copies
# are new), submodules left out, names in headers a/ and b/ and quoted as `terminal.git_quoted` quotes them, and
# every file as text (a `-diff` attribute cannot hide a change, nor core.bigFileThreshold make the
# counts call a file binary that the patch shows as text).
GIT_DIFF = (
    "-c", "core.bigFileThreshold=512m", "-c", "core.quotePath=true", "diff", "--numstat", "--patch", "-z",
    "--unified=0", "--inter-hunk-context=0", "--diff-algorithm=myers", "--indent-heuristic", "--find-renames=50%",
    "-l1000", "--ignore-submodules=all", "--text", "--relative", "--src-prefix=a/", "--dst-prefix=b/",
    *SAFE_DIFF_OPTIONS,
)
# Index entries that are files (not symlinks or submodules).
REGULAR_FILE_MODES = (b"100644", b"100755")
NULL_OBJECT = re.compile(rb"^0+$")
# MERGE_HEAD names a commit per line; an octopus merge has a few.
MAX_MERGE_HEAD_BYTES = 64 * 1024
MAX_MERGE_PARENTS = 64
# Attributes under which git stores other bytes than the work tree holds, even when it calls the file
# unchanged (`filter`'s clean program is switched off here, so the two would not even compare).
CONVERTING_ATTRIBUTES = ("working-tree-encoding", "filter")
SHALLOW_HINT = ("this is a shallow clone: fetch enough history to reach it "
                "(git fetch --deepen=N, or --unshallow; in CI, a fetch depth of 0)")


@dataclass(frozen=True)
class ChangedLines:
    """Root-relative path -> the line numbers the change added or modified (none for a file it
    only deletes from); `any_change` says whether there is a change at all (a merge is one,
    even when it brings no line of its own)."""

    lines: dict[str, frozenset[int]]
    any_change: bool = True

    def touches(self, path: str, first_line: int, last_line: int) -> bool:
        changed = self.lines.get(path)
        return bool(changed) and any(line in changed for line in range(first_line, last_line + 1))

    @property
    def paths(self) -> list[str]:
        return sorted(path for path, lines in self.lines.items() if lines)


def staged_changes(root: Path) -> ChangedLines:
    """The lines the index adds against HEAD; during a merge, against HEAD and every MERGE_HEAD."""
    purpose = "--staged"
    _require_work_tree(root, purpose)
    parents = _merge_parents(root, purpose)
    if not parents:  # no commit yet: everything staged is new
        added = added_lines(_git(root, purpose, *GIT_DIFF, "--cached"))
        return ChangedLines(added, any_change=bool(added))
    added = [added_lines(_git(root, purpose, *GIT_DIFF, "--cached", parent, "--")) for parent in parents]
    lines = {
        path: frozenset.intersection(*(by_parent[path] for by_parent in added))
        for path in added[0] if all(path in by_parent for by_parent in added[1:])
    }
    return ChangedLines(lines, any_change=len(parents) > 1 or bool(added[0]))


def changes_since(root: Path, base_ref: str) -> ChangedLines:
    purpose = f"--diff-base {base_ref}"
    _require_work_tree(root, purpose)
    return ChangedLines(added_lines(_git(root, purpose, *GIT_DIFF, _merge_base(root, base_ref, purpose), "--")))


def added_lines(output: bytes) -> dict[str, frozenset[int]]:
    """Each changed file's added line numbers, from `git diff --numstat --patch -z` output.

    The counts come first, one NUL-terminated record per file with its name
    verbatim, then, after an empty record, the patch.  Each file's part of the
    patch is known by its header, the record's names as git quotes them, and
    its `+` lines are that file's whatever the order: a binary file's count is
    `-`, and a text file's count must match its lines.
    """
    counts, position = {}, 0
    headers = {}
    while (end := output.find(b"\0", position)) > position:
        added, _, rest = output[position:end].partition(b"\t")
        name = rest.partition(b"\t")[2]
        old = name
        position = end + 1
        if not name:  # renamed: the old name, then the new one
            old_end = output.find(b"\0", position)
            end = output.find(b"\0", old_end + 1)
            old, name, position = output[position:old_end], output[old_end + 1:end], end + 1
        path = name.decode("utf-8", "surrogateescape")
        counts[path] = int(added) if added.isdigit() else None  # None: binary to the counts
        header = f"diff --git {git_quoted('a/' + old.decode('utf-8', 'surrogateescape'))} {git_quoted('b/' + path)}"
        headers[header.encode("utf-8", "surrogateescape")] = path
    by_file = _added_line_numbers(output[position + 1:] if counts else b"", headers)
    changed = {}
    for path, count in counts.items():
        numbers = by_file.get(path, [])
        if count is not None and count != len(numbers):
            raise UsageError(f"git diff: its line counts for {for_terminal(path)} do not match its patch; "
                             "cannot tell which lines are new")
        changed[path] = frozenset(numbers)
    return changed


def _added_line_numbers(patch: bytes, headers: dict[bytes, str]) -> dict[str, list[int]]:
    """The new-side line number of every `+` line of every hunk, by the file whose header
    (one of `headers`) the hunk follows."""
    numbers: dict[str, list[int]] = {}
    current: list[int] | None = None
    lines = iter(patch.split(b"\n"))
    for line in lines:
        if line.startswith(FILE_HEADER):
            path = headers.get(line)
            if path is None:
                raise UsageError("git diff: a file of its patch is not one of its counts; cannot tell which lines are new")
            current = numbers.setdefault(path, [])
            continue
        hunk = HUNK_HEADER.match(line)
        if hunk is None:
            continue  # the rest of a file's header
        if current is None:
            raise UsageError("git diff: its patch has a hunk before any file; cannot tell which lines are new")
        old, new = int(hunk.group(1) or 1), int(hunk.group(3) or 1)
        number = int(hunk.group(2))
        while old > 0 or new > 0:
            body = next(lines, None)
            if body is None:
                raise UsageError("git diff: its patch ends inside a hunk; cannot tell which lines are new")
            if body.startswith(b"+"):
                current.append(number)
                number, new = number + 1, new - 1
            elif body.startswith(b"-"):
                old -= 1
            elif not body.startswith(b"\\"):  # context (empty under diff.suppressBlankEmpty)
                number, old, new = number + 1, old - 1, new - 1
    return numbers


def index_overlay(root: Path, wanted: Callable[[str], bool], purpose: str = "--staged",
                  private: PrivateIndex | None = None) -> Overlay:
    """The index's content of each wanted file where the work tree holds something else.

    None for a file the index does not hold (untracked, or only intended to
    be added), so the analysis sees exactly what `git commit` would record.
    A file git stores converted (a `working-tree-encoding` attribute) is
    judged as stored.  A file with unresolved conflicts is left as the work
    tree has it: git commits nothing until they are resolved.  With
    `private`, the index is that one (a commit's or a patched tree, see
    series.py) instead of the repository's.
    """
    raw = _git(root, purpose, "diff", "--raw", "-z", "--no-abbrev", "--no-renames", "--ignore-submodules=all",
               "--relative", *SAFE_DIFF_OPTIONS, private=private)
    fields = raw.split(b"\0")
    overlay: dict[str, bytes | None] = {}
    blobs: dict[str, str] = {}
    unmerged = set()
    for meta, name in zip(fields[0::2], fields[1::2]):
        path = name.decode("utf-8", "surrogateescape")
        index_mode, _, index_object, _, status = meta.lstrip(b":").split(b" ")[:5]
        if status.startswith(b"U"):
            unmerged.add(path)
        elif wanted(path):
            if index_mode in REGULAR_FILE_MODES and not NULL_OBJECT.match(index_object):
                blobs[path] = index_object.decode()
            else:
                overlay[path] = None
    blobs.update(_converted(root, purpose, lambda path: wanted(path) and path not in overlay and path not in blobs,
                                private))
    for path in unmerged:
        overlay.pop(path, None)
        blobs.pop(path, None)
    overlay.update(_read_blobs(root, blobs, purpose, private))
    untracked = _git(root, purpose, "ls-files", "-z", "--others", "--exclude-standard", private=private)
    overlay.update(dict.fromkeys(
        path for path in untracked.decode("utf-8", "surrogateescape").split("\0") if path and wanted(path)
    ))
    return overlay


def _converted(root: Path, purpose: str, wanted: Callable[[str], bool],
               private: PrivateIndex | None = None) -> dict[str, str]:
    """path -> index blob of each wanted file git stores converted (CONVERTING_ATTRIBUTES): its
    work-tree bytes are not what is committed even when git calls the two the same."""
    entries = {}
    for entry in _git(root, purpose, "ls-files", "-z", "-s", private=private).split(b"\0"):
        fields, _, name = entry.partition(b"\t")
        mode, blob, stage = (fields.split(b" ") + [b"", b""])[:3]
        path = name.decode("utf-8", "surrogateescape")
        if name and stage == b"0" and mode in REGULAR_FILE_MODES and wanted(path):
            entries[path] = blob.decode("ascii")
    if not entries:
        return {}
    asked = b"".join(path.encode("utf-8", "surrogateescape") + b"\0" for path in entries)
    answer = _git(root, purpose, "check-attr", "-z", "--stdin", *CONVERTING_ATTRIBUTES, input=asked,
                  private=private).split(b"\0")
    converted = {}
    for name, _, value in zip(answer[0::3], answer[1::3], answer[2::3]):
        path = name.decode("utf-8", "surrogateescape")
        if value not in (b"unspecified", b"unset") and path in entries:
            converted[path] = entries[path]
    return converted


def _read_blobs(root: Path, blobs: dict[str, str], purpose: str,
                private: PrivateIndex | None = None) -> dict[str, bytes | None]:
    """path -> the bytes of its blob; None for one too large to be a source anyone edits (the
    source stage skips such files too), which is not read at all."""
    if not blobs:
        return {}
    sizes = {}
    checked = _git(root, purpose, "cat-file", "--batch-check=%(objectname) %(objectsize)", input=_names(blobs.values()),
                   private=private)
    for line in checked.splitlines():
        name, _, size = line.decode("ascii", "replace").partition(" ")
        sizes[name] = int(size) if size.isdigit() else None  # "NAME missing"
    missing = next((path for path, name in blobs.items() if sizes.get(name) is None), None)
    if missing is not None:
        raise UsageError(f"{purpose}: git cat-file: the staged content of {missing} is missing from the repository")
    readable = {path: name for path, name in blobs.items() if sizes[name] <= MAX_FILE_BYTES}
    overlay: dict[str, bytes | None] = dict.fromkeys(path for path in blobs if path not in readable)
    contents = (_git(root, purpose, "cat-file", "--batch", input=_names(readable.values()), private=private)
                if readable else b"")
    position = 0
    for path in readable:
        header_end = contents.find(b"\n", position)
        header = contents[position:header_end].split(b" ")
        if header_end < 0 or len(header) != 3 or not header[2].isdigit():
            raise UsageError(f"{purpose}: git cat-file: the staged content of {path} cannot be read")
        size = int(header[2])
        overlay[path] = contents[header_end + 1:header_end + 1 + size]
        position = header_end + 1 + size + 1  # each content ends with the protocol's newline
    return overlay


def _names(objects) -> bytes:
    return b"".join(f"{name}\n".encode() for name in objects)


def _merge_parents(root: Path, purpose: str) -> list[str]:
    """HEAD and, during a merge, each MERGE_HEAD: the parents `git commit` would record, each
    once (a commit named twice, or HEAD itself, is one parent), at most MAX_MERGE_PARENTS."""
    head = _commit(root, "HEAD")
    if head is None:
        return []
    merge_head = _git(root, purpose, "rev-parse", "--git-path", "MERGE_HEAD").decode("utf-8", "surrogateescape").strip()
    try:
        named = read_regular_file(root / merge_head, MAX_MERGE_HEAD_BYTES).decode("ascii", "replace").split()
    except UnreadableFile:
        named = []  # no merge in progress
    named = list(dict.fromkeys(named))
    if len(named) >= MAX_MERGE_PARENTS:
        raise UsageError(f"{purpose}: MERGE_HEAD names {len(named)} commits; kvmlint reads a merge of at most "
                         f"{MAX_MERGE_PARENTS} parents")
    parents = [head]
    for name in named:
        commit = _commit(root, name)
        if commit is None:
            raise UsageError(f"{purpose}: MERGE_HEAD names {for_terminal(name[:64])}, which is not a commit here")
        if commit not in parents:
            parents.append(commit)
    return parents


def _merge_base(root: Path, base_ref: str, purpose: str, tip: str | None = None) -> str:
    """Where the branch at `tip` (HEAD when not given) left `base_ref`: their merge base."""
    named = "" if tip is None else f"{base_ref}: "  # a range names two commits: say which one is missing
    base = _commit(root, base_ref)
    if base is None:
        raise UsageError(f"{purpose}: {named}no such commit{_shallow_hint(root)}")
    head = _commit(root, tip or "HEAD")
    if head is None:
        raise UsageError(f"{purpose}: HEAD has no commit yet" if tip is None
                         else f"{purpose}: {tip}: no such commit{_shallow_hint(root)}")
    tip = tip or "HEAD"
    try:
        result = run_git(root, "merge-base", base, head)
    except GitError as error:
        raise UsageError(f"{purpose}: {error}") from None
    merge_base = result.stdout.decode().strip()
    if result.returncode == 0 and merge_base:
        return merge_base
    if result.returncode == 1 and not result.stderr.strip():
        if _is_shallow(root):
            raise UsageError(f"{purpose}: the merge base with {tip} is not here, {SHALLOW_HINT}")
        raise UsageError(f"{purpose}: no history in common with {tip}")
    message = result.stderr.decode("utf-8", "replace").strip().splitlines()
    raise UsageError(f"{purpose}: {message[0] if message else f'git merge-base: exit status {result.returncode}'}")


def _shallow_hint(root: Path) -> str:
    return f": {SHALLOW_HINT}" if _is_shallow(root) else ""


def _commit(root: Path, revision: str) -> str | None:
    """The commit `revision` names, None when it names none."""
    try:
        result = run_git(root, "rev-parse", "--verify", "--quiet", "--end-of-options", revision + "^{commit}")
    except GitError:
        return None
    commit = result.stdout.decode().strip() if result.returncode == 0 else ""
    return commit or None


def _is_shallow(root: Path) -> bool:
    try:
        return git_output(root, "rev-parse", "--is-shallow-repository").strip() == b"true"
    except GitError:
        return False


def _require_work_tree(root: Path, purpose: str) -> None:
    try:
        result = run_git(root, "rev-parse", "--is-inside-work-tree")
    except GitError as error:
        raise UsageError(f"{purpose}: {error}") from None
    if result.returncode != 0 or result.stdout.strip() != b"true":
        raise UsageError(f"{purpose}: not in a git work tree ({root})")


def _git(root: Path, purpose: str, *args: str, input: bytes | None = None,
         private: PrivateIndex | None = None) -> bytes:
    try:
        result = run_git(root, *args, input=input, private=private)
    except GitError as error:
        raise UsageError(f"{purpose}: {error}") from None
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UsageError(f"{purpose}: {message[0] if message else f'git: exit status {result.returncode}'}")
    return result.stdout
