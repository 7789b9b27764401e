"""A folder or file whose mode says read-only is never written, by any writer of kvmlint, also when
root runs it (root passes every permission check, so only the mode bits say what the user keeps):
the fix's files, its lock and journal, the cache, a report, a patch series.

As another user the system refuses these writes too, and the tests then check that kvmlint says so
in one line before it writes anything; run as root (as in many containers and CI jobs), they check
what only kvmlint can keep.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kvmlint.codemods import transaction

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "qemu-snippets"
TIMEOUT = 60


def limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    resource.setrlimit(resource.RLIMIT_CPU, (TIMEOUT, TIMEOUT))


def kvmlint(*args, cwd=None, in_tree_cache: bool = False):
    """`kvmlint ARGS` in its own bounded process; with `in_tree_cache`, the tree's own
    `.kvmlint_cache/` (the default outside the suite) instead of the suite's folder."""
    environment = dict(os.environ)
    if in_tree_cache:
        environment.pop("KVMLINT_CACHE_DIR", None)
    return subprocess.run(
        [sys.executable, "-m", "kvmlint", *map(str, args)], cwd=cwd, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=TIMEOUT, preexec_fn=limit, env=environment,
    )


def one_line_refusal(done) -> str:
    lines = done.stderr.splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("kvmlint: "), done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    return lines[0]


def contents(folder: Path) -> dict[str, object]:
    """Every name under `folder` with its mode and bytes; a read-only folder with its mtime, which
    a file made and removed in it (a temporary file, a lock) changes."""
    found = {}
    for path in [folder, *sorted(folder.rglob("*"))]:
        status = path.lstat()
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
        else:
            data = status.st_mtime_ns if path.is_dir() and not status.st_mode & 0o200 else None
        found[path.relative_to(folder).as_posix()] = (oct(status.st_mode), data)
    return found


@pytest.fixture
def tree(tmp_path):
    """The 2012 fixture tree; every mode a test changes is given back, so tmp_path can be removed."""
    root = Path(shutil.copytree(FIXTURES / "qemu-2012", tmp_path / "tree"))
    yield root
    for path in [tmp_path, *tmp_path.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o700)


def read_only(path: Path) -> None:
    path.chmod(0o555 if path.is_dir() else 0o444)


def test_fix_never_writes_into_a_read_only_folder(tree):
    """KVM002's move replaces target-i386/kvm.c and creates kvm_i386.h there: a change set
    that would write into the read-only folder is not written at all, and says why."""
    folder = tree / "target-i386"
    read_only(folder)
    before = contents(tree)
    done = kvmlint("fix", "--rule", "irq0-override", tree)
    assert done.returncode == 1, done.stderr
    assert "target-i386 is a read-only folder; not written" in done.stderr
    assert "internal error" not in done.stderr
    assert contents(tree) == before


@pytest.mark.parametrize("mode", [0o444, 0o464], ids=["read-only", "group-writable-only"])
def test_fix_never_replaces_a_file_whose_owner_may_not_write_it(tree, mode):
    (tree / "kvm.h").chmod(mode)
    before = contents(tree)
    done = kvmlint("fix", "--rule", "irq0-override", tree)
    assert done.returncode == 1 and "kvm.h is read-only; not written" in done.stderr, done.stderr
    assert contents(tree) == before


def test_a_new_folder_is_never_made_inside_a_read_only_folder(tree):
    """A new file in a folder that does not exist yet is made with its folders: the nearest folder
    that exists is the one written into."""
    from kvmlint.codemods.engine import ChangeSet, NewFile, plan, write

    read_only(tree / "hw")
    before = contents(tree)
    report = write(plan(tree, [ChangeSet("KVM002", "move", "why", edits=[],
                                          new_files=[NewFile("hw/new/sub/d.h", b"int d;\n")])]))
    assert [why for _, why in report.skipped] == ["hw is a read-only folder; not written"]
    assert contents(tree) == before


def test_fix_in_a_read_only_tree_stops_before_its_lock_in_one_line(tree):
    """The lock and the journal live at the root of a tree without git: a read-only root
    is said at once, and `fix --diff` still shows the fixes."""
    read_only(tree)
    before = contents(tree)
    line = one_line_refusal(kvmlint("fix", tree))
    assert f"{tree} is a read-only folder" in line and "kvmlint fix --diff" in line
    assert contents(tree) == before
    shown = kvmlint("fix", "--diff", tree)
    assert shown.returncode == 1 and "+++ b/target-i386/kvm_i386.h" in shown.stdout, shown.stderr
    assert contents(tree) == before


def test_an_interrupted_fix_is_not_finished_into_a_folder_made_read_only_since(tree, monkeypatch):
    """The roll-back would write into target-i386/: the journal stays for the user, nothing is touched."""
    from kvmlint.codemods.engine import ChangeSet, Edit, plan, write

    change = ChangeSet("KVM002", "move", "why", edits=[Edit("kvm.h", 0, 0, b"/* a */\n"),
                                                        Edit("target-i386/kvm.c", 0, 0, b"/* b */\n")])

    def killed_after_the_first_rename(entry):
        if entry.path != "kvm.h":
            raise KeyboardInterrupt
        real_rename(entry)

    real_rename = transaction._rename
    monkeypatch.setattr(transaction, "_rename", killed_after_the_first_rename)
    with pytest.raises(KeyboardInterrupt):
        write(plan(tree, [change]))
    monkeypatch.undo()
    read_only(tree / "target-i386")
    before = contents(tree)
    line = one_line_refusal(kvmlint("fix", tree))
    assert "target-i386 is a read-only folder: an interrupted fix cannot be finished there" in line
    assert contents(tree) == before
    (tree / "target-i386").chmod(0o755)
    assert transaction.recover(tree) == ["rolled back an interrupted fix: restored kvm.h",
                                         "removed 1 temporary file(s) of an interrupted fix"]


def test_a_read_only_tree_is_still_checked_without_writing_a_cache(tree):
    read_only(tree)
    before = contents(tree)
    done = kvmlint("check", "--format", "concise", tree, in_tree_cache=True)
    assert done.returncode == 1 and " KVM002 " in done.stdout, done.stderr
    assert "internal error" not in done.stderr
    assert contents(tree) == before


def test_a_read_only_cache_folder_is_read_never_written(tree):
    kvmlint("check", tree, in_tree_cache=True)
    cache = tree / ".kvmlint_cache"
    assert any(cache.glob("facts-*"))
    (tree / "kvm-all.c").write_text((tree / "kvm-all.c").read_text() + "\n/* changed */\n")
    read_only(cache)
    before = contents(cache)
    done = kvmlint("check", "--format", "concise", tree, in_tree_cache=True)
    assert done.returncode == 1 and " KVM002 " in done.stdout, done.stderr
    assert contents(cache) == before


@pytest.mark.parametrize("where", ["the-folder", "a-folder-to-make-in-it"])
def test_a_patch_series_is_never_written_into_a_read_only_folder(tree, tmp_path, where):
    subprocess.run(["git", "init", "-q"], cwd=tree, check=True)
    subprocess.run(["git", "add", "-A"], cwd=tree, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"], cwd=tree, check=True)
    patches = tmp_path / "patches"
    patches.mkdir()
    read_only(patches)
    destination = patches if where == "the-folder" else patches / "series"
    done = kvmlint("fix", "--rule", "irq0-override", "--format-patch", destination, tree)
    assert f"{patches} is a read-only folder (nothing written)" in one_line_refusal(done)
    assert list(patches.iterdir()) == []


@pytest.mark.parametrize("read_only_part", ["folder", "file"])
def test_a_report_is_never_written_into_a_read_only_folder_or_over_a_read_only_file(tree, tmp_path, read_only_part):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "kvmlint.txt").write_text("the last report\n")
    read_only(reports if read_only_part == "folder" else reports / "kvmlint.txt")
    before = contents(reports)
    done = kvmlint("check", "-o", reports / "kvmlint.txt", tree)
    shown = reports if read_only_part == "folder" else reports / "kvmlint.txt"
    assert f"{shown} is {'a read-only folder' if read_only_part == 'folder' else 'read-only'}" in one_line_refusal(done)
    assert contents(reports) == before
