#!/usr/bin/env python3
"""Time `kvmlint check` on a tree: files/s, MB/s and peak memory.

Usage: python bench/bench_check.py QEMU_TREE [--runs N] [--jobs N] [--compare]

Every run is a fresh `kvmlint check` process, so interpreter start-up is
counted, as a user would see it.  `--compare` also times ast-grep and
Coccinelle's spatch running one pattern (calls of kvm_irqchip_in_kernel())
over the same tree, when they are installed (`pip install ast-grep-cli`,
`apt-get install coccinelle`).  `--one-file FILE` times a single-file check,
the pre-commit case.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

def tree_size(tree: Path) -> tuple[int, int]:
    files = size = 0
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            if name.endswith((".c", ".h", ".c.inc", ".h.inc")):
                files += 1
                size += (Path(dirpath) / name).stat().st_size
    return files, size


def timed(command: list[str], runs: int) -> tuple[float, float, int]:
    """Median and best wall seconds over `runs`, and the children's peak RSS in KiB."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        completed = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append(time.perf_counter() - started)
        if completed.returncode not in (0, 1):
            sys.exit(f"bench: {' '.join(command)} failed: {completed.stderr.decode()[-400:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    return statistics.median(times), min(times), peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--one-file", type=Path, default=None)
    args = parser.parse_args()
    if not args.tree.is_dir():
        sys.exit(f"bench: {args.tree}: not a directory")

    kvmlint = [sys.executable, "-m", "kvmlint", "check", "--quiet", "--format", "json"]
    if args.jobs:
        kvmlint += ["--jobs", str(args.jobs)]
    files, size = tree_size(args.tree)
    median, best, peak = timed(kvmlint + [str(args.tree)], args.runs)
    print(f"tree: {args.tree} ({files} C files, {size / 1e6:.1f} MB)")
    print(f"kvmlint check: median {median:.2f}s, best {best:.2f}s over {args.runs} runs")
    print(f"  {files / median:.0f} files/s, {size / 1e6 / median:.1f} MB/s, peak RSS {peak / 1024:.0f} MiB")

    startup, _, _ = timed([sys.executable, "-c", "pass"], args.runs)
    print(f"python start-up: {startup:.3f}s")
    if args.one_file:
        one, _, _ = timed(kvmlint + [str(args.one_file)], args.runs)
        print(f"kvmlint check {args.one_file.name}: median {one:.3f}s")

    if args.compare:
        compare(args.tree, args.runs)


def compare(tree: Path, runs: int) -> None:
    # Not `sg`: on Debian that name is shadow's setgid newgrp.
    beside_python = str(Path(sys.executable).parent)
    sg = shutil.which("ast-grep") or shutil.which("ast-grep", path=beside_python)
    if sg:
        median, _, _ = timed([sg, "run", "--lang", "c", "--pattern", "kvm_irqchip_in_kernel()", str(tree)], runs)
        print(f"ast-grep one pattern: median {median:.2f}s")
    else:
        print("ast-grep: not installed (pip install ast-grep-cli)")
    spatch = shutil.which("spatch") or shutil.which("spatch", path=beside_python)
    if spatch:
        with tempfile.NamedTemporaryFile("w", suffix=".cocci", delete=False) as cocci:
            cocci.write("@@\n@@\n* kvm_irqchip_in_kernel()\n")
        jobs = str(os.cpu_count() or 1)
        median, _, _ = timed(
            [spatch, "--sp-file", cocci.name, "--dir", str(tree), "--jobs", jobs, "--very-quiet"], 1
        )
        print(f"Coccinelle spatch one pattern: {median:.2f}s (1 run)")
        os.unlink(cocci.name)
    else:
        print("Coccinelle: not installed (apt-get install coccinelle)")


if __name__ == "__main__":
    main()
