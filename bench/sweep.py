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

Laying the trees out from a fetched history (a bare git directory):
`--releases GITDIR` lists its release commits (`git log --first-parent
--grep='Update version for v'`); `--lay-out GITDIR REF ...` extracts each REF
(a tag or commit) into `--parent`/REF with `git archive`, skipping trees that
are already there.

Not a test: it needs the release trees and takes minutes.
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


def releases(git_dir: Path) -> list[str]:
    """'<commit> <subject>' of each release commit on the first-parent history."""
    log = subprocess.run(
        ["git", "--git-dir", str(git_dir), "log", "--first-parent", "--format=%h %s", "--grep=Update version for v"],
        capture_output=True, text=True, check=True,
    )
    return log.stdout.splitlines()


def lay_out(git_dir: Path, refs: list[str], parent: Path) -> None:
    for ref in refs:
        tree = parent / ref.replace("/", "_")
        if tree.exists():
            continue
        partial = tree.with_name(tree.name + ".partial")
        partial.mkdir(parents=True)
        archive = subprocess.Popen(["git", "--git-dir", str(git_dir), "archive", ref], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(partial)], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            sys.exit(f"sweep: git archive {ref} failed")
        partial.rename(tree)  # only a complete tree gets the release's name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="*", type=Path)
    parser.add_argument("--parent", type=Path, default=Path("/work/trees"))
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--findings", type=Path, default=None, help="write every finding as JSON lines here")
    parser.add_argument("--no-scope", action="store_true", help="skip the scope comparison (faster)")
    parser.add_argument("--releases", type=Path, metavar="GITDIR", help="list GITDIR's release commits and exit")
    parser.add_argument("--lay-out", nargs="+", metavar=("GITDIR", "REF"), help="extract REFs of GITDIR into --parent")
    args = parser.parse_args()
    if args.releases:
        print("\n".join(releases(args.releases)))
        return
    if args.lay_out:
        git_dir, *refs = args.lay_out
        lay_out(Path(git_dir), refs, args.parent)
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
