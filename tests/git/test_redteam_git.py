"""What the red team found in kvmlint's use of git, each as a user meets it.

The attacks (a FIFO or /dev/zero reached through the configuration, grep's output
options, a `.git` file naming another repository or holding a NUL) are the cases of
bench/hostile_cases/gitread.py, one test each.  The tests below them check answers a
user relies on: a sha256 repository's patch series applies with `git am -3`, `--staged`
judges what is stored, a change that adds nothing passes the hook, and binary files
beside a change do not stop it.  Every run is a process of its own under CPU and memory
limits and a timeout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from hostile_cases import gitread as gitread_cases, kvmlint  # noqa: E402
from hostile_cases._gitrepo import ISOLATED, checkout, git, user  # noqa: E402

NEW_PROXY = gitread_cases.NEW_PROXY


@pytest.mark.parametrize("case", gitread_cases.CASES, ids=lambda case: case.__name__[len("case_"):])
def test_what_the_repository_makes_git_read(case, tmp_path):
    assert case(tmp_path) is None


def run(tmp_path: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return kvmlint(tmp_path, *args, cwd=cwd or tmp_path / "qemu", env=ISOLATED, limited=True)


def concise(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stdout.decode("utf-8", "replace").splitlines() if " KVM0" in line]


def errors(result: subprocess.CompletedProcess) -> str:
    return result.stderr.decode("utf-8", "replace")


def test_a_patch_series_of_a_sha256_repository_applies_with_git_am_3_on_a_moved_base(tmp_path):
    user(tmp_path)
    tree = gitread_cases.fixture_tree("qemu-2012", tmp_path / "qemu")
    git(tmp_path, tree, "init", "-q", "--object-format=sha256", "-b", "master")
    git(tmp_path, tree, "add", "-A")
    git(tmp_path, tree, "commit", "-q", "-m", "Initial import")
    series = tmp_path / "series"
    result = run(tmp_path, "fix", "--format-patch", str(series), ".")
    assert result.returncode in (0, 1), errors(result)
    clone = tmp_path / "clone"
    git(tmp_path, tmp_path, "clone", "-q", str(tree), str(clone))
    cpus = clone / "cpus.c"
    cpus.write_text(cpus.read_text().replace("return true;\n", "return true; /* moved */\n"))
    git(tmp_path, clone, "commit", "-q", "-am", "cpus: Move the base")
    patches = [path for path in sorted(series.glob("*.patch")) if not path.name.startswith("0000")]
    assert patches
    for patch in patches:
        git(tmp_path, clone, "am", "-3", str(patch))  # raises with git's message when it stops
    assert git(tmp_path, clone, "rev-list", "--count", "HEAD").strip() == str(2 + len(patches))


def test_staged_judges_the_stored_content_of_a_file_with_a_working_tree_encoding(tmp_path):
    tree = checkout(tmp_path)
    (tree / ".gitattributes").write_text("hw/msi.c working-tree-encoding=UTF-16LE\n")
    git(tmp_path, tree, "add", ".gitattributes")
    git(tmp_path, tree, "commit", "-q", "-m", "Attributes")
    source = tree / "hw" / "msi.c"
    source.write_bytes((source.read_text() + NEW_PROXY).encode("utf-16-le"))
    git(tmp_path, tree, "add", "hw/msi.c")
    assert "kvm_irqchip_in_kernel();\n}" in git(tmp_path, tree, "show", ":hw/msi.c")
    result = run(tmp_path, "check", "--staged", "--format", "concise", ".")
    assert result.returncode == 1, errors(result)
    assert [line.split(":")[:2] for line in concise(result)] == [["hw/msi.c", "28"]]


def test_a_staged_change_that_only_deletes_lines_passes_the_hook(tmp_path):
    tree = checkout(tmp_path)
    source = tree / "hw" / "msi.c"
    source.write_text(source.read_text().replace("    /* without KVM every MSI is delivered by the emulated bus */\n", ""))
    git(tmp_path, tree, "add", "hw/msi.c")
    assert git(tmp_path, tree, "diff", "--cached", "--numstat").startswith("0\t1\t")
    result = run(tmp_path, "check", "--staged", "--format", "concise", "hw/msi.c")
    assert (result.returncode, concise(result)) == (0, []), errors(result)


def _merge_in_progress(tmp_path: Path) -> Path:
    """master and side each changed a file; `git merge --no-commit side` merged them cleanly."""
    tree = checkout(tmp_path)
    git(tmp_path, tree, "checkout", "-q", "-b", "side")
    with open(tree / "hw" / "msi.c", "a") as source:
        source.write(NEW_PROXY)
    git(tmp_path, tree, "commit", "-q", "-am", "hw/msi: Ask for the irqchip")
    git(tmp_path, tree, "checkout", "-q", "master")
    with open(tree / "hw" / "pc.c", "a") as source:
        source.write("/* master */\n")
    git(tmp_path, tree, "commit", "-q", "-am", "hw/pc: Comment")
    git(tmp_path, tree, "merge", "--no-commit", "-q", "side")
    return tree


def test_a_clean_merge_passes_the_hook(tmp_path):
    _merge_in_progress(tmp_path)
    result = run(tmp_path, "check", "--staged", "--format", "concise", "hw/msi.c")
    assert (result.returncode, concise(result)) == (0, []), errors(result)


def test_a_merge_head_naming_one_commit_many_times_is_read_once(tmp_path):
    tree = _merge_in_progress(tmp_path)
    merge_head = tree / ".git" / "MERGE_HEAD"
    side = merge_head.read_text()
    merge_head.write_text(side * 1000 + git(tmp_path, tree, "rev-parse", "HEAD"))
    result = run(tmp_path, "check", "--staged", "--verbose", "--format", "concise", "hw/msi.c")
    assert (result.returncode, concise(result)) == (0, []), errors(result)


def test_a_merge_head_naming_too_many_parents_is_one_line(tmp_path):
    tree = checkout(tmp_path)
    commits = []
    for number in range(70):
        commits.append(git(tmp_path, tree, "commit-tree", "HEAD^{tree}", "-p", "HEAD", "-m", f"parent {number}").strip())
    (tree / ".git" / "MERGE_HEAD").write_text("".join(f"{commit}\n" for commit in commits))
    result = run(tmp_path, "check", "--staged", "hw/msi.c")
    assert result.returncode == 2, errors(result)
    assert errors(result).count("\n") == 1 and "parents" in errors(result), errors(result)


def _with_firmware(tmp_path: Path, tree: Path, data: bytes) -> None:
    (tree / "pc-bios").mkdir(exist_ok=True)
    (tree / "pc-bios" / "firmware.bin").write_bytes(data)


def test_a_staged_binary_file_beside_a_c_change_does_not_stop_the_hook(tmp_path):
    tree = checkout(tmp_path)
    _with_firmware(tmp_path, tree, bytes(range(256)) * 8 + b"\n\0\n" * 100)
    with open(tree / "hw" / "msi.c", "a") as source:
        source.write(NEW_PROXY)
    git(tmp_path, tree, "add", "-A")
    result = run(tmp_path, "check", "--staged", "--format", "concise", "hw/msi.c")
    assert result.returncode == 1, errors(result)
    assert [line.split(":")[:2] for line in concise(result)] == [["hw/msi.c", "28"]]


def test_diff_base_on_a_branch_that_changed_a_binary_file_reports_the_branchs_findings(tmp_path):
    tree = checkout(tmp_path)
    _with_firmware(tmp_path, tree, b"\0\1\2\n" * 500)
    git(tmp_path, tree, "add", "-A")
    git(tmp_path, tree, "commit", "-q", "-m", "pc-bios: Add firmware")
    git(tmp_path, tree, "checkout", "-q", "-b", "topic")
    _with_firmware(tmp_path, tree, b"\0\3\4\n" * 600)
    # a binary file renamed, one whose name git quotes, and a C change beside them
    git(tmp_path, tree, "mv", "pc-bios/firmware.bin", "pc-bios/firmware \"new\".bin")
    with open(tree / "hw" / "msi.c", "a") as source:
        source.write(NEW_PROXY)
    git(tmp_path, tree, "commit", "-q", "-am", "Update firmware, ask for the irqchip")
    result = run(tmp_path, "check", "--diff-base", "master", "--format", "concise", ".")
    assert result.returncode == 1, errors(result)
    assert [line.split(":")[:2] for line in concise(result)] == [["hw/msi.c", "28"]]


def test_a_git_timeout_is_one_line(tmp_path):
    """A git that does not answer (a FIFO as the index) stops kvmlint with one line, not a fallback per call."""
    tree = checkout(tmp_path)
    os.unlink(tree / ".git" / "index")
    os.mkfifo(tree / ".git" / "index")
    result = kvmlint(tmp_path, "check", "--staged", ".", cwd=tree,
                     env={**ISOLATED, "KVMLINT_GIT_TIMEOUT_SECONDS": "2"}, limited=True)
    assert result.returncode == 2, errors(result)
    assert errors(result).startswith("kvmlint: ") and errors(result).count("\n") == 1, errors(result)
    assert "did not answer" in errors(result)
