#!/usr/bin/env python3
"""Build a hostile tree for each class of attack and report whether kvmlint held.

Usage: python bench/hostile.py [--class NAME ...] [--keep DIR] [--verbose]

A tree kvmlint checks may be anyone's: a release tarball, a colleague's branch,
a series from the list.  Each module of `bench/hostile_cases/` is one class of
attack (journal, lock, git config, commit, build check, cache, terminal, ...)
and lists its cases in `CASES`: functions that build a hostile tree in a fresh
folder, run kvmlint on it and return None when kvmlint held, else what went
wrong.  Every case runs in its own process under CPU-time and address-space
limits and a timeout, so a case that hangs or runs away fails instead of
stopping the run.  The exit status is 1 when any case failed.

Not a test: `tests/` has a test per item; this shows every class at once.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, TimeoutError as CaseTimeout
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hostile_cases  # noqa: E402  (bench/ is not a package)

CASE_TIMEOUT_SECONDS = 120


def classes() -> dict[str, list]:
    found = {}
    for module in pkgutil.iter_modules(hostile_cases.__path__):
        if not module.name.startswith("_"):
            found[module.name] = importlib.import_module(f"hostile_cases.{module.name}").CASES
    return found


def _run_one(class_name: str, case_name: str, folder: str) -> str | None:
    hostile_cases.limit_resources()
    module = importlib.import_module(f"hostile_cases.{class_name}")
    case = next(case for case in module.CASES if case.__name__ == case_name)
    return case(Path(folder))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--class", dest="selected", action="append", default=[], help="run only this class (repeatable)")
    parser.add_argument("--keep", type=Path, default=None, help="keep each case's folder here")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    everything = classes()
    unknown = set(args.selected) - set(everything)
    if unknown:
        sys.exit(f"hostile: no such class: {', '.join(sorted(unknown))} (there are {', '.join(sorted(everything))})")
    workspace = args.keep or Path(tempfile.mkdtemp(prefix="kvmlint-hostile-"))
    failed = total = 0
    for class_name, cases in sorted(everything.items()):
        if args.selected and class_name not in args.selected:
            continue
        for case in cases:
            total += 1
            folder = workspace / class_name / case.__name__
            folder.mkdir(parents=True)
            started = time.perf_counter()
            with ProcessPoolExecutor(max_workers=1) as pool:
                future = pool.submit(_run_one, class_name, case.__name__, str(folder))
                try:
                    problem = future.result(timeout=CASE_TIMEOUT_SECONDS)
                except CaseTimeout:
                    problem = f"did not finish within {CASE_TIMEOUT_SECONDS} s"
                    for process in pool._processes.values():  # a hung case must not hang the run
                        process.kill()
                except Exception as error:  # the case's own set-up broke, or a limit killed it
                    problem = f"the case itself failed: {type(error).__name__}: {error}"
            elapsed = time.perf_counter() - started
            failed += problem is not None
            verdict = "held" if problem is None else f"FAILED: {problem}"
            print(f"{class_name:<12} {case.__name__:<48} {elapsed:5.1f}s  {verdict}")
            if args.verbose and (case.__doc__ or "").strip():
                print(f"{'':12} {case.__doc__.strip().splitlines()[0]}")
    print(f"{total} cases, {total - failed} held, {failed} failed")
    if args.keep is None:
        shutil.rmtree(workspace, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
