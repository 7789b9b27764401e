"""What `fix --format-patch` and `fix --commit` ask of the QEMU checkout's git.

git runs with the user's hooks, fsmonitor and external diff tools switched
off: kvmlint reads the repository and, for `--commit`, records its own
change sets, nothing more.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from functools import lru_cache
from pathlib import Path

from kvmlint.errors import UsageError
from kvmlint.git import GitError, run_git

# "target/arm/kvm: Use ...", "hw/intc/arm_gic: ...", "kvm: ...", "accel/kvm, target/i386: ..."
SUBJECT_PREFIX = re.compile(r"^([A-Za-z0-9_.+/-]+(?:, ?[A-Za-z0-9_.+/-]+)*): \S")
HISTORY_DEPTH = 50  # recent commits that say how the files' subjects are prefixed


def git(root: Path, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    try:
        return run_git(root, *args, input=input)
    except GitError as error:
        raise UsageError(f"git is needed for this: {error}") from None


def is_work_tree(root: Path) -> bool:
    done = git(root, "rev-parse", "--is-inside-work-tree")
    return done.returncode == 0 and done.stdout.strip() == b"true"


def head(root: Path) -> str | None:
    done = git(root, "rev-parse", "--verify", "-q", "HEAD")
    if done.returncode != 0:
        return None
    return done.stdout.decode().strip() or None


def require_clean(root: Path, purpose: str) -> str:
    """HEAD's commit id, when the work tree holds nothing uncommitted; a patch
    series or commits made from edited files would not apply to HEAD."""
    if not is_work_tree(root):
        raise UsageError(f"{purpose} needs a git work tree; {root} is not one (use --diff instead)")
    commit = head(root)
    if commit is None:
        raise UsageError(f"{purpose} needs a commit to start from; {root} has none yet")
    status = git(root, "status", "--porcelain", "-z", "--untracked-files=no")
    dirty = [entry[3:] for entry in status.stdout.decode("utf-8", "surrogateescape").split("\0") if entry[3:]]
    if dirty:
        shown = ", ".join(dirty[:3]) + (f" and {len(dirty) - 3} more" if len(dirty) > 3 else "")
        raise UsageError(f"{purpose}: uncommitted changes in {shown}; commit or stash them first")
    return commit


def untracked(root: Path, paths: list[str]) -> list[str]:
    """Which of `paths` (existing files) git does not track: a patch to them applies nowhere."""
    if not paths:
        return []
    listed = git(root, "ls-files", "-z", "--", *paths).stdout.decode("utf-8", "surrogateescape").split("\0")
    return sorted(set(paths) - set(listed))


@lru_cache(maxsize=64)
def history_prefix(root: Path, paths: tuple[str, ...]) -> str | None:
    """The most common subject prefix of the recent commits touching `paths`
    (the convention QEMU developers follow by hand); None without history."""
    existing = [p for p in paths if (root / p).exists()]
    if not existing or not is_work_tree(root):
        return None
    log = git(root, "log", "--no-merges", f"-n{HISTORY_DEPTH}", "--format=%s", "--", *existing)
    if log.returncode != 0:
        return None
    prefixes = Counter()
    for subject in log.stdout.decode("utf-8", "replace").splitlines():
        match = SUBJECT_PREFIX.match(subject)
        if match and not subject.startswith(("Revert", "Merge")):
            prefixes[match.group(1)] += 1
    if not prefixes:
        return None
    return prefixes.most_common(1)[0][0]


def path_prefix(paths: list[str]) -> str | None:
    """The prefix QEMU's path rules give when history does not: `kvm` for
    KVM files, else the target directory (`target/arm`, `target-i386`), hw/
    subsystem or test suite all the files share; None when they share none."""
    if paths and all("kvm" in p.lower() for p in paths):
        return "kvm"
    places = {_subsystem(p) for p in paths}
    return places.pop() if len(places) == 1 and None not in places else None


def _subsystem(path: str) -> str | None:
    parts = path.split("/")
    if parts[0].startswith("target-") and len(parts) > 1:
        return parts[0]
    if parts[0] in ("target", "hw", "tests") and len(parts) > 2:
        return f"{parts[0]}/{parts[1]}"
    return None


def _first_line(stderr: bytes) -> str:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    return lines[0] if lines else "failed"


def commit_each(root: Path, steps: list[tuple[dict[str, bytes], str]], signoff: bool) -> list[str]:
    """One commit per step: (the files it changes with their new bytes, message).

    The work tree already holds the final result; each commit is built in the
    index from blobs, so the commits replay the fix step by step and leave
    index and work tree in agreement."""
    commits = []
    for files, message in steps:
        for path, data in sorted(files.items()):
            blob = git(root, "hash-object", "-w", "--stdin", input=data).stdout.decode().strip()
            mode = "100755" if (root / path).exists() and (root / path).stat().st_mode & 0o111 else "100644"
            staged = git(root, "update-index", "--add", "--cacheinfo", f"{mode},{blob},{path}")
            if staged.returncode != 0:
                raise UsageError(f"git update-index {path}: {_first_line(staged.stderr)}")
        done = git(root, "commit", "-q", "--no-verify", *(["-s"] if signoff else []), "-F", "-", input=message.encode())
        if done.returncode != 0:
            raise UsageError(f"git commit: {_first_line(done.stderr)}")
        commits.append(head(root) or "")
    return commits
