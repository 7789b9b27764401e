"""The tree ships a `.kvmlint-fix.lock` (or a `.git` file) that `fix` would take as its lock.

In a tree without git, `fix` holds its lock at the root; a lock found there
is waited on, or taken over when its owner died, and its pid is printed.  A
planted lock is a link (dangling, to a secret, to /proc/self/environ), a
FIFO, a folder, or text that is not a pid; a `.git` file sends the lock to
another repository; the disk fills up while the lock is written.  kvmlint
holds when it says so in one line, at once, and prints nothing of the lock
but a pid.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from hostile_cases import crashed, fixture_tree, kvmlint
from hostile_cases._full_disk import full_disk_environment

SECRET = "TOP-SECRET-TOKEN"


def _planted(folder: Path, plant, env: dict[str, str] | None = None) -> str | None:
    """Plant the lock with `plant(lock_path, folder)`, run fix, and judge: one line, exit 2, no secret."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    plant(tree / ".kvmlint-fix.lock", folder)
    result = kvmlint(folder, "fix", str(tree), env=env)
    output = result.stdout + result.stderr
    if any(leaked in output for leaked in (SECRET.encode(), b"\x1b", b"PATH=")):  # PATH= opens the environment
        return "fix printed what the planted lock holds"
    if crashed(result):
        return crashed(result)
    lines = result.stderr.decode("utf-8", "replace").splitlines()
    if result.returncode != 2 or len(lines) != 1:
        return f"exit status {result.returncode}, not a one-line refusal: {' | '.join(lines)[:160]}"
    return None


def _secret(folder: Path) -> Path:
    secret = folder / "home" / "secret"
    secret.parent.mkdir(exist_ok=True)
    secret.write_text(f"{SECRET}\n")
    return secret


def case_dangling_link(folder: Path) -> str | None:
    """The lock is a symlink to nothing (fix spun at 100% CPU for ever)."""
    return _planted(folder, lambda lock, folder: lock.symlink_to(folder / "nowhere"))


def case_fifo(folder: Path) -> str | None:
    """The lock is a FIFO nobody writes (fix waited in open() for ever)."""
    return _planted(folder, lambda lock, folder: os.mkfifo(lock))


def case_folder(folder: Path) -> str | None:
    """The lock is a folder."""
    return _planted(folder, lambda lock, folder: lock.mkdir())


def case_link_to_a_secret(folder: Path) -> str | None:
    """The lock is a symlink to a file of the user's home, printed as "the pid"."""
    return _planted(folder, lambda lock, folder: lock.symlink_to(_secret(folder)))


def case_link_to_the_environment(folder: Path) -> str | None:
    """The lock is a symlink to /proc/self/environ (a CI job's tokens), printed as "the pid"."""
    return _planted(folder, lambda lock, folder: lock.symlink_to("/proc/self/environ"), env={"CI_TOKEN": SECRET})


def case_text_that_is_not_a_pid(folder: Path) -> str | None:
    """The lock is a stale regular file holding terminal escapes and a secret instead of a pid."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    lock = tree / ".kvmlint-fix.lock"
    lock.write_bytes(f"\x1b]0;owned\x07{SECRET}\n".encode())
    os.utime(lock, (0, 0))  # old: its owner is long gone
    result = kvmlint(folder, "fix", str(tree))
    if SECRET.encode() in result.stderr or b"\x1b" in result.stderr:
        return "fix printed the lock's text as its pid"
    if crashed(result) or result.returncode not in (0, 1):
        return crashed(result) or f"exit status {result.returncode}: the stale lock was not taken over"
    return None


def case_git_file_sends_the_lock_to_another_repository(folder: Path) -> str | None:
    """A `.git` file says `gitdir:` another repository's git directory, which names another work tree."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    other = folder / "other"
    other.mkdir()
    subprocess.run(["git", "init", "-q", str(other)], check=True, capture_output=True)
    (tree / ".git").write_text(f"gitdir: {other / '.git'}\n")
    before = (other / ".git").stat().st_mtime_ns
    result = kvmlint(folder, "fix", str(tree))
    if (other / ".git").stat().st_mtime_ns != before:
        return "fix took its lock in another repository's git directory"
    if crashed(result) or result.returncode not in (0, 1):
        return crashed(result) or f"fix did not run (exit status {result.returncode})"
    return None


def case_full_disk_while_writing_the_pid(folder: Path) -> str | None:
    """The disk is full once the lock is created: its pid cannot be written."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    result = kvmlint(folder, "fix", str(tree), env=full_disk_environment(folder, 2))
    if (tree / ".kvmlint-fix.lock").exists():
        return "an empty lock was left in the tree"
    if crashed(result):
        return crashed(result)
    lines = result.stderr.decode("utf-8", "replace").splitlines()
    if result.returncode != 2 or len(lines) != 1 or "No space left on device" not in lines[0]:
        return f"not a one-line message: {' | '.join(lines)[:160]}"
    return None


CASES = [
    case_dangling_link,
    case_fifo,
    case_folder,
    case_link_to_a_secret,
    case_link_to_the_environment,
    case_text_that_is_not_a_pid,
    case_git_file_sends_the_lock_to_another_repository,
    case_full_disk_while_writing_the_pid,
]
