"""What the gitconfig and commit classes share: a QEMU checkout under git, programs planted
by its configuration, the user's own git configuration, and the repository's state to compare.

The user's configuration is `home/.gitconfig` inside the case's folder (kvmlint() runs with
HOME there); the system's is not read.  A planted program records its name in `ran` and
fails, so a case sees which one git ran.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from hostile_cases import crashed, fixture_tree, kvmlint

ISOLATED = {"GIT_CONFIG_NOSYSTEM": "1"}
USER_CONFIG = "[user]\n\tname = Q. Developer\n\temail = dev@example.org\n"


def git(folder: Path, tree: Path, *args: str, input: bytes | None = None, check: bool = True) -> str:
    """`git ARGS` in `tree` as the user runs it (their own configuration, none of kvmlint's guards)."""
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder / "home"), "LANG": "C.UTF-8",
                   **ISOLATED}
    done = subprocess.run(["git", *args], cwd=tree, input=input, capture_output=True, env=environment, timeout=60,
                          stdin=None if input is not None else subprocess.DEVNULL)
    if check and done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode("utf-8", "surrogateescape")


def user(folder: Path, config: str = USER_CONFIG) -> None:
    """The user's own git configuration."""
    home = folder / "home"
    home.mkdir(exist_ok=True)
    (home / ".gitconfig").write_text(config)


def checkout(folder: Path, fixture: str = "qemu-2012", user_config: str = USER_CONFIG) -> Path:
    """The fixture as a git checkout with one commit, at folder/qemu."""
    user(folder, user_config)
    tree = fixture_tree(fixture, folder / "qemu")
    git(folder, tree, "init", "-q", "-b", "master")
    git(folder, tree, "add", "-A")
    git(folder, tree, "-c", "user.name=Q. Developer", "-c", "user.email=dev@example.org", "commit", "-q", "-m", "Initial import")
    return tree


def planted(folder: Path, name: str) -> str:
    """An executable that records `name` in folder/ran when run, and fails."""
    directory = folder / "planted"
    directory.mkdir(exist_ok=True)
    program = directory / name
    program.write_text(f"#!/bin/sh\necho {name} >> '{folder / 'ran'}'\nexit 1\n")
    program.chmod(0o755)
    return str(program)


def ran(folder: Path) -> list[str]:
    marker = folder / "ran"
    return marker.read_text().split() if marker.exists() else []


def run(folder: Path, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return kvmlint(folder, *args, cwd=cwd or folder / "qemu", env={**ISOLATED, **(env or {})})


def verdict(folder: Path, result: subprocess.CompletedProcess, allowed: tuple[int, ...] = (0, 1)) -> str | None:
    """Why the run did not hold: a crash, a planted program that ran, or a command that failed."""
    problem = crashed(result)
    if problem:
        return problem
    if ran(folder):
        return f"git ran {', '.join(sorted(set(ran(folder))))}"
    if result.returncode not in allowed:
        return f"exit {result.returncode}: {result.stderr.decode(errors='replace').strip()[-300:]}"
    return None


def state(folder: Path, tree: Path) -> dict[str, object]:
    """What a failed run must leave as it was: HEAD, the refs, the index entries, the work tree,
    and the git directory's own entries (no journal or lock left behind)."""
    files = {}
    for path in sorted(tree.rglob("*")):
        relative = path.relative_to(tree).as_posix()
        if relative.split("/")[0] not in (".git", ".kvmlint_cache") and path.is_file() and not path.is_symlink():
            files[relative] = path.read_bytes()
    return {
        "HEAD": git(folder, tree, "rev-parse", "HEAD"),
        "refs": git(folder, tree, "for-each-ref", "--format=%(refname) %(objectname)"),
        "index": git(folder, tree, "ls-files", "-s", "-v"),
        "files": files,
        "git directory": sorted(os.listdir(tree / ".git")),
    }


def changed(before: dict[str, object], after: dict[str, object]) -> str | None:
    """What differs between two `state`s, in a few words; None when nothing does."""
    differing = [key for key in before if before[key] != after[key]]
    if not differing:
        return None
    if "files" in differing:
        files_before, files_after = before["files"], after["files"]
        paths = sorted(p for p in set(files_before) | set(files_after) if files_before.get(p) != files_after.get(p))
        return f"{', '.join(differing)} changed ({', '.join(paths[:3])})"
    return f"{', '.join(differing)} changed"
