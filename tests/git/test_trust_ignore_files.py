"""An ignore or attributes file git reads (`.gitignore`, `.gitattributes` in any folder of the work
tree, `.git/info/exclude`, `.git/info/attributes`) that is a FIFO or a link to a device cannot make
kvmlint wait for git's timeout: it is refused in one line, naming it, before git runs."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "qemu-snippets"
TIMEOUT = 30  # git's own timeout is 120 s: a run that reaches it fails here


def limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    resource.setrlimit(resource.RLIMIT_CPU, (TIMEOUT, TIMEOUT))


def kvmlint(*args, cwd: Path):
    return subprocess.run([sys.executable, "-m", "kvmlint", *args], cwd=cwd, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=TIMEOUT, preexec_fn=limit)


def git(*args, cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


@pytest.fixture
def checkout(tmp_path) -> Path:
    tree = Path(shutil.copytree(FIXTURES / "qemu-2012", tmp_path / "tree"))
    git("init", "-q", cwd=tree)
    git("add", "-A", cwd=tree)
    git("commit", "-qm", "base", cwd=tree)
    return tree


PLACES = [".gitignore", "hw/.gitattributes", "untracked/deeper/.gitignore", ".git/info/exclude", ".git/info/attributes"]


@pytest.mark.parametrize("kind", ["fifo", "link-to-dev-zero"])
@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("command", [("check", "."), ("check", "--staged", "."), ("fix", "--diff", ".")], ids=" ".join)
def test_an_ignore_or_attributes_file_git_would_wait_on_is_refused_in_one_line(checkout, place, kind, command):
    planted = checkout / place
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.unlink(missing_ok=True)
    os.mkfifo(planted) if kind == "fifo" else planted.symlink_to("/dev/zero")
    try:
        done = kvmlint(*command, cwd=checkout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"kvmlint {' '.join(command)} waited on {place}")
    lines = done.stderr.splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"kvmlint: {planted}: not a regular file") and "git would wait on it" in lines[0]


def test_a_tree_below_the_work_trees_top_has_the_files_above_it_checked(checkout):
    """git reads the ignore files of every folder from the work tree's top down to where it runs."""
    inner = checkout / "qemu"
    inner.mkdir()
    (inner / "configure").write_text("#!/bin/sh\n")
    shutil.copy(checkout / "kvm-all.c", inner / "kvm-all.c")
    (checkout / ".gitignore").unlink(missing_ok=True)
    os.mkfifo(checkout / ".gitignore")
    done = kvmlint("check", "--staged", ".", cwd=inner)
    assert done.returncode == 2 and f"{checkout / '.gitignore'}: not a regular file" in done.stderr, done.stderr


def test_regular_ignore_and_attributes_files_are_read_as_usual(checkout):
    shutil.copy(checkout / "hw" / "msi.c", checkout / "hw" / "ignored.c")
    (checkout / "hw" / ".gitignore").write_text("ignored.c\n")
    (checkout / ".gitattributes").write_text("*.c diff\n")
    done = kvmlint("check", "--format", "concise", ".", cwd=checkout)
    assert done.returncode == 1, done.stderr
    assert "hw/msi.c:" in done.stdout and "hw/ignored.c" not in done.stdout
