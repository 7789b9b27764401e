#!/usr/bin/env python3
"""Check that two kvmlint checkouts give the same answers on the same trees.

Usage: python bench/same_output.py OLD_CHECKOUT NEW_CHECKOUT TREE... [--jobs N]

For each TREE, each checkout's kvmlint (run as `python -m kvmlint` with that
checkout first on the path, the interpreter running this script) runs
`check --format json --no-cache TREE` and `scope TREE`.  Their exit status,
standard output and standard error must be the same, except the summary's
`seconds` in the JSON.  A checkout is a folder holding the `kvmlint` package:
a work tree, or `git archive REF kvmlint | tar -x -C DIR`.  Exit 0 when every
tree gives the same answers, 1 when one differs (the first differing line of
each is printed).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import subprocess
import sys
from pathlib import Path


def run(checkout: Path, *arguments: str) -> tuple[int, str, str]:
    environment = {**os.environ, "PYTHONPATH": str(checkout)}
    environment.pop("KVMLINT_CACHE_DIR", None)
    # `-m` puts the working directory first on the path: run from the checkout itself.
    done = subprocess.run([sys.executable, "-m", "kvmlint", *arguments], cwd=checkout, env=environment,
                          capture_output=True, text=True, timeout=1800)
    return done.returncode, done.stdout, done.stderr


def without_seconds(output: str) -> str:
    try:
        report = json.loads(output)
    except ValueError:
        return output  # not JSON (an error): compared as it is
    report.get("summary", {}).pop("seconds", None)
    return json.dumps(report, indent=1, sort_keys=True)


def first_difference(old: str, new: str) -> str:
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), "old", "new", lineterm="", n=0):
        if line.startswith(("-", "+")) and not line.startswith(("---", "+++")):
            return line[:300]
    return "(whitespace only)"


def compare(old: Path, new: Path, tree: Path, jobs: str | None) -> list[str]:
    extra = ["--jobs", jobs] if jobs else []
    commands = {
        "check": ["check", "--format", "json", "--no-cache", *extra, str(tree)],
        "scope": ["scope", str(tree)],
    }
    differences = []
    for name, command in commands.items():
        before, after = run(old, *command), run(new, *command)
        if name == "check":
            before = (before[0], without_seconds(before[1]), before[2])
            after = (after[0], without_seconds(after[1]), after[2])
        for part, a, b in zip(("exit status", "stdout", "stderr"), before, after):
            if a != b:
                detail = f"{a} -> {b}" if part == "exit status" else first_difference(a, b)
                differences.append(f"{name}: {part} differs: {detail}")
        if name == "check" and not differences:
            findings = len(json.loads(after[1])["findings"]) if after[1].startswith("{") else "?"
            print(f"  check: exit {after[0]}, {findings} finding(s), {after[2].count(chr(10))} stderr line(s): same")
        if name == "scope" and not any(d.startswith("scope") for d in differences):
            print(f"  scope: {after[1].count(chr(10))} file(s): same")
    return differences


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("trees", nargs="+", type=Path)
    parser.add_argument("--jobs", default=None)
    options = parser.parse_args()
    failed = 0
    for tree in options.trees:
        print(f"{tree}:")
        differences = compare(options.old.resolve(), options.new.resolve(), tree.resolve(), options.jobs)
        for difference in differences:
            print(f"  {difference}")
        failed += bool(differences)
    print(f"{len(options.trees) - failed} of {len(options.trees)} tree(s) the same")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
