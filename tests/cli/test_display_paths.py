"""text and concise print each finding's path so that an editor's quickfix opens the file from where
kvmlint ran: relative to the working directory when the file is under it, else absolute (ruff's way).
JSON keeps its documented base (the one folder named, else the tree's root)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import lay_out

PROXY = "accel/kvm/kvm-all.c:31:10: KVM001 [irqchip-proxy]"


def kvmlint(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key not in ("CI", "NO_COLOR")}
    return subprocess.run([sys.executable, "-m", "kvmlint", *args], cwd=cwd, capture_output=True, text=True,
                          env=environment, timeout=120)


@pytest.fixture
def tree(tmp_path) -> Path:
    return lay_out(tmp_path / "qemu", "qemu-current")


def first_lines(output: str) -> list[str]:
    """The findings' first lines (text's notes are indented; the summary starts with Found)."""
    return [line for line in output.splitlines() if line and not line.startswith((" ", "Found "))]


@pytest.mark.parametrize("format_name", ["concise", "text"])
def test_a_subfolder_named_from_the_root_prints_root_relative_paths(tree, format_name):
    result = kvmlint(tree, "check", "accel/kvm", "--format", format_name)
    assert result.returncode == 1, result.stderr
    assert first_lines(result.stdout)[0].startswith(PROXY), result.stdout
    opened = first_lines(result.stdout)[0].split(":")[0]
    assert (tree / opened).is_file()


def test_dot_from_a_subfolder_prints_paths_relative_to_it(tree):
    result = kvmlint(tree / "accel" / "kvm", "check", ".", "--format", "concise")
    assert result.returncode == 1, result.stderr
    assert first_lines(result.stdout)[0].startswith("kvm-all.c:31:10: KVM001"), result.stdout


def test_a_tree_below_the_working_directory_is_printed_from_there(tree):
    result = kvmlint(tree.parent, "check", "qemu/accel", "--format", "concise")
    assert first_lines(result.stdout)[0].startswith("qemu/" + PROXY), result.stdout


def test_a_tree_outside_the_working_directory_is_printed_absolute(tree, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = kvmlint(elsewhere, "check", str(tree / "accel" / "kvm"), "--format", "concise")
    line = first_lines(result.stdout)[0]
    assert line.startswith(f"{tree.resolve()}/{PROXY}"), result.stdout
    # A sibling folder of the working directory, named relatively: absolute too, never ../
    inside = kvmlint(tree / "hw", "check", "../accel/kvm", "--format", "concise")
    assert first_lines(inside.stdout)[0].startswith(f"{tree.resolve()}/{PROXY}"), inside.stdout


def test_staged_prints_paths_relative_to_the_working_directory(tree):
    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=tree,
                       check=True, capture_output=True)

    git("init", "-q")
    core = tree / "accel" / "kvm" / "kvm-all.c"
    core.write_text(core.read_text().replace("if (!kvm_irqchip_in_kernel()) {", "if (!kvm_irqchip_in_kernel()) { /* */"))
    git("add", "-A", ":!accel/kvm/kvm-all.c")
    git("commit", "-q", "-m", "base")
    git("add", "accel/kvm/kvm-all.c")
    from_root = kvmlint(tree, "check", "--staged", "--format", "concise")
    assert first_lines(from_root.stdout)[0].startswith(PROXY), (from_root.stdout, from_root.stderr)
    from_accel = kvmlint(tree / "accel", "check", "--staged", "--format", "concise")
    assert first_lines(from_accel.stdout)[0].startswith("kvm/kvm-all.c:31:10: KVM001"), from_accel.stdout


def test_json_paths_stay_relative_to_the_folder_named(tree):
    result = kvmlint(tree, "check", "accel/kvm", "--format", "json")
    paths = {finding["path"] for finding in json.loads(result.stdout)["findings"]}
    assert "kvm-all.c" in paths, paths
