"""A repository's git configuration cannot make kvmlint run a program, and `fix --commit`
records kvmlint's own change of HEAD or nothing.

Each attack is a case of bench/hostile_cases/gitconfig.py or commit.py (one test each, so
`bench/hostile.py` shows the same verdicts); the tests below them check what a user relies
on when nothing attacks: their own signing settings, a clean index after the commits, line
endings as git stores them, a sparse checkout that hides nothing the fix needs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from hostile_cases import commit as commit_cases, gitconfig as gitconfig_cases  # noqa: E402
from hostile_cases._gitrepo import USER_CONFIG, checkout, git, run, verdict  # noqa: E402


@pytest.mark.parametrize("case", gitconfig_cases.CASES, ids=lambda case: case.__name__[len("case_"):])
def test_repository_configuration_runs_no_program(case, tmp_path):
    assert case(tmp_path) is None


@pytest.mark.parametrize("case", commit_cases.CASES, ids=lambda case: case.__name__[len("case_"):])
def test_fix_commit_is_all_or_nothing(case, tmp_path):
    assert case(tmp_path) is None


def fake_signer(folder: Path) -> Path:
    """A gpg that signs anything, as git expects gpg to answer, and says it ran."""
    signer = folder / "user-signer"
    signer.write_text(
        "#!/bin/sh\ncat >/dev/null\n"
        f"echo signed >> '{folder / 'user-signed'}'\n"
        "printf '\\n[GNUPG:] SIG_CREATED D 1 8 00 0 0\\n' >&2\n"
        "printf -- '-----BEGIN PGP SIGNATURE-----\\n\\na2V2bWxpbnQ=\\n-----END PGP SIGNATURE-----\\n'\n")
    signer.chmod(0o755)
    return signer


def test_the_users_own_commit_gpgsign_signs_with_the_users_program(tmp_path):
    signer = fake_signer(tmp_path)
    tree = checkout(tmp_path, user_config=USER_CONFIG + f"[commit]\n\tgpgSign = true\n[gpg]\n\tprogram = {signer}\n")
    base = git(tmp_path, tree, "rev-parse", "HEAD").strip()
    assert verdict(tmp_path, run(tmp_path, "fix", "--commit", ".")) is None
    commits = git(tmp_path, tree, "rev-list", f"{base}..HEAD").split()
    assert len(commits) >= 5
    assert all("\ngpgsig -----BEGIN PGP SIGNATURE-----" in git(tmp_path, tree, "cat-file", "commit", c) for c in commits)


def test_gpg_sign_goes_with_commit(tmp_path):
    checkout(tmp_path)
    result = run(tmp_path, "fix", "--gpg-sign", ".")
    assert (result.returncode, result.stderr) == (2, b"kvmlint: --gpg-sign goes with --commit\n")


def test_after_the_commits_index_and_work_tree_agree_with_head(tmp_path):
    tree = checkout(tmp_path)
    base = git(tmp_path, tree, "rev-parse", "HEAD").strip()
    assert verdict(tmp_path, run(tmp_path, "fix", "--commit", ".")) is None
    assert git(tmp_path, tree, "status", "--porcelain") == ""
    assert git(tmp_path, tree, "diff-files", "--name-only") == ""  # the index's stat data is fresh, too
    assert git(tmp_path, tree, "diff", "--cached", "--name-only") == ""
    committed = set(git(tmp_path, tree, "diff", "--name-only", base, "HEAD").split())
    assert {"kvm.h", "kvm-all.c", "cpus.c", "target-i386/kvm_i386.h"} <= committed
    reflog = git(tmp_path, tree, "reflog", "-n1", "--format=%gs", "master")
    assert reflog.startswith("kvmlint fix --commit: ")


def test_a_crlf_checkout_commits_blobs_as_git_stores_them(tmp_path):
    tree = checkout(tmp_path)
    git(tmp_path, tree, "config", "core.autocrlf", "true")
    for path in tree.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            path.unlink()
    git(tmp_path, tree, "checkout", "-q", "--", ".")  # every file now ends its lines with CRLF
    assert b"\r\n" in (tree / "kvm.h").read_bytes()
    assert verdict(tmp_path, run(tmp_path, "fix", "--commit", ".")) is None
    assert b"\r\n" in (tree / "kvm.h").read_bytes()
    assert "\r" not in git(tmp_path, tree, "show", "HEAD:kvm.h")
    assert "kvm_set_irq" in git(tmp_path, tree, "show", "HEAD:kvm.h")
    assert git(tmp_path, tree, "status", "--porcelain") == ""


def test_a_sparse_checkout_hiding_no_user_of_a_changed_name_is_committed(tmp_path):
    tree = checkout(tmp_path)
    git(tmp_path, tree, "sparse-checkout", "set", "--no-cone", "/*", "!/hw/kvm/")
    base = git(tmp_path, tree, "rev-parse", "HEAD").strip()
    assert verdict(tmp_path, run(tmp_path, "fix", "--commit", ".")) is None
    assert git(tmp_path, tree, "rev-list", "--count", f"{base}..HEAD").strip() != "0"
    assert git(tmp_path, tree, "diff", "--name-only", base, "HEAD", "--", "hw/kvm") == ""
    assert not (tree / "hw" / "kvm").exists()
    assert git(tmp_path, tree, "status", "--porcelain") == ""


def test_a_tree_in_a_subdirectory_of_its_repository_is_committed_in_its_place(tmp_path):
    tree = checkout(tmp_path)
    repository = tmp_path / "monorepo"
    (repository / "notes").mkdir(parents=True)
    (repository / "notes" / "README").write_text("not QEMU\n")
    tree.rename(repository / "qemu")
    tree = repository / "qemu"
    (tree / ".git").rename(repository / ".git")
    git(tmp_path, repository, "add", "-A")
    git(tmp_path, repository, "commit", "-q", "-m", "Move QEMU into a subdirectory")
    base = git(tmp_path, repository, "rev-parse", "HEAD").strip()
    assert verdict(tmp_path, run(tmp_path, "fix", "--commit", ".", cwd=tree)) is None
    committed = git(tmp_path, repository, "diff", "--name-only", base, "HEAD").split()
    assert "qemu/kvm.h" in committed and all(path.startswith("qemu/") for path in committed)
    assert "kvm_set_irq" in git(tmp_path, repository, "show", "HEAD:qemu/kvm.h")
    assert git(tmp_path, repository, "status", "--porcelain") == ""
