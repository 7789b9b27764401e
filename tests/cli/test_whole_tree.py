"""Whole-tree context: naming files or folders, or --staged, filters what is reported, never what the rules see.

For every finding of a full check, `check FILE`, `check DIR` (from the root and from inside the folder)
and `check --staged [FILE]` (the file staged in a git repository made from the tree) report the same
finding: KVM002's callers, the KVM layer, scopes and the era come from the whole checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from conftest import lay_out

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Q. Developer", "GIT_AUTHOR_EMAIL": "dev@example.org",
    "GIT_COMMITTER_NAME": "Q. Developer", "GIT_COMMITTER_EMAIL": "dev@example.org",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}
FIXTURE_TREES = {
    "qemu-helpers": ("qemu-2012", "qemu-helpers"),
    "qemu-2019": ("qemu-2019",),
    "qemu-current": ("qemu-current",),
    "qemu-functional": ("qemu-functional",),
}
REAL_TREE = os.environ.get("KVMLINT_QEMU_TREE")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, env={**os.environ, **GIT_ENV}, check=True,
                          capture_output=True, text=True).stdout


def findings(root: Path, *args: str, cwd: Path | None = None) -> set[tuple]:
    """Each finding of `kvmlint check ARGS` run in `cwd`, named by its root-relative path."""
    cwd = cwd or root
    completed = subprocess.run([sys.executable, "-m", "kvmlint", "check", "-q", "--format", "json", *args],
                               cwd=cwd, capture_output=True, text=True, timeout=600)
    assert completed.returncode in (0, 1), completed.stderr
    folders = [arg for arg in args if not arg.startswith("-") and (cwd / arg).is_dir()]
    base = (cwd / folders[0]).resolve() if folders else root.resolve()  # JSON paths: relative to a folder named
    return {
        (f["code"], (base / f["path"]).resolve().relative_to(root.resolve()).as_posix(), f["line"], f["column"],
         f["end_line"], f["end_column"], f["symbol"], f["message"])
        for f in json.loads(completed.stdout)["findings"]
    }


def in_git_with_files_staged(tree: Path, staged: list[str]) -> None:
    """`tree` as a git repository whose HEAD lacks `staged`, which the index adds: every line of them is new."""
    git(tree, "init", "-q", "-b", "master")
    git(tree, "add", "-A", "--", ".", ":!.kvmlint_cache")
    git(tree, "rm", "-q", "--cached", "--", *staged)
    git(tree, "commit", "-q", "-m", "the tree without the files under review")
    git(tree, "add", "--", *staged)


def assert_every_finding_is_reported_narrowed(tree: Path) -> None:
    whole = findings(tree)
    assert whole, "a tree with findings"
    by_file = defaultdict(set)
    for finding in whole:
        by_file[finding[1]].add(finding)
    in_git_with_files_staged(tree, sorted(by_file))
    assert findings(tree) == whole  # the same tree, from git's file list
    assert findings(tree, "--staged") == whole
    for path, expected in sorted(by_file.items()):
        folder = (tree / path).parent
        in_folder = {f for f in whole if (tree / f[1]).parent.is_relative_to(folder)}
        assert findings(tree, path) == expected, f"check {path}"
        assert findings(tree, "--staged", path) == expected, f"check --staged {path}"
        assert findings(tree, "--staged", Path(path).name, cwd=folder) == expected, f"check --staged {path} from its folder"
        assert findings(tree, ".", cwd=folder) == in_folder, f"check . from {folder.relative_to(tree)}"
        if folder != tree:
            relative = folder.relative_to(tree).as_posix()
            assert findings(tree, relative) == in_folder, f"check {relative}"


@pytest.mark.parametrize("name", sorted(FIXTURE_TREES))
def test_naming_a_file_a_folder_or_staging_it_reports_what_the_whole_tree_check_does(tmp_path, name):
    assert_every_finding_is_reported_narrowed(lay_out(tmp_path / name, *FIXTURE_TREES[name]))


def test_a_new_x86_helper_whose_caller_is_not_staged_is_found_with_staged(tmp_path):
    """The pre-commit hook names only the staged kvm-all.c; hw/pc.c, the helper's only caller, is committed."""
    tree = lay_out(tmp_path / "qemu", "qemu-2012", "qemu-helpers")
    helper = "\nbool kvm_flash_encryption_enabled(void)\n{\n    return kvm_state->encryption_handle != NULL;\n}\n"
    source = (tree / "kvm-all.c").read_text()
    assert source.endswith(helper)
    (tree / "kvm-all.c").write_text(source[: -len(helper)])
    git(tree, "init", "-q", "-b", "master")
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", "hw/pc: ask for flash encryption")
    (tree / "kvm-all.c").write_text(source)
    git(tree, "add", "kvm-all.c")
    reported = findings(tree, "--staged", "kvm-all.c")
    assert [(f[0], f[6]) for f in reported] == [("KVM002", "kvm_flash_encryption_enabled")]


def test_exclude_hides_findings_but_not_the_callers_in_excluded_files(tmp_path):
    """KVM002 reads every caller, also those in excluded files, as `fix` does."""
    tree = lay_out(tmp_path / "qemu", "qemu-2012", "qemu-helpers")
    whole = findings(tree)
    (tree / "kvmlint.toml").write_text('exclude = ["hw/"]\n')
    assert findings(tree) == {f for f in whole if not f[1].startswith("hw/")}
    assert any(f[6] == "kvm_flash_encryption_enabled" for f in findings(tree, "kvm-all.c"))


@pytest.mark.skipif(not REAL_TREE, reason="set KVMLINT_QEMU_TREE to a QEMU checkout")
def test_a_real_tree_reports_each_finding_when_its_file_or_folder_is_named(tmp_path):
    tree = tmp_path / "qemu"
    shutil.copytree(REAL_TREE, tree, symlinks=True, ignore=shutil.ignore_patterns(".git", ".kvmlint_cache"))
    assert_every_finding_is_reported_narrowed(tree)
