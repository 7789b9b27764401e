#!/usr/bin/env python3
"""Time `kvmlint check` on a QEMU tree, cold, warm, after a touch, as a pre-commit hook and at 5x scale.

Usage: python bench/bench_check.py QEMU_TREE [--runs N] [--jobs N] [--work DIR]
                                   [--compare] [--staged] [--scale N] [--all]

Each run is a fresh process, so interpreter start-up counts, as a user sees
it.  For each case the bench prints the median wall and CPU seconds (the
process and its parser workers, from the kernel's accounting), the peak RSS
of the largest process, and the ratio to the faster peer.  The tree is never
written: caches, git copies and scaled trees go under --work (a temporary
folder by default).

Cases:
  cold       kvmlint check --no-cache TREE (every rule)
  warm       the same with a cache already filled by a first run
  touched    warm, after changing one file's mtime (same bytes)
  edited     warm, after appending a comment line to one file
  --compare  the peers running one pattern, calls of kvm_irqchip_in_kernel():
             ast-grep (`pip install ast-grep-cli`) and Coccinelle's spatch with
             --jobs 2 (`apt-get install coccinelle`); a missing peer is skipped
  --staged   a git copy of TREE with one changed file staged: `kvmlint check
             --staged` with no paths and with the file, against
             `python -c 'import kvmlint'`
  --scale N  N copies of TREE side by side, cold: time per copy and peak RSS
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

C_SUFFIXES = (".c", ".h", ".c.inc", ".h.inc")
PROXY = "kvm_irqchip_in_kernel"
COCCI = "@@\n@@\n* kvm_irqchip_in_kernel()\n"


@dataclass
class Timing:
    wall: float  # median seconds
    cpu: float  # median user+sys seconds, workers included
    peak_mib: float  # largest peak RSS of any run


def run_once(command: list[str], env: dict | None = None) -> tuple[float, float, float]:
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0, 1):
        sys.exit(f"bench: {' '.join(command)} failed ({process.returncode}): {stderr.decode()[-400:]}")
    # wait4 reports the child and every descendant it reaped: the parser workers too.
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def timed(command: list[str], runs: int, env: dict | None = None, before_each=None) -> Timing:
    results = []
    for _ in range(runs):
        if before_each:
            before_each()
        results.append(run_once(command, env))
    return Timing(
        statistics.median(r[0] for r in results),
        statistics.median(r[1] for r in results),
        max(r[2] for r in results),
    )


def tree_size(tree: Path) -> tuple[int, int]:
    files = size = 0
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames[:] = [d for d in dirnames if d not in (".git", ".kvmlint_cache")]
        for name in filenames:
            if name.endswith(C_SUFFIXES):
                files += 1
                size += (Path(dirpath) / name).stat().st_size
    return files, size


def proxy_file(tree: Path) -> Path:
    """A C file that uses the proxy: the one a developer would be editing."""
    for dirpath, dirnames, filenames in sorted(os.walk(tree)):
        dirnames[:] = sorted(d for d in dirnames if d not in (".git", ".kvmlint_cache"))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.endswith(".c") and PROXY.encode() in path.read_bytes():
                return path
    sys.exit(f"bench: no C file in {tree} uses {PROXY}()")


def peers(tree: Path, runs: int) -> dict[str, Timing]:
    found = {}
    beside_python = str(Path(sys.executable).parent)
    # Not `sg`: on Debian that name is shadow's setgid newgrp.
    ast_grep = shutil.which("ast-grep") or shutil.which("ast-grep", path=beside_python)
    if ast_grep:
        found["ast-grep"] = timed([ast_grep, "run", "--lang", "c", "--pattern", f"{PROXY}()", str(tree)], runs)
    else:
        print("peer ast-grep: not installed, skipped (pip install ast-grep-cli)")
    spatch = shutil.which("spatch")
    if spatch:
        with tempfile.NamedTemporaryFile("w", suffix=".cocci", delete=False) as cocci:
            cocci.write(COCCI)
        command = [spatch, "--sp-file", cocci.name, "--dir", str(tree), "--jobs", "2", "--very-quiet"]
        found["spatch --jobs 2"] = timed(command, runs)
        os.unlink(cocci.name)
    else:
        print("peer Coccinelle: not installed, skipped (apt-get install coccinelle)")
    return found


def show(label: str, timing: Timing, reference: Timing | None, goal: str = "") -> None:
    ratio = f"  {timing.wall / reference.wall:5.2f}x wall, {timing.cpu / reference.cpu:5.2f}x cpu of the faster peer" if reference else ""
    print(f"{label:<34} wall {timing.wall:6.3f}s  cpu {timing.cpu:6.3f}s  peak {timing.peak_mib:5.0f} MiB{ratio}{goal}")


def git(repo: Path, *args: str) -> None:
    environment = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
                   "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}
    subprocess.run(["git", "-c", "core.fsmonitor=false", *args], cwd=repo, env=environment, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder for caches and copies")
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--staged", action="store_true")
    parser.add_argument("--scale", type=int, default=0)
    parser.add_argument("--all", action="store_true", help="--compare --staged --scale 5")
    args = parser.parse_args()
    if args.all:
        args.compare, args.staged, args.scale = True, True, args.scale or 5
    tree = args.tree.resolve()
    if not tree.is_dir():
        sys.exit(f"bench: {tree}: not a directory")
    if args.work is not None:
        Path(args.work).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="kvmlint-bench-", dir=args.work))
    try:
        bench(tree, work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench(tree: Path, work: Path, args) -> None:
    kvmlint = [sys.executable, "-m", "kvmlint", "check", "--quiet"] + (["--jobs", str(args.jobs)] if args.jobs else [])
    # As a user runs it: with compiled bytecode, which PYTHONDONTWRITEBYTECODE would forbid.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    cache_env = {**os.environ, "KVMLINT_CACHE_DIR": str(work / "cache")}
    files, size = tree_size(tree)
    print(f"tree: {tree} ({files} C files, {size / 1e6:.1f} MB); {args.runs} runs per case, medians; "
          f"cpu = user+sys of the process and its workers")
    print(f"python: {sys.executable}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")

    found = peers(tree, args.runs) if args.compare else {}
    for name, timing in found.items():
        show(f"peer {name} (one pattern)", timing, None)
    faster = min(found.values(), key=lambda t: t.wall) if found else None

    cold = timed(kvmlint + ["--no-cache", str(tree)], args.runs)
    show("kvmlint cold (--no-cache)", cold, faster, "   goal <= 0.5x")
    run_once(kvmlint + [str(tree)], cache_env)  # fills the cache
    warm = timed(kvmlint + [str(tree)], args.runs, cache_env)
    show("kvmlint warm (cache filled)", warm, faster, "   goal <= 0.1x")

    # touched/edited files are copies: the tree itself is never written
    edited_tree = work / "edited"
    shutil.copytree(tree, edited_tree, symlinks=True)
    target = proxy_file(edited_tree)
    original = target.read_bytes()
    run_once(kvmlint + [str(edited_tree)], cache_env)
    time.sleep(2.5)  # a copy this fresh is "racily clean": its stats are trusted only from the next run on
    run_once(kvmlint + [str(edited_tree)], cache_env)
    warm_copy = timed(kvmlint + [str(edited_tree)], args.runs, cache_env)
    touched = timed(kvmlint + [str(edited_tree)], args.runs, cache_env, before_each=lambda: os.utime(target))
    show(f"kvmlint after touching {target.relative_to(edited_tree)}", touched, faster,
         f"   {touched.wall - warm_copy.wall:+.3f}s vs warm (goal <= +0.1s)")
    edits = iter(range(10_000))
    edited = timed(kvmlint + [str(edited_tree)], args.runs, cache_env,
                   before_each=lambda: target.write_bytes(original + b"/* edit %d */\n" % next(edits)))
    show("kvmlint after editing that file", edited, faster, f"   {edited.wall - warm_copy.wall:+.3f}s vs warm")
    target.write_bytes(original)

    if args.staged:
        staged(edited_tree, target, kvmlint, cache_env, args.runs)
    if args.scale:
        scale(tree, work, kvmlint, args.scale, args.runs, cold)


def staged(repo: Path, target: Path, kvmlint: list[str], cache_env: dict, runs: int) -> None:
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "tree")
    target.write_bytes(target.read_bytes() + b"\nstatic int bench_new_line;\n")
    git(repo, "add", str(target.relative_to(repo)))
    in_repo = ["sh", "-c", 'cd "$0" && exec "$@"', str(repo), *kvmlint, "--staged"]
    run_once(in_repo, cache_env)  # the cache now holds the staged file too
    time.sleep(2.5)
    run_once(in_repo, cache_env)
    interpreter = timed([sys.executable, "-c", "import kvmlint"], runs)
    show("python -c 'import kvmlint'", interpreter, None)
    relpath = str(target.relative_to(repo))
    for label, extra in (("kvmlint check --staged", []), (f"kvmlint check --staged {relpath}", [relpath])):
        timing = timed(in_repo + extra, runs, cache_env)
        show(label, timing, None, f"   {timing.wall - interpreter.wall:+.3f}s vs import (goal <= +0.3s)")


def scale(tree: Path, work: Path, kvmlint: list[str], copies: int, runs: int, one: Timing) -> None:
    side_by_side = work / f"x{copies}"
    for number in range(copies):
        shutil.copytree(tree, side_by_side / f"qemu{number}", symlinks=True)
    # One tree N times as large: without a root marker of its own, kvmlint would
    # refuse a folder holding N checkouts and ask for them one at a time.
    (side_by_side / "configure").touch()
    timing = timed(kvmlint + ["--no-cache", str(side_by_side)], max(1, runs - 1))
    show(f"kvmlint cold, {copies} copies side by side", timing, None,
         f"   {timing.wall / one.wall:.2f}x the wall and {timing.cpu / one.cpu:.2f}x the cpu of one copy "
         f"(goal <= {copies}x), peak goal < 300 MiB")


if __name__ == "__main__":
    main()
