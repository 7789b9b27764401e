"""The tree (or the folder a report goes to) is read-only by its mode, and root runs kvmlint.

Root passes every permission check, so only the mode bits say what the user
keeps: a fix's change set that would write into a 0555 folder or replace a
file its owner may not write, the fix's lock and journal at a read-only root,
the cache of a read-only tree, a patch series or report into a read-only
folder.  kvmlint holds when nothing there changes (no file made, replaced or
made and removed again) and it says so cleanly: the change set skipped with
its reason, or one line (exit 2).  Run as another user, the system refuses
too, and the cases check only that kvmlint says so cleanly.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from hostile_cases import crashed, fixture_tree, kvmlint


def _listing(paths: list[Path]) -> dict[str, object]:
    """Each of `paths` with its mode, inode and bytes; a folder with its mtime (which a file made
    and removed in it, a temporary file or a lock, changes) and the same of every name in it."""
    found = {}
    for top in paths:
        for path in [top, *(sorted(top.rglob("*")) if top.is_dir() else [])]:
            status = path.lstat()
            data = path.read_bytes() if path.is_file() and not path.is_symlink() else status.st_mtime_ns
            found[str(path)] = (status.st_mode, status.st_ino, data)
    return found


def _kept(folder: Path, read_only: list[Path], *args: str, said: str, status: int) -> str | None:
    """Run kvmlint on what `folder` holds with each of `read_only` made read-only; None when they
    are as they were and stderr says `said` with exit `status` (2: in one line)."""
    for path in read_only:
        path.chmod(0o555 if path.is_dir() else 0o444)
    before = _listing(read_only)
    try:
        result = kvmlint(folder, *args)
        after = _listing(read_only)
    finally:
        for path in read_only:
            path.chmod(0o755 if path.is_dir() else 0o644)
    if after != before:
        changed = sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))
        return f"wrote into what is read-only: {', '.join(os.path.relpath(name, folder) for name in changed[:4])}"
    problem = crashed(result)
    if problem:
        return problem
    stderr = result.stderr.decode("utf-8", "replace")
    if result.returncode != status or said not in stderr or status == 2 and len(stderr.splitlines()) != 1:
        return f"exit status {result.returncode}, not saying {said!r}: {stderr.strip()[-200:]}"
    return None


def case_fix_into_a_read_only_folder(folder: Path) -> str | None:
    """target-i386/ is 0555: KVM002's move would replace kvm.c and create kvm_i386.h there."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    return _kept(folder, [tree / "target-i386"], "fix", str(tree),
                 said="target-i386 is a read-only folder; not written", status=1)


def case_fix_over_a_file_its_owner_may_not_write(folder: Path) -> str | None:
    """kvm.h is 0464 (its owner may not write it; its group may): the move would replace it."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    (tree / "kvm.h").chmod(0o464)
    before = _listing([tree / "kvm.h"])
    result = kvmlint(folder, "fix", "--rule", "irq0-override", str(tree))
    if _listing([tree / "kvm.h"]) != before:
        return "fix replaced kvm.h, whose owner may not write it"
    if "kvm.h is read-only; not written" not in result.stderr.decode("utf-8", "replace"):
        return crashed(result) or "fix did not say kvm.h is read-only"
    return None


def case_fix_in_a_read_only_tree(folder: Path) -> str | None:
    """The tree's root is 0555: the fix's lock and journal (at the root, without git) would go there."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    return _kept(folder, [tree], "fix", str(tree), said="is a read-only folder", status=2)


def case_cache_of_a_read_only_tree(folder: Path) -> str | None:
    """The tree's root is 0555: `check` would make `.kvmlint_cache/` there."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    return _kept(folder, [tree], "check", "--format", "concise", str(tree), said="", status=1)


def case_patch_series_into_a_read_only_folder(folder: Path) -> str | None:
    """`fix --format-patch patches` with patches/ 0555."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    for command in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"]):
        subprocess.run(["git", *command], cwd=tree, check=True, capture_output=True)
    patches = folder / "patches"
    patches.mkdir()
    return _kept(folder, [patches], "fix", "--rule", "irq0-override", "--format-patch", str(patches), str(tree),
                 said="is a read-only folder (nothing written)", status=2)


def case_report_over_a_read_only_file(folder: Path) -> str | None:
    """`check -o reports/kvmlint.txt`, that file 0444: it would be replaced."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    reports = folder / "reports"
    reports.mkdir()
    (reports / "kvmlint.txt").write_text("the last report\n")
    return _kept(folder, [reports / "kvmlint.txt"], "check", "-o", str(reports / "kvmlint.txt"), str(tree),
                 said="kvmlint.txt is read-only (nothing written)", status=2)


CASES = [
    case_fix_into_a_read_only_folder,
    case_fix_over_a_file_its_owner_may_not_write,
    case_fix_in_a_read_only_tree,
    case_cache_of_a_read_only_tree,
    case_patch_series_into_a_read_only_folder,
    case_report_over_a_read_only_file,
]
