#!/usr/bin/env python3
"""Time `kvmlint validate-build` against ninja (or make) on the same units.

Usage: python bench/bench_build_check.py BUILD_DIR FILE... [--jobs N] [--repeat N] [--target T]...

FILE are changed files of a git checkout (the fix's files, changed against
HEAD: what changed decides how deep each unit is checked).  The script asks
kvmlint which units they affect, then, REPEAT times, times
`kvmlint validate-build BUILD_DIR FILE...` (each unit with its recorded
command, or the front end alone where the change cannot reach the optimiser),
the same with `--full-compile` (every unit with its recorded command),
touches FILE and times `ninja -C BUILD_DIR <the same objects>`, then touches FILE again and times
`ninja -C BUILD_DIR [T...]` (the build a user runs after the change: those
units and every link that depends on them; `--target qemu-system-x86_64`
and so on when the default targets include something that does not build).  It prints each run and the median
of each: wall time and CPU time (user + system of the command and everything
it ran), with the load average, since a shared machine's wall times vary.
Run it on a build where those objects were built once, so ninja has its
generated headers and only the touched units are left to compile.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from kvmlint.source.discover import find_root
from kvmlint.validation.compile_database import CompileDatabase


def timed(command: list[str], cwd: Path | None = None) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of the command and its children, exit status)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, result.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build_dir", type=Path)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--target", action="append", default=[], help="what the user's ninja builds (default: all)")
    options = parser.parse_args()
    files = [f.resolve() for f in options.files]
    root = find_root(Path(os.path.commonpath(files)))
    units = CompileDatabase([options.build_dir], root).affected(files)
    objects = sorted({u.output for u in units if " (as " not in u.output})  # a new file has no object yet
    print(f"{len(units)} unit(s) affected by {len(files)} file(s); {os.cpu_count()} CPU(s), -j{options.jobs}")
    use_ninja = (options.build_dir / "build.ninja").exists()
    if not use_ninja:
        print("no build.ninja: compare with make by hand")
    runs: dict[str, list[tuple[float, float]]] = {"kvmlint validate-build": [], "kvmlint validate-build --full-compile": [],
                                                   f"ninja, {len(objects)} object(s)": [],
                                                   f"ninja {' '.join(options.target) or '(all)'}": []}
    validate = [sys.executable, "-m", "kvmlint", "validate-build", "-j", str(options.jobs), str(options.build_dir),
                *map(str, files)]
    for number in range(options.repeat):
        load = os.getloadavg()[0]
        line = f"run {number + 1} (load {load:.1f}):"
        for name, extra in (("kvmlint validate-build", []), ("kvmlint validate-build --full-compile", ["--full-compile"])):
            wall, cpu, status = timed([*validate, *extra])
            runs[name].append((wall, cpu))
            line += f" {name.removeprefix('kvmlint validate-build') or 'tiered'} {wall:.1f}s wall, {cpu:.1f}s CPU (exit {status});"
        if use_ninja:
            for path in files:
                path.touch()
            wall, cpu, status = timed(["ninja", "-C", str(options.build_dir), "-j", str(options.jobs), *objects])
            runs[f"ninja, {len(objects)} object(s)"].append((wall, cpu))
            line += f" ninja {wall:.1f}s wall, {cpu:.1f}s CPU (exit {status})"
            for path in files:
                path.touch()
            wall, cpu, status = timed(["ninja", "-C", str(options.build_dir), "-j", str(options.jobs), *options.target])
            runs[f"ninja {' '.join(options.target) or '(all)'}"].append((wall, cpu))
            line += f"; ninja {' '.join(options.target) or '(all)'} {wall:.1f}s wall, {cpu:.1f}s CPU (exit {status})"
        print(line, flush=True)
    for name, measured in runs.items():
        if measured:
            print(f"median {name}: {statistics.median(w for w, _ in measured):.1f}s wall, "
                  f"{statistics.median(c for _, c in measured):.1f}s CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
