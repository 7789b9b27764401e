"""What the work tree changed against HEAD: the changed and new files (`git status`) and HEAD's versions of them."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from kvmlint.errors import UsageError
from kvmlint.files import UnreadableFile, read_regular_file
from kvmlint.git.run import SAFE_STATUS_OPTIONS, GitError, git_output, run_git


def changed_files(root: Path) -> tuple[list[Path], list[Path]]:
    """(changed, new): files git sees as changed against HEAD (staged or not) or new, in the
    work tree at `root`; new ones are also in the first list."""
    out = _git_status(root)
    if out is None:
        raise UsageError(f"{root} is not a git work tree (or git is missing): name the changed files")
    changed, new, skip_next = [], [], False
    for entry in out.decode("utf-8", "surrogateescape").split("\0"):
        if skip_next or len(entry) < 4:
            skip_next = False
            continue
        status, name = entry[:2], entry[3:]
        if "R" in status or "C" in status:
            skip_next = True  # the rename's old name follows
        if "D" in status:
            continue
        changed.append(root / name)
        if status in ("??", "A ", "AM"):
            new.append(root / name)
    return changed, new


def uncommitted_changes(root: Path, paths: Iterable[Path]) -> dict[Path, bytes | None]:
    """What each of `paths` was before its uncommitted change: HEAD's text, or None for a file
    HEAD does not have.  Left out: a file that matches HEAD (what the build compiled is then
    unknown), a name git cannot take on a line, and everything outside a git work tree."""
    versions = _committed_versions(root, paths)
    for path, text in list(versions.items()):
        try:
            if text is not None and text == read_regular_file(path):
                del versions[path]
        except UnreadableFile:
            del versions[path]
    return versions


def _committed_versions(root: Path, paths: Iterable[Path]) -> dict[Path, bytes | None]:
    names = {}
    for path in paths:
        try:
            name = path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            continue
        if "\n" not in name:
            names[name] = path
    if not names:
        return {}
    try:
        result = run_git(root, "cat-file", "--batch", input="".join(f"HEAD:{n}\n" for n in names).encode("utf-8", "surrogateescape"))
    except GitError:
        return {}
    if result.returncode != 0:
        return {}
    versions, out, position = {}, result.stdout, 0
    for name, path in names.items():
        end = out.find(b"\n", position)
        if end < 0:
            break
        header = out[position:end].split()
        position = end + 1
        if header[-1:] == [b"missing"]:
            versions[path] = None
        elif len(header) == 3 and header[1] == b"blob":
            size = int(header[2])
            versions[path] = out[position : position + size]
            position += size + 1
        else:
            break  # an answer we do not know how to read: the rest stays unknown
    return versions


def untracked(root: Path, paths: list[Path]) -> list[Path]:
    """Those of `paths` that git does not track (new files); none outside a git work tree."""
    out = _git_status(root)
    if out is None:
        return []
    fresh = {root / entry[3:] for entry in out.decode("utf-8", "surrogateescape").split("\0") if entry[:2] in ("??", "A ", "AM")}
    return [p for p in paths if p in fresh]


def _git_status(root: Path) -> bytes | None:
    try:
        return git_output(root, "status", *SAFE_STATUS_OPTIONS, "--porcelain", "-z", "--untracked-files=all")
    except GitError:
        return None
