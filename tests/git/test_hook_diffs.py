"""`--staged` and `--diff-base` judge exactly the change: the staged content, any file name, any diff config, merges."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kvmlint.git.diffs import changes_since, staged_changes
from kvmlint.reporters import exact_path
from test_workflow import CPUS_C, GIT_ENV, NEW_PROXY_USE, git, kvmlint, make_qemu_repo, reported_lines

# NEW_PROXY_USE appended to cpus.c puts the proxy use on line 17; this puts a harmless line there.
HARMLESS_FUNCTION = NEW_PROXY_USE.replace("return kvm_irqchip_in_kernel();", "return false;")


@pytest.fixture
def repo(tmp_path) -> Path:
    return make_qemu_repo(tmp_path / "qemu")


def findings(result: subprocess.CompletedProcess) -> list[tuple[str, int]]:
    assert result.returncode in (0, 1), result.stderr
    return [(f["path"], f["line"]) for f in json.loads(result.stdout)["findings"]]


def install_plain_hook(repo: Path) -> None:
    """A `.git/hooks/pre-commit` that runs kvmlint by hand, as a developer without the framework has it."""
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(f"#!/bin/sh\nexec '{sys.executable}' -m kvmlint check --staged\n")
    hook.chmod(0o755)


def git_commit(repo: Path) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key not in ("CI", "NO_COLOR")}
    return subprocess.run(["git", "commit", "-q", "-m", "change"], cwd=repo, capture_output=True, text=True,
                          env={**environment, **GIT_ENV})


def staged_verdict(repo: Path, how: str) -> tuple[int, str]:
    """(exit status, output) of judging the staged change: by hand, or through a plain pre-commit hook."""
    if how == "check --staged":
        result = kvmlint(repo, "check", "--staged")
    else:
        install_plain_hook(repo)
        result = git_commit(repo)
    return result.returncode, result.stdout + result.stderr


# --- the staged content, whatever the work tree holds -----------------------

@pytest.mark.parametrize("how", ["check --staged", "plain hook"])
def test_a_staged_proxy_use_gone_from_the_work_tree_is_blocked(repo, how):
    (repo / "cpus.c").write_text(CPUS_C + NEW_PROXY_USE)
    git(repo, "add", "cpus.c")
    (repo / "cpus.c").write_text(CPUS_C)  # taken out again, but not unstaged
    status, output = staged_verdict(repo, how)
    assert status == 1, output
    assert "cpus.c:17:" in output and "cpus.c:4:" not in output


@pytest.mark.parametrize("how", ["check --staged", "plain hook"])
def test_a_harmless_staged_line_is_not_blocked_by_the_work_tree_s_line(repo, how):
    (repo / "cpus.c").write_text(CPUS_C + HARMLESS_FUNCTION)
    git(repo, "add", "cpus.c")
    (repo / "cpus.c").write_text(CPUS_C + NEW_PROXY_USE)  # line 17: a use the commit does not hold
    status, output = staged_verdict(repo, how)
    assert status == 0, output


def test_a_staged_file_deleted_from_the_work_tree_is_judged(repo):
    (repo / "vl.c").write_text(NEW_PROXY_USE)
    git(repo, "add", "vl.c")
    (repo / "vl.c").unlink()
    assert findings(kvmlint(repo, "check", "--staged", "--format", "json")) == [("vl.c", 4)]
    assert findings(kvmlint(repo, "check", "--staged", "--format", "json", "vl.c")) == [("vl.c", 4)]


def test_untracked_files_are_not_part_of_the_commit(repo):
    """An untracked file's definitions are not the commit's: KVM002 must not count them."""
    (repo / "vl.c").write_text(NEW_PROXY_USE)
    git(repo, "add", "vl.c")
    (repo / "scratch.c").write_text(NEW_PROXY_USE.replace("qemu_cpu_is_idle", "scratch_is_idle"))
    result = kvmlint(repo, "check", "--staged", "--format", "json", "--verbose")
    assert findings(result) == [("vl.c", 4)]
    assert "read 2 files" in result.stderr  # cpus.c and vl.c, not scratch.c


def test_the_cache_keeps_the_work_tree_and_the_index_apart(repo):
    """Each run sees its own content, whichever ran before: the staged content is cached by its bytes
    and never recorded against the work-tree file's stat."""
    (repo / "cpus.c").write_text(CPUS_C + NEW_PROXY_USE)
    git(repo, "add", "cpus.c")
    (repo / "cpus.c").write_text(CPUS_C + HARMLESS_FUNCTION)
    for _ in range(2):
        assert findings(kvmlint(repo, "check", "--format", "json")) == [("cpus.c", 4)]
        assert findings(kvmlint(repo, "check", "--staged", "--format", "json")) == [("cpus.c", 17)]


def test_reports_quote_the_staged_line(repo):
    """Fingerprints hash the flagged line's text: the staged text, not the work tree's at that number."""
    (repo / "cpus.c").write_text(CPUS_C + NEW_PROXY_USE)
    git(repo, "add", "cpus.c")
    staged = json.loads(kvmlint(repo, "check", "--staged", "--format", "gitlab").stdout)
    (repo / "cpus.c").write_text(CPUS_C + NEW_PROXY_USE.replace("();", "(); /* unstaged */"))
    again = json.loads(kvmlint(repo, "check", "--staged", "--format", "gitlab").stdout)
    assert [issue["fingerprint"] for issue in again] == [issue["fingerprint"] for issue in staged]


def test_a_build_file_with_unstaged_changes_is_named(repo):
    (repo / "meson.build").write_text("project('qemu')\n")
    git(repo, "add", "meson.build")
    git(repo, "commit", "-q", "-m", "meson")
    (repo / "cpus.c").write_text(CPUS_C + NEW_PROXY_USE)
    git(repo, "add", "cpus.c")
    (repo / "meson.build").write_text("project('qemu')\nsubdir('hw')\n")
    result = kvmlint(repo, "check", "--staged")
    assert result.returncode == 1
    assert ("kvmlint: warning: meson.build: not as staged; scopes are read from the work tree's version of it "
            "(stash the unstaged changes to judge exactly what is committed)\n") in result.stderr


# --- any file name ----------------------------------------------------------

ODD_NAMES = ["hw/new dev.c", "hw/périphérique.c", 'hw/say "hi".c', "hw/back\\slash.c", "hw/new\nline.c",
             "hw/tab\there.c", "hw/ends in space .c"]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_a_new_file_with_an_odd_name_counts_whole(repo, name):
    (repo / name).parent.mkdir(exist_ok=True)
    (repo / name).write_text(NEW_PROXY_USE)
    git(repo, "add", "--", name)
    shown = exact_path(name)  # JSON writes a backslash as \\
    expected = [("cpus.c", 4), (shown, 4)]
    json_report = ("--format", "json")
    assert sorted(findings(kvmlint(repo, "check", *json_report))) == expected
    assert findings(kvmlint(repo, "check", "--staged", *json_report)) == [(shown, 4)]
    git(repo, "commit", "-q", "-m", "new device")
    assert findings(kvmlint(repo, "check", "--diff-base", "HEAD~1", *json_report)) == [(shown, 4)]


def test_an_odd_name_s_changed_lines_are_its_own(repo):
    """Two files whose names differ by an odd character: each keeps its own lines."""
    for name in ("hw/a b.c", "hw/a\tb.c"):
        (repo / "hw").mkdir(exist_ok=True)
        (repo / name).write_text(CPUS_C)
    git(repo, "add", "hw")
    git(repo, "commit", "-q", "-m", "devices")
    (repo / "hw/a b.c").write_text(CPUS_C + NEW_PROXY_USE)
    (repo / "hw/a\tb.c").write_text(CPUS_C + HARMLESS_FUNCTION)
    git(repo, "add", "hw")
    assert staged_changes(repo).lines == {"hw/a b.c": frozenset(range(14, 19)), "hw/a\tb.c": frozenset(range(14, 19))}
    assert findings(kvmlint(repo, "check", "--staged", "--format", "json")) == [("hw/a b.c", 17)]


# --- whatever the user's diff configuration says ----------------------------

def long_cpus_c(edits=None) -> str:
    """A 100-line cpus.c with a proxy use on line 73; `edits` replaces lines (1-based)."""
    lines = [f"int filler_{number};" for number in range(1, 101)]
    lines[0] = '#include "sysemu/kvm.h"'
    lines[71:74] = ["static bool idle(void) {", "    return kvm_irqchip_in_kernel();", "}"]
    for number, text in (edits or {}).items():
        lines[number - 1] = text
    return "\n".join(lines) + "\n"


def test_edits_around_an_old_finding_do_not_make_it_new(repo):
    (repo / "cpus.c").write_text(long_cpus_c())
    git(repo, "commit", "-q", "-am", "long cpus.c")
    git(repo, "config", "diff.interHunkContext", "40")
    (repo / "cpus.c").write_text(long_cpus_c({60: "int edited_60;", 90: "int edited_90;"}))
    git(repo, "add", "cpus.c")
    assert kvmlint(repo, "check", "--staged").returncode == 0
    git(repo, "commit", "-q", "-m", "edits")
    assert kvmlint(repo, "check", "--diff-base", "HEAD~1").returncode == 0


HOSTILE_CONFIG = [
    ("diff.interHunkContext", "40"), ("diff.context", "20"), ("diff.algorithm", "patience"),
    ("diff.algorithm", "histogram"), ("diff.indentHeuristic", "false"), ("diff.relative", "true"),
    ("diff.noprefix", "true"), ("diff.mnemonicPrefix", "true"), ("diff.srcPrefix", "x/"), ("diff.dstPrefix", "y/"),
    ("color.diff", "always"), ("color.ui", "always"), ("diff.colorMoved", "zebra"), ("diff.wsErrorHighlight", "all"),
    ("diff.suppressBlankEmpty", "true"), ("core.autocrlf", "true"), ("core.safecrlf", "true"),
    ("core.autocrlf", "input"), ("diff.renames", "copies"), ("diff.renames", "false"), ("diff.renameLimit", "1"), ("diff.orderFile", "order.txt"),
    ("diff.autoRefreshIndex", "false"), ("core.bigFileThreshold", "1"), ("core.quotePath", "true"),
    ("diff.submodule", "diff"), ("diff.ignoreSubmodules", "none"), ("diff.external", "false"),
]


def hostile_change(repo: Path) -> dict[str, frozenset[int]]:
    """A change that edits around an old finding, moves a file (its old finding stays old) and adds to it,
    and adds a file with an odd name: the lines it adds."""
    (repo / "cpus.c").write_text(long_cpus_c())
    (repo / "old.c").write_text(CPUS_C)
    (repo / "order.txt").write_text("*.c\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    (repo / "cpus.c").write_text(long_cpus_c({60: "", 90: "int edited_90;"}))
    git(repo, "mv", "old.c", "renamed.c")
    (repo / "renamed.c").write_text(CPUS_C + NEW_PROXY_USE)
    (repo / "hw").mkdir()
    (repo / "hw/new dev.c").write_text(NEW_PROXY_USE + "\n\n" + NEW_PROXY_USE)
    git(repo, "add", "-A")
    return {"cpus.c": frozenset({60, 90}), "renamed.c": frozenset(range(14, 19)), "hw/new dev.c": frozenset(range(1, 13))}


@pytest.mark.parametrize("key, value", HOSTILE_CONFIG, ids=[f"{key}={value}" for key, value in HOSTILE_CONFIG])
def test_the_user_s_diff_config_changes_no_line(repo, key, value, monkeypatch):
    expected = hostile_change(repo)
    monkeypatch.setenv("GIT_DIFF_OPTS", "--unified=7")
    git(repo, "config", key, value)
    assert staged_changes(repo).lines == expected
    git(repo, "commit", "-q", "-m", "change")
    assert changes_since(repo, "HEAD~1").lines == expected


def test_all_of_the_hostile_config_at_once(repo):
    expected = hostile_change(repo)
    for key, value in HOSTILE_CONFIG:
        git(repo, "config", "--add", key, value)
    reported = findings(kvmlint(repo, "check", "--staged", "--format", "json"))
    assert reported == [("hw/new dev.c", 4), ("hw/new dev.c", 11), ("renamed.c", 17)]
    assert staged_changes(repo).lines == expected


# --- merges -----------------------------------------------------------------

def diverged(repo: Path) -> None:
    """`other` adds a proxy use to vl.c; master edits cpus.c meanwhile."""
    git(repo, "checkout", "-q", "-b", "other")
    (repo / "vl.c").write_text(NEW_PROXY_USE)
    git(repo, "add", "vl.c")
    git(repo, "commit", "-q", "-m", "other's use")
    git(repo, "checkout", "-q", "master")
    (repo / "cpus.c").write_text(CPUS_C.replace("gdb_set_stop_cpu(env);", "gdb_set_stop_cpu(env); /* master */"))
    git(repo, "commit", "-q", "-am", "master's edit")


def test_a_merge_is_judged_on_what_it_brings_not_on_the_merged_branch(repo):
    diverged(repo)
    git(repo, "merge", "-q", "--no-commit", "--no-ff", "other")
    assert kvmlint(repo, "check", "--staged").returncode == 0  # vl.c's use is other's, already reviewed


def test_a_conflict_resolution_is_judged(repo):
    diverged(repo)
    git(repo, "checkout", "-q", "other")
    (repo / "cpus.c").write_text(CPUS_C.replace("gdb_set_stop_cpu(env);", "gdb_set_stop_cpu(env); /* other */"))
    git(repo, "commit", "-q", "-am", "other's edit")
    git(repo, "checkout", "-q", "master")
    merge = subprocess.run(["git", "merge", "-q", "--no-commit", "other"], cwd=repo, capture_output=True,
                           env={**os.environ, **GIT_ENV})
    assert merge.returncode != 0  # cpus.c conflicts
    resolved = CPUS_C.replace("gdb_set_stop_cpu(env);", "gdb_set_stop_cpu(env);\n    kvm_irqchip_in_kernel();")
    (repo / "cpus.c").write_text(resolved)
    git(repo, "add", "cpus.c")
    assert findings(kvmlint(repo, "check", "--staged", "--format", "json")) == [("cpus.c", 13)]


# --- clear messages ---------------------------------------------------------

def test_diff_base_outside_git_is_one_line(tmp_path):
    (tmp_path / "configure").write_text("")
    (tmp_path / "cpus.c").write_text(CPUS_C)
    result = kvmlint(tmp_path, "check", "--diff-base", "HEAD", env={"GIT_CEILING_DIRECTORIES": str(tmp_path.parent)})
    assert result.returncode == 2 and result.stderr.startswith("kvmlint: --diff-base HEAD: not in a git work tree (")
    assert result.stderr.count("\n") == 1


def test_an_unknown_base_says_so(repo):
    result = kvmlint(repo, "check", "--diff-base", "no-such-ref")
    assert (result.returncode, result.stderr) == (2, "kvmlint: --diff-base no-such-ref: no such commit\n")


def test_a_shallow_clone_lacking_the_base_says_to_fetch_more(repo, tmp_path):
    for number in range(3):
        (repo / "cpus.c").write_text(CPUS_C + f"/* {number} */\n")
        git(repo, "commit", "-q", "-am", f"commit {number}")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", str(clone))
    result = kvmlint(clone, "check", "--diff-base", "HEAD~2")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("kvmlint: --diff-base HEAD~2: no such commit: this is a shallow clone: ")
    assert "git fetch --deepen=N" in result.stderr and "fetch depth of 0" in result.stderr

    git(repo, "checkout", "-q", "-b", "feature", "HEAD~2")
    (repo / "vl.c").write_text(NEW_PROXY_USE)
    git(repo, "add", "vl.c")
    git(repo, "commit", "-q", "-m", "feature")
    git(clone, "fetch", "-q", "--depth", "1", "origin", "feature:feature")
    result = kvmlint(clone, "check", "--diff-base", "feature")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("kvmlint: --diff-base feature: the merge base with HEAD is not here, "
                                    "this is a shallow clone: ")


# --- the real pre-commit framework --------------------------------------------

from test_precommit import commit, hook_repo, precommit_home, qemu  # noqa: E402, F401 -- its fixtures


@pytest.mark.slow
def test_the_pre_commit_framework_judges_the_staged_content(qemu, precommit_home):
    """pre-commit stashes unstaged edits itself: the same two partial stagings, through it."""
    (qemu / "cpus.c").write_text(CPUS_C + NEW_PROXY_USE)
    git(qemu, "add", "cpus.c")
    (qemu / "cpus.c").write_text(CPUS_C)
    blocked = commit(qemu, precommit_home)
    assert blocked.returncode != 0 and "cpus.c:17:" in blocked.stdout + blocked.stderr, blocked.stdout + blocked.stderr

    (qemu / "cpus.c").write_text(CPUS_C + HARMLESS_FUNCTION)
    git(qemu, "add", "cpus.c")
    (qemu / "cpus.c").write_text(CPUS_C + NEW_PROXY_USE)
    passed = commit(qemu, precommit_home)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert (qemu / "cpus.c").read_text() == CPUS_C + NEW_PROXY_USE  # the unstaged edit is back
