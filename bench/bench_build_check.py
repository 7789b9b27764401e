#!/usr/bin/env python3
"""Time `kvmlint validate-build` against ninja (or make) on the same units.

Usage: python bench/bench_build_check.py BUILD_DIR FILE... [--jobs N]

FILE are changed files of the checkout (the fix's files).  The script asks
kvmlint which units they affect, times `kvmlint validate-build BUILD_DIR FILE...`
(compiling those units with the recorded commands), then touches FILE and
times `ninja -C BUILD_DIR <the same objects>` (the build the user would run).
Run it on a build where those objects were built once, so ninja has its
generated headers and only the touched units are left to compile.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from kvmlint.buildcheck import CompileDatabase
from kvmlint.source import find_root


def timed(command: list[str], cwd: Path | None = None) -> tuple[float, int]:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - started, result.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build_dir", type=Path)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    options = parser.parse_args()
    files = [f.resolve() for f in options.files]
    root = find_root(Path(os.path.commonpath(files)))
    units = CompileDatabase([options.build_dir], root).affected(files)
    print(f"{len(units)} unit(s) affected by {len(files)} file(s)")
    kvmlint, status = timed([sys.executable, "-m", "kvmlint", "validate-build", "-j", str(options.jobs),
                             str(options.build_dir), *map(str, files)])
    print(f"kvmlint validate-build: {kvmlint:.1f}s (exit {status})")
    if not (options.build_dir / "build.ninja").exists():
        print("no build.ninja: compare with make by hand")
        return 0
    for path in files:
        path.touch()
    objects = sorted({u.output for u in units if " (as " not in u.output})  # a new file has no object yet
    ninja, status = timed(["ninja", "-C", str(options.build_dir), "-j", str(options.jobs), *objects])
    print(f"ninja on the same {len(objects)} object(s): {ninja:.1f}s (exit {status})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
