"""The real pre-commit, running kvmlint's hook on real `git commit`s in a QEMU-like repository.

pre-commit builds the hook's environment once per session (pip installs
kvmlint and its dependencies), so these tests take a while: marked `slow`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import lay_out
from test_workflow import CPUS_C, GIT_ENV, NEW_PROXY_USE, git, make_qemu_repo

pytestmark = pytest.mark.slow

KVMLINT_CHECKOUT = Path(__file__).resolve().parents[2]
# What pre-commit needs of the kvmlint repository: the hook file and an installable package.
HOOK_REPO_PATHS = ("kvmlint", "pyproject.toml", ".pre-commit-hooks.yaml", "README.md", "LICENSE")


@pytest.fixture(scope="session")
def precommit_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory) -> tuple[Path, str]:
    """A git repository holding this checkout's kvmlint as it is now, committed."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *HOOK_REPO_PATHS],
        cwd=KVMLINT_CHECKOUT, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    repo = tmp_path_factory.mktemp("kvmlint-hook-repo")
    for name in filter(None, listed):
        if (KVMLINT_CHECKOUT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(KVMLINT_CHECKOUT / name, repo / name)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "kvmlint under test")
    return repo, git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def qemu(tmp_path, hook_repo, precommit_home) -> Path:
    """A QEMU-like repository with kvmlint's hook installed and its environment built."""
    hook_path, revision = hook_repo
    repo = make_qemu_repo(tmp_path / "qemu")
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {hook_path}\n  rev: {revision}\n  hooks:\n  - id: kvmlint\n"
    )
    git(repo, "add", ".pre-commit-config.yaml")
    git(repo, "commit", "-q", "--no-verify", "-m", "use kvmlint")
    precommit(repo, precommit_home, "install")
    precommit(repo, precommit_home, "install-hooks")  # builds the environment once per session
    return repo


def precommit(repo: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", *args], cwd=repo, capture_output=True, text=True, check=True,
        env=environment(home),
    )


def environment(home: Path) -> dict:
    return {**os.environ, **GIT_ENV, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}


def commit(repo: Path, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", "commit", "-m", "change"], cwd=repo, capture_output=True, text=True, env=environment(home)
    )


def test_a_commit_adding_a_proxy_use_is_blocked(qemu, precommit_home):
    (qemu / "cpus.c").write_text(CPUS_C + NEW_PROXY_USE)
    git(qemu, "add", "cpus.c")
    result = commit(qemu, precommit_home)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "cpus.c:17:" in output and "KVM001 [irqchip-proxy]" in output
    assert "cpus.c:4:" not in output  # the old finding is not this commit's


def test_a_commit_touching_only_other_lines_passes(qemu, precommit_home):
    (qemu / "cpus.c").write_text(CPUS_C.replace("gdb_set_stop_cpu(env);", "gdb_set_stop_cpu(env);\n    vm_stop(RUN_STATE_DEBUG);"))
    git(qemu, "add", "cpus.c")
    result = commit(qemu, precommit_home)
    output = result.stdout + result.stderr  # git shows the hook's report on stderr
    assert result.returncode == 0, output
    assert "kvmlint...." in output and "Passed" in output


def test_try_repo_runs_the_hook_on_given_files(qemu, hook_repo, precommit_home):
    (qemu / "cpus.c").write_text(CPUS_C + NEW_PROXY_USE)
    git(qemu, "add", "cpus.c")
    result = subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(hook_repo[0]), "kvmlint", "--files", "cpus.c"],
        cwd=qemu, capture_output=True, text=True, env=environment(precommit_home),
    )
    assert result.returncode == 1 and "cpus.c:17:" in result.stdout, result.stdout + result.stderr


def test_all_files_with_nothing_staged_reports_the_existing_findings(qemu, precommit_home):
    assert git(qemu, "diff", "--cached", "--name-only") == ""
    result = subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "--all-files"], cwd=qemu, capture_output=True, text=True,
        env=environment(precommit_home),
    )
    assert result.returncode == 1 and "cpus.c:4:" in result.stdout and "KVM001 [irqchip-proxy]" in result.stdout, result.stdout


# --- the set-up docs/workflow.md documents, pasted as it is --------------------------------------------

WORKFLOW_DOC = KVMLINT_CHECKOUT / "docs" / "workflow.md"


def documented_config() -> str:
    """The `.pre-commit-config.yaml` that the pre-commit section of docs/workflow.md shows."""
    section = WORKFLOW_DOC.read_text().split("\n## pre-commit", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"^```yaml\n(.*?)^```", section, re.S | re.M)
    return block


@pytest.fixture
def documented_qemu(tmp_path, precommit_home) -> tuple[Path, dict]:
    """The 2012 sample as a git repository with the documented config committed and the hook installed;
    the environment has `kvmlint` on PATH as `pipx install` puts it (here, the kvmlint under test)."""
    repo = lay_out(tmp_path / "qemu", "qemu-2012")
    (repo / ".pre-commit-config.yaml").write_text(documented_config())
    git(repo, "init", "-q", "-b", "master")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", "initial")
    env = {**environment(precommit_home),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    subprocess.run([sys.executable, "-m", "pre_commit", "install"], cwd=repo, env=env, check=True,
                   capture_output=True)
    return repo, env


def test_the_documented_config_has_the_hook_definitions_fields():
    import yaml

    (hook,) = yaml.safe_load(documented_config())["repos"][0]["hooks"]
    (defined,) = yaml.safe_load((KVMLINT_CHECKOUT / ".pre-commit-hooks.yaml").read_text())
    for field in ("id", "name", "entry", "files", "types", "require_serial"):
        assert hook[field] == defined[field], field
    assert "rev" not in yaml.safe_load(documented_config())["repos"][0]


def test_the_documented_config_blocks_a_commit_adding_a_finding_and_passes_a_clean_one(documented_qemu):
    repo, env = documented_qemu
    cpus = repo / "cpus.c"
    original = cpus.read_text()
    cpus.write_text(original + NEW_PROXY_USE)
    git(repo, "add", "cpus.c")
    blocked = subprocess.run(["git", "commit", "-m", "a new proxy use"], cwd=repo, capture_output=True, text=True,
                             env=env)
    output = blocked.stdout + blocked.stderr
    new_line = original.count("\n") + NEW_PROXY_USE.splitlines().index("    return kvm_irqchip_in_kernel();") + 1
    assert blocked.returncode != 0, output
    assert f"cpus.c:{new_line}:" in output and "KVM001 [irqchip-proxy]" in output, output
    assert "cpus.c:24:" not in output  # the sample's old finding is not this commit's

    cpus.write_text(original.replace("{\n", "{\n    /* reviewed */\n", 1))
    git(repo, "add", "cpus.c")
    passed = subprocess.run(["git", "commit", "-m", "a comment"], cwd=repo, capture_output=True, text=True, env=env)
    output = passed.stdout + passed.stderr
    assert passed.returncode == 0, output
    assert "kvmlint...." in output and "Passed" in output, output
