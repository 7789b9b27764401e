"""`check --patch FILE|-`: a series reviewed as the list does, per patch, applied in memory; `--diff-base A..B`."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import lay_out

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Q. Developer", "GIT_AUTHOR_EMAIL": "dev@example.org",
    "GIT_COMMITTER_NAME": "Q. Developer", "GIT_COMMITTER_EMAIL": "dev@example.org",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}
NEW_PROXY_USE = "\nstatic bool vcpu_may_sleep(void)\n{\n    return kvm_irqchip_in_kernel();\n}\n"
HELPER = "\nbool kvm_flash_encryption_enabled(void)\n{\n    return kvm_state->encryption_handle != NULL;\n}\n"
CALLER = ("\nvoid pc_system_flash_init(MemoryRegion *flash)\n{\n    if (kvm_flash_encryption_enabled()) {\n"
          "        pc_encrypt_flash(flash);\n    }\n}\n")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, env={**os.environ, **GIT_ENV}, check=True,
                          capture_output=True, text=True).stdout


def kvmlint(cwd: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kvmlint", "check", *args], cwd=cwd, capture_output=True, text=True,
                          input=input, timeout=300)


def reported(result: subprocess.CompletedProcess) -> list[tuple[str, str, int, str]]:
    """(code, path, line, message) of each finding of a JSON report."""
    assert result.returncode in (0, 1), result.stderr
    return [(f["code"], f["path"], f["line"], f["message"]) for f in json.loads(result.stdout)["findings"]]


def commit_change(repo: Path, path: str, text: str, subject: str) -> None:
    with open(repo / path, "a") as file:
        file.write(text)
    git(repo, "commit", "-q", "-am", subject)


@pytest.fixture
def tree(tmp_path) -> Path:
    """The 2012 sample tree as a git repository: the series below is made on it, then taken back off."""
    repo = lay_out(tmp_path / "qemu", "qemu-2012")
    git(repo, "init", "-q", "-b", "master")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    return repo


def make_series(repo: Path, *changes: tuple[str, str, str]) -> Path:
    """`git format-patch` of one commit per (path, appended text, subject), as one mbox; HEAD stays the base."""
    for path, text, subject in changes:
        commit_change(repo, path, text, subject)
    mbox = repo.parent / "series.mbox"
    mbox.write_text(git(repo, "format-patch", "--stdout", f"HEAD~{len(changes)}"))
    git(repo, "reset", "-q", "--hard", f"HEAD~{len(changes)}")
    return mbox


def snapshot(repo: Path) -> dict[str, str]:
    """Every file of the work tree and of .git (index, objects, refs), by content."""
    return {path.relative_to(repo).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(repo.rglob("*")) if path.is_file()}


def test_a_proxy_use_the_second_patch_adds_is_reported_for_it_alone(tree):
    series = make_series(tree, ("hw/pc.c", "/* board comment */\n", "hw/pc: say what the board is"),
                         ("cpus.c", NEW_PROXY_USE, "cpus: let a vcpu sleep"))
    found = reported(kvmlint(tree, "--format", "json", "--patch", str(series)))
    assert [(code, path) for code, path, _, _ in found] == [("KVM001", "cpus.c")]
    assert found[0][3].startswith('PATCH 2/2 "cpus: let a vcpu sleep": kvm_irqchip_in_kernel() in common code')
    # the tree's own findings (cpus.c has one, kvm-all.c several) are not the series'
    assert len(reported(kvmlint(tree, "--format", "json"))) > 1


def test_the_series_read_from_standard_input(tree):
    series = make_series(tree, ("cpus.c", NEW_PROXY_USE, "cpus: let a vcpu sleep"))
    result = kvmlint(tree, "--format", "concise", "--patch", "-", input=series.read_text())
    assert result.returncode == 1, result.stderr
    assert result.stdout.count("\n") == 1 and 'KVM001 [irqchip-proxy] PATCH 1/1 "cpus: let a vcpu sleep": ' in result.stdout


def test_a_helper_whose_caller_a_later_patch_adds_is_reported_for_that_patch(tmp_path):
    repo = lay_out(tmp_path / "qemu", "qemu-2012", "qemu-helpers")
    for path, text in (("kvm-all.c", HELPER), ("hw/pc.c", CALLER)):
        source = (repo / path).read_text()
        assert source.endswith(text)
        (repo / path).write_text(source[: -len(text)])
    git(repo, "init", "-q", "-b", "master")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    series = make_series(repo, ("kvm-all.c", HELPER, "kvm: flash encryption"), ("hw/pc.c", CALLER, "hw/pc: encrypt the flash"))
    found = reported(kvmlint(repo, "--format", "json", "--patch", str(series)))
    assert [(code, path) for code, path, _, _ in found] == [("KVM002", "kvm-all.c")]
    assert found[0][3].startswith('PATCH 2/2 "hw/pc: encrypt the flash": kvm_flash_encryption_enabled() is x86-specific')


def test_the_work_tree_the_index_and_the_repository_stay_byte_identical(tree):
    series = make_series(tree, ("cpus.c", NEW_PROXY_USE, "cpus: let a vcpu sleep"))
    (tree / "hw/pc.c").write_text("/* staged */\n" + (tree / "hw/pc.c").read_text())
    git(tree, "add", "hw/pc.c")
    (tree / "cpus.c").write_text("/* an edit of the user's, not staged */\n" + (tree / "cpus.c").read_text())
    before = snapshot(tree)
    found = reported(kvmlint(tree, "--format", "json", "--patch", str(series)))
    assert snapshot(tree) == before
    # judged on HEAD with the patch, not on the user's edited cpus.c (one line longer)
    assert [(code, path, line) for code, path, line, _ in found] == [("KVM001", "cpus.c", 44)]


def test_a_file_that_holds_no_patch_is_one_line(tree):
    (tree.parent / "notes.txt").write_text("Subject: thoughts\n\nno diff here\n")
    result = kvmlint(tree, "--patch", str(tree.parent / "notes.txt"))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"kvmlint: --patch {tree.parent / 'notes.txt'}: no patch in it "
                             "(expected an mbox or `git format-patch` output with a diff)\n")


def test_a_corrupt_patch_is_one_line(tree):
    series = make_series(tree, ("cpus.c", NEW_PROXY_USE, "cpus: let a vcpu sleep"))
    corrupt = series.read_text().replace("@@ -38,3 +38,8 @@", "@@ -38,3 +38,80 @@")
    assert corrupt != series.read_text()
    result = kvmlint(tree, "--patch", "-", input=corrupt)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith('kvmlint: --patch -: PATCH 1/1 "cpus: let a vcpu sleep": not a valid patch: ')


def test_a_patch_that_does_not_apply_is_one_line(tree):
    series = make_series(tree, ("cpus.c", NEW_PROXY_USE, "cpus: let a vcpu sleep"))
    commit_change(tree, "cpus.c", "/* moved on */\n", "cpus: a later change")
    result = kvmlint(tree, "--patch", str(series))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f'kvmlint: --patch {series}: PATCH 1/1 "cpus: let a vcpu sleep": '
                                    "does not apply to HEAD: ")
    assert "cpus.c" in result.stderr
    # on the commit it was made for, it does
    found = reported(kvmlint(tree, "--format", "json", "--patch", str(series), "--base", "HEAD~1"))
    assert [(code, path) for code, path, _, _ in found] == [("KVM001", "cpus.c")]


def test_a_shallow_clone_without_the_base_says_to_fetch_more(tree, tmp_path):
    series = make_series(tree, ("cpus.c", NEW_PROXY_USE, "cpus: let a vcpu sleep"))
    for number in range(2):
        commit_change(tree, "hw/pc.c", f"/* {number} */\n", f"hw/pc: comment {number}")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{tree}", str(clone))
    for args, message in (
        (("--patch", str(series), "--base", "HEAD~2"), f"kvmlint: --patch {series}: --base HEAD~2: no such commit: "),
        (("--diff-base", "HEAD~2..HEAD"), "kvmlint: --diff-base HEAD~2..HEAD: HEAD~2: no such commit: "),
    ):
        result = kvmlint(clone, *args)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(message + "this is a shallow clone: "), result.stderr
        assert "git fetch --deepen=N" in result.stderr


def test_diff_base_with_a_range_judges_the_range_s_last_commit(tree):
    commit_change(tree, "cpus.c", NEW_PROXY_USE, "cpus: let a vcpu sleep")
    commit_change(tree, "hw/pc.c", "/* board comment */\n", "hw/pc: say what the board is")
    git(tree, "checkout", "-q", "HEAD~2")  # the work tree holds neither change
    found = reported(kvmlint(tree, "--format", "json", "--diff-base", "HEAD..master"))
    assert [(code, path, line) for code, path, line, _ in found] == [("KVM001", "cpus.c", 44)]
    assert reported(kvmlint(tree, "--format", "json", "--diff-base", "master~1...master")) == []
    assert reported(kvmlint(tree, "--format", "json", "--diff-base", "master~2..master~1")) == found


def test_patch_goes_alone(tree):
    for args in (("--patch", "-", "--staged"), ("--patch", "-", "--diff-base", "HEAD"), ("--base", "HEAD")):
        result = kvmlint(tree, *args, input="")
        assert result.returncode == 2 and result.stderr.count("\n") == 1, (args, result.stderr)
