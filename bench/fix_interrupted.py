"""Kill `kvmlint fix` at random points, and run two at once, on a git copy of a real tree; count corrupt trees.

    python bench/fix_interrupted.py COPY [--runs 20] [--unsafe-fixes] [--kvmlint "python -m kvmlint"]

COPY must be a git work tree whose HEAD is the unfixed tree (a copy: it is reset with
`git checkout . && git clean -fdx` before each run).  One undisturbed `fix` gives the
reference result.  A killed run is "mixed" when the tree is neither as it was nor as the
reference; it is "corrupt" when a second, undisturbed `fix` does not then bring it to the
reference (or leaves temporary files).  Two runs at once are corrupt when they do not
leave the reference.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import shlex
import subprocess
import time
from pathlib import Path

BOOKKEEPING = ("kvmlint-journal", "kvmlint-fix.lock", ".kvmlint-tmp", ".kvmlint")


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def reset(root: Path) -> None:
    git(root, "checkout", "-q", ".")
    git(root, "clean", "-qfdx")
    for leftover in (root / ".git").glob("kvmlint-*"):
        subprocess.run(["rm", "-rf", str(leftover)], check=True)


def state(root: Path) -> tuple[str, list[str]]:
    """A digest of every changed or new file (bookkeeping aside), and the bookkeeping files left."""
    git(root, "add", "-A")
    names = git(root, "diff", "--cached", "--name-only", "-z").split("\0")
    git(root, "reset", "-q")
    leftovers = [n for n in names if any(mark in n for mark in BOOKKEEPING)]
    leftovers += [p.name for p in (root / ".git").glob("kvmlint-*")]
    digest = hashlib.sha256()
    for name in sorted(n for n in names if n and n not in leftovers):
        path = root / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.exists() else b"<deleted>"))
    return digest.hexdigest(), leftovers


def _identity(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--unsafe-fixes", action="store_true")
    parser.add_argument("--kvmlint", default="kvmlint")
    parser.add_argument("--seed", type=int, default=11)
    options = parser.parse_args()
    root, rng = options.root.resolve(), random.Random(options.seed)
    command = [*shlex.split(options.kvmlint), "fix", "-j1", *(["--unsafe-fixes"] if options.unsafe_fixes else []), str(root)]

    reset(root)
    original = state(root)[0]
    started = time.monotonic()
    subprocess.run(command, capture_output=True)
    duration = time.monotonic() - started
    reference = state(root)[0]
    git(root, "add", "-A")
    targets = [root / name for name in git(root, "diff", "--cached", "--name-only", "-z").split("\0") if name]
    git(root, "reset", "-q")
    print(f"reference run: {duration:.2f}s, {len(targets)} files changed")

    mixed = corrupt = 0
    for _ in range(options.runs):
        reset(root)
        before = [_identity(path) for path in targets]
        run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Aim at the write phase: wait for the first file to be replaced (or created), then up to 30 ms more.
        while run.poll() is None and [_identity(path) for path in targets] == before:
            time.sleep(0.0005)
        time.sleep(rng.uniform(0, 0.03))
        run.kill()
        run.wait()
        if state(root)[0] not in (original, reference):
            mixed += 1
        subprocess.run(command, capture_output=True)
        after, leftovers = state(root)
        corrupt += after != reference or bool(leftovers)
    print(f"kill -9: {options.runs} runs, {mixed} left a mixed tree, {corrupt} corrupt after a second fix")

    concurrent_corrupt = 0
    for _ in range(options.runs // 2):
        reset(root)
        runs = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
        for run in runs:
            run.wait()
        after, leftovers = state(root)
        concurrent_corrupt += after != reference or bool(leftovers)
    print(f"two runs at once: {options.runs // 2} tries, {concurrent_corrupt} corrupt")


if __name__ == "__main__":
    main()
