#!/usr/bin/env python3
"""Run `kvmlint check` over QEMU release trees and compare them release by release.

Usage: python bench/sweep.py [TREE ...] [--parent DIR] [--jobs N] [--findings FILE]

With no TREE, every directory under `--parent` (default /work/trees) is a
release; they are ordered by version (`q2012` and other non-version names
first, `current` last).  For each release it prints the wall time of one
`kvmlint check --format json` process, the findings per rule, and the files
whose scope class changed since the previous release (common <-> one or more
targets) among those that use a QEMU KVM name (`kvm_*`), with the scope
`kvmlint scope` gives them.  `--findings FILE`
writes every finding of every release as JSON lines, to judge them one by one.

Not a test: it needs the release trees (laid out from the fetched histories,
see the README) and takes minutes.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

KVMLINT = [sys.executable, "-m", "kvmlint"]
RULES = ("KVM001", "KVM002", "KVM003", "KVM006")


def release_key(path: Path) -> tuple:
    """q2012 < v1.3.0 < ... < v10.2.0 < current."""
    version = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)", path.name)
    if version:
        return (1, tuple(int(part) for part in version.groups()))
    return (2 if path.name == "current" else 0, path.name)


def check(tree: Path, jobs: int | None) -> tuple[float, list[dict]]:
    command = KVMLINT + ["check", "--format", "json", "--quiet", str(tree)]
    if jobs:
        command += ["--jobs", str(jobs)]
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if completed.returncode not in (0, 1):
        sys.exit(f"sweep: {tree}: kvmlint failed: {completed.stderr.strip()[-400:]}")
    report = json.loads(completed.stdout)
    findings = report["findings"] if isinstance(report, dict) else report
    return elapsed, findings


def scope_classes(tree: Path) -> dict[str, tuple[bool, str]]:
    """Every C file of the tree that uses a QEMU KVM name -> (common, `kvmlint scope`'s reason)."""
    from kvmlint.scope import ScopeResolver

    resolver = ScopeResolver(tree)
    classes = {}
    for path in sorted(tree.rglob("*.c")):
        if b"kvm_" not in path.read_bytes():
            continue  # files kvmlint never judges: their class changes nothing
        relpath = path.relative_to(tree).as_posix()
        decided = resolver.scope_of(relpath)
        classes[relpath] = (decided.common, f"{decided.label}: {decided.reason}")
    return classes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="*", type=Path)
    parser.add_argument("--parent", type=Path, default=Path("/work/trees"))
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--findings", type=Path, default=None, help="write every finding as JSON lines here")
    parser.add_argument("--no-scope", action="store_true", help="skip the scope comparison (faster)")
    args = parser.parse_args()
    trees = args.trees or [path for path in args.parent.iterdir() if path.is_dir()]
    trees = sorted((tree for tree in trees if tree.is_dir()), key=release_key)
    if not trees:
        sys.exit("sweep: no release trees given or found")
    dump = args.findings.open("w", encoding="utf-8") if args.findings else None
    print(f"{'release':<10} {'time':>7} " + " ".join(f"{rule:>6}" for rule in RULES))
    previous: dict[str, tuple[bool, str]] | None = None
    for tree in trees:
        elapsed, findings = check(tree, args.jobs)
        counts = Counter(finding["code"] for finding in findings)
        print(f"{tree.name:<10} {elapsed:>6.1f}s " + " ".join(f"{counts.get(rule, 0):>6}" for rule in RULES))
        if dump:
            for finding in findings:
                dump.write(json.dumps({"release": tree.name, **finding}) + "\n")
        if args.no_scope:
            continue
        current = scope_classes(tree)
        if previous is not None:
            changed = [path for path in current if path in previous and previous[path][0] != current[path][0]]
            for path in changed:
                was = "common" if previous[path][0] else "target"
                now = "common" if current[path][0] else "target"
                print(f"    {path}: {was} -> {now} ({current[path][1]})")
        previous = current
    if dump:
        dump.close()


if __name__ == "__main__":
    main()
