"""What a person meets first outside a QEMU checkout: `--staged` outside git, the warning for a folder
that is no checkout, and no cache folder left in it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_workflow import CPUS_C

NO_CHECKOUT = "no QEMU checkout found here or above"


def kvmlint(cwd: Path, *args: str, env: dict) -> subprocess.CompletedProcess:
    """kvmlint run as a user runs it: the cache where kvmlint puts it, not in the suite's own folder."""
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("CI", "NO_COLOR", "KVMLINT_CACHE_DIR")}
    return subprocess.run([sys.executable, "-m", "kvmlint", *args], cwd=cwd, capture_output=True, text=True,
                          env={**environment, **env}, timeout=300)


@pytest.fixture
def outside(tmp_path) -> tuple[Path, dict]:
    """A folder that no git repository holds, and the environment that keeps git from looking above it
    (and kvmlint's cache key out of the user's home)."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder, {"GIT_CEILING_DIRECTORIES": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "user-cache")}


@pytest.mark.parametrize("layout", ["empty folder", "QEMU-like tree", "its subfolder"])
def test_staged_outside_git_says_so_in_one_line(outside, layout):
    folder, env = outside
    cwd = folder
    if layout != "empty folder":
        (folder / "configure").write_text("#!/bin/sh\n")
        (folder / "cpus.c").write_text(CPUS_C)
        (folder / "hw").mkdir()
        cwd = folder / "hw" if layout == "its subfolder" else folder
    result = kvmlint(cwd, "check", "--staged", env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("kvmlint: --staged: not in a git work tree (") and result.stderr.count("\n") == 1, result.stderr
    assert "unknown option" not in result.stderr


@pytest.mark.parametrize("given, named", [
    (["loose"], "loose"),
    (["loose/"], "loose/"),
    (["loose/a.c", "loose/b.c"], "loose"),
    ([], "."),
])
def test_the_warning_for_a_folder_that_is_no_checkout_names_the_path_given(outside, given, named):
    folder, env = outside
    (folder / "loose").mkdir()
    for name in ("a.c", "b.c"):
        (folder / "loose" / name).write_text(CPUS_C)
    result = kvmlint(folder / "loose" if not given else folder, "check", *given, env=env)
    assert result.returncode == 1, result.stderr
    assert f"kvmlint: warning: {named}: {NO_CHECKOUT}" in result.stderr.splitlines()[0], result.stderr


@pytest.mark.parametrize("content", [{}, {"cpus.c": CPUS_C}, {"notes.txt": "kvm\n"}])
@pytest.mark.parametrize("command", [["check"], ["check", "--staged"], ["fix", "--diff"]])
def test_a_folder_that_is_no_checkout_gets_no_cache(outside, content, command):
    folder, env = outside
    for name, text in content.items():
        (folder / name).write_text(text)
    for cwd, paths in ((folder, []), (folder.parent, [folder.name])):
        result = kvmlint(cwd, *command, *paths, env=env)
        assert "Traceback" not in result.stderr, result.stderr
        assert sorted(path.name for path in folder.iterdir()) == sorted(content)


def test_a_checkout_keeps_its_cache_and_a_folder_that_is_none_uses_kvmlint_cache_dir(outside, tmp_path):
    folder, env = outside
    (folder / "loose").mkdir()
    (folder / "loose" / "cpus.c").write_text(CPUS_C)
    assert kvmlint(folder, "check", "loose", env={**env, "KVMLINT_CACHE_DIR": str(tmp_path / "cache")}).returncode == 1
    assert any((tmp_path / "cache").iterdir()) and not (folder / "loose" / ".kvmlint_cache").exists()

    (folder / "configure").write_text("#!/bin/sh\n")
    assert kvmlint(folder, "check", "loose", env=env).returncode == 1
    assert (folder / ".kvmlint_cache").is_dir()
