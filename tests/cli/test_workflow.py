"""The developer's workflow: exit codes, config, suppressions, --staged/--diff-base, progress."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kvmlint.cli import progress
from kvmlint.findings import Finding
from kvmlint.git.diffs import ChangedLines, added_lines
from kvmlint.rules.suppressions import apply_suppressions
from kvmlint.source.facts import FileFacts

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Q. Developer", "GIT_AUTHOR_EMAIL": "dev@example.org",
    "GIT_COMMITTER_NAME": "Q. Developer", "GIT_COMMITTER_EMAIL": "dev@example.org",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}

# cpus.c as QEMU had it in 2012: one proxy use (line 4) that predates any change.
CPUS_C = """\
#include "sysemu/kvm.h"
static bool cpu_thread_is_idle(CPUArchState *env)
{
    if (!env->halted || qemu_cpu_has_work(env) || kvm_irqchip_in_kernel()) {
        return false;
    }
    return true;
}

static void cpu_handle_guest_debug(CPUArchState *env)
{
    gdb_set_stop_cpu(env);
}
"""
NEW_PROXY_USE = """
static bool qemu_cpu_is_idle(CPUArchState *env)
{
    return kvm_irqchip_in_kernel();
}
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, env={**os.environ, **GIT_ENV}, check=True, capture_output=True, text=True
    ).stdout


def make_qemu_repo(directory: Path) -> Path:
    """A tiny QEMU-like checkout: `configure` marks the root, cpus.c is common code."""
    directory.mkdir(parents=True, exist_ok=True)
    git(directory, "init", "-q", "-b", "master")
    (directory / "configure").write_text("#!/bin/sh\n")
    (directory / "cpus.c").write_text(CPUS_C)
    git(directory, "add", "-A")
    git(directory, "commit", "-q", "-m", "initial")
    return directory


def kvmlint(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key not in ("CI", "NO_COLOR")}
    return subprocess.run(
        [sys.executable, "-m", "kvmlint", *args], cwd=cwd, capture_output=True, text=True,
        env={**environment, **(env or {})},
    )


@pytest.fixture
def repo(tmp_path) -> Path:
    return make_qemu_repo(tmp_path / "qemu")


def reported_lines(output: str) -> list[int]:
    """The line of each finding; the indented lines under it are its notes."""
    return [int(line.split(":")[1]) for line in output.splitlines()
            if not line.startswith((" ", "Found "))]  # not the notes, not the summary


# --- exit codes -------------------------------------------------------------

def test_exit_codes(repo):
    found = kvmlint(repo, "check")
    assert found.returncode == 1, found.stderr
    assert reported_lines(found.stdout) == [4] and "KVM001 [irqchip-proxy]" in found.stdout

    (repo / "cpus.c").write_text(CPUS_C.replace("|| kvm_irqchip_in_kernel()", ""))
    assert kvmlint(repo, "check").returncode == 0

    bad_option = kvmlint(repo, "check", "--format", "xml")
    assert bad_option.returncode == 2
    assert bad_option.stderr.startswith("kvmlint: ") and bad_option.stderr.count("\n") == 1

    missing = kvmlint(repo, "check", "no-such-dir")
    assert (missing.returncode, missing.stderr) == (2, "kvmlint: no-such-dir: no such file or directory\n")


# --- configuration ----------------------------------------------------------

def test_unknown_config_key_is_one_line_and_exit_2(repo):
    (repo / "kvmlint.toml").write_text('select = ["KVM001"]\nfoo = 1\n')
    result = kvmlint(repo, "check")
    assert (result.returncode, result.stderr) == (2, "kvmlint: kvmlint.toml: unknown key 'foo'\n")


def test_bad_toml_is_one_line_and_exit_2(repo):
    (repo / "kvmlint.toml").write_text("select = [\n")
    result = kvmlint(repo, "check")
    assert result.returncode == 2
    assert result.stderr.startswith("kvmlint: kvmlint.toml: invalid TOML: ") and result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "text, message",
    [
        ("jobs = 0\n", "kvmlint: kvmlint.toml: 'jobs' must be a positive integer\n"),
        ('era = "1999"\n', "kvmlint: kvmlint.toml: 'era' must be one of 2012, current\n"),
        ('select = ["KVM999"]\n', "kvmlint: kvmlint.toml: 'select' names an unknown rule 'KVM999'"),
    ],
)
def test_bad_config_values_name_the_key(repo, text, message):
    (repo / "kvmlint.toml").write_text(text)
    result = kvmlint(repo, "check")
    assert result.returncode == 2 and result.stderr.startswith(message.rstrip("\n"))
    assert result.stderr.count("\n") == 1


def test_pyproject_table_and_command_line_overrides(repo):
    (repo / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.kvmlint]\nignore = ["irqchip-proxy"]\nformat = "json"\n')
    quiet = kvmlint(repo, "check")
    assert quiet.returncode == 0 and json.loads(quiet.stdout)["findings"] == []

    overridden = kvmlint(repo, "check", "--ignore", "KVM002", "--format", "text")
    assert overridden.returncode == 1 and reported_lines(overridden.stdout) == [4]

    (repo / "pyproject.toml").write_text("[tool.kvmlint]\nbar = true\n")
    result = kvmlint(repo, "check")
    assert (result.returncode, result.stderr) == (2, "kvmlint: pyproject.toml: [tool.kvmlint]: unknown key 'bar'\n")


def test_per_file_ignores_and_exclude(repo):
    (repo / "vl.c").write_text(NEW_PROXY_USE)
    (repo / "kvmlint.toml").write_text('[per-file-ignores]\n"cpus.c" = ["KVM001"]\n')
    result = kvmlint(repo, "check")
    assert result.stdout.startswith("vl.c:4:") and reported_lines(result.stdout) == [4]

    (repo / "kvmlint.toml").write_text('exclude = ["vl.c"]\n[per-file-ignores]\n"c*.c" = ["irqchip-proxy"]\n')
    assert kvmlint(repo, "check").returncode == 0


def test_config_search_stops_at_the_repository_top(tmp_path):
    (tmp_path / "kvmlint.toml").write_text("not toml at all [\n")  # above the repository: never read
    repo = make_qemu_repo(tmp_path / "qemu")
    assert kvmlint(repo, "check").returncode == 1


def test_config_found_from_a_subdirectory_and_output_file(repo):
    (repo / "kvmlint.toml").write_text('format = "gitlab"\noutput-file = "gl-code-quality.json"\n')
    (repo / "hw").mkdir()
    result = kvmlint(repo / "hw", "check", str(repo / "cpus.c"))
    assert result.returncode == 1 and result.stdout == ""
    issues = json.loads((repo / "gl-code-quality.json").read_text())
    assert [issue["location"]["path"] for issue in issues] == ["cpus.c"]


# --- suppressions -----------------------------------------------------------

SUPPRESSED_C = """\
void a(void)
{
    /* kvmlint: ignore[KVM001] a deliberate use */
    if (kvm_irqchip_in_kernel()) {
        x();
    }
    if (kvm_irqchip_in_kernel()) { /* kvmlint: ignore[irqchip-proxy] */
        y();
    }
    if (kvm_irqchip_in_kernel()) { /* kvmlint: ignore */
        z();
    }
    w(); /* kvmlint: ignore[KVM001, KVM002] stale */
}
"""


def test_suppressions_silence_and_strict_reports_stale_ones(repo):
    (repo / "cpus.c").write_text(SUPPRESSED_C)
    assert kvmlint(repo, "check").returncode == 0

    shown = kvmlint(repo, "check", "--show-suppressed")
    assert shown.returncode == 0
    assert reported_lines(shown.stdout) == [4, 7, 10] and shown.stdout.count("(suppressed)") == 3

    strict = kvmlint(repo, "check", "--strict")
    assert strict.returncode == 1
    assert strict.stdout.splitlines() == [
        "cpus.c:13:1: KVM000 [unused-suppression] `kvmlint: ignore[KVM001, KVM002]` silences nothing here: remove it",
        "Found 1 finding (none fixable automatically).",
    ]
    # A suppression of a rule that did not run cannot be judged, so it is not reported.
    assert kvmlint(repo, "check", "--strict", "--select", "KVM003").returncode == 0


def test_apply_suppressions_on_wrapped_code_lists_and_unknown_codes():
    facts = FileFacts(path="cpus.c", size=0, suppressions={
        3: frozenset({"KVM001", "KVM002"}), 4: frozenset({"KVM001", "KVM002"}),  # one comment, two lines
        9: frozenset({"KVM123"}),
    })
    finding = Finding("KVM001", "irqchip-proxy", "cpus.c", 5, 5, 5, 28, "m")
    result = apply_suppressions([finding], {"cpus.c": facts}, frozenset({"KVM001", "KVM002"}))
    assert result.findings == [] and result.suppressed == [finding]
    assert [(f.line, f.message) for f in result.unused_suppressions] == [
        (3, "`kvmlint: ignore[KVM002]` silences nothing here: remove it"),
        (9, "`kvmlint: ignore[KVM123]` (KVM123: no such rule) silences nothing here: remove it"),
    ]


# --- changed lines ----------------------------------------------------------

def test_added_lines_from_counts_and_patch():
    output = b"2\t3\tcpus.c\0" + b"2\t0\thw/new.c\0" + b"\0" + b"""\
diff --git a/cpus.c b/cpus.c
--- a/cpus.c
+++ b/cpus.c
@@ -4 +4 @@ static bool cpu_thread_is_idle(CPUArchState *env)
-old
+new
@@ -10,2 +9,0 @@
-gone
-gone
@@ -20,0 +20 @@
++++ b/not-a-header.c
diff --git a/hw/new.c b/hw/new.c
new file mode 100644
--- /dev/null
+++ b/hw/new.c
@@ -0,0 +1,2 @@
+x
+y
"""
    changed = added_lines(output)
    assert changed == {"cpus.c": frozenset({4, 20}), "hw/new.c": frozenset({1, 2})}
    lines = ChangedLines(changed)
    assert lines.touches("cpus.c", 3, 4) and not lines.touches("cpus.c", 9, 9) and not lines.touches("x.c", 1, 1)


def test_diff_base_reports_only_what_the_branch_introduces(repo):
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "cpus.c").write_text(CPUS_C.replace("gdb_set_stop_cpu(env);", "gdb_set_stop_cpu(env);\n    vm_stop(RUN_STATE_DEBUG);") + NEW_PROXY_USE)
    git(repo, "commit", "-q", "-am", "feature")

    result = kvmlint(repo, "check", "--diff-base", "master", "--verbose")
    assert result.returncode == 1
    assert reported_lines(result.stdout) == [18]  # the new use; line 4's is old
    assert "1 finding(s) outside the changed lines not reported" in result.stderr

    # Uncommitted edits count too; other branches' later commits on master do not matter.
    (repo / "cpus.c").write_text((repo / "cpus.c").read_text().replace("return true;", "return kvm_irqchip_in_kernel();"))
    assert reported_lines(kvmlint(repo, "check", "--diff-base", "master").stdout) == [7, 18]

    unknown = kvmlint(repo, "check", "--diff-base", "no-such-ref")
    assert unknown.returncode == 2 and unknown.stderr.startswith("kvmlint: --diff-base no-such-ref: ")
    assert unknown.stderr.count("\n") == 1


def test_staged_judges_only_the_staged_lines(repo):
    (repo / "cpus.c").write_text(CPUS_C.replace("gdb_set_stop_cpu(env);", "gdb_set_stop_cpu(env); /* edited */"))
    git(repo, "add", "cpus.c")
    assert kvmlint(repo, "check", "--staged", "cpus.c").returncode == 0

    (repo / "cpus.c").write_text(CPUS_C + NEW_PROXY_USE)
    git(repo, "add", "cpus.c")
    result = kvmlint(repo, "check", "--staged", "cpus.c")
    assert result.returncode == 1 and reported_lines(result.stdout) == [17]

    (repo / "vl.c").write_text(NEW_PROXY_USE)
    git(repo, "add", "vl.c")
    assert reported_lines(kvmlint(repo, "check", "--staged").stdout) == [17, 4]  # a new file counts whole


def test_staged_outside_git_is_one_line(tmp_path):
    (tmp_path / "configure").write_text("")
    (tmp_path / "cpus.c").write_text(CPUS_C)
    result = kvmlint(tmp_path, "check", "--staged", "cpus.c", env={"GIT_CEILING_DIRECTORIES": str(tmp_path.parent)})
    assert result.returncode == 2 and result.stderr.startswith("kvmlint: --staged: not in a git work tree (")
    assert result.stderr.count("\n") == 1


# --- reports from the command line ------------------------------------------

def test_gitlab_fingerprints_stay_when_an_edit_shifts_the_lines(repo):
    before = json.loads(kvmlint(repo, "check", "--format", "gitlab").stdout)
    (repo / "cpus.c").write_text("/*\n * QEMU CPU loop\n */\n" + CPUS_C)
    after = json.loads(kvmlint(repo, "check", "--format", "gitlab").stdout)
    assert [issue["location"]["lines"]["begin"] for issue in (before + after)] == [4, 7]
    assert after[0]["fingerprint"] == before[0]["fingerprint"]


def test_statistics(repo):
    (repo / "cpus.c").write_text(CPUS_C + NEW_PROXY_USE)
    text = kvmlint(repo, "check", "--statistics")
    assert (text.returncode, text.stdout) == (1, "count  code    fixable  name\n    2  KVM001  2        irqchip-proxy\n")
    machine = kvmlint(repo, "check", "--statistics", "--format", "github")
    assert machine.stdout.count("::warning ") == 2 and machine.stderr.endswith("    2  KVM001  2        irqchip-proxy\n")


# --- progress ---------------------------------------------------------------

class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    assert progress.wanted(FakeTerminal()) and not progress.wanted(io.StringIO())
    monkeypatch.setenv("CI", "true")
    assert not progress.wanted(FakeTerminal())


def test_progress_appears_after_a_second_and_is_wiped(monkeypatch):
    clock = iter([100.0, 100.2, 101.5, 101.55, 101.7])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    terminal = FakeTerminal()
    counter = progress.Progress("parsing", terminal)
    counter(1, 10)  # 0.2 s: too early
    counter(5, 10)  # 1.5 s: shown
    counter(6, 10)  # 50 ms later: not redrawn
    counter(9, 10)
    counter.close()
    assert terminal.getvalue() == (
        "\r\033[Kkvmlint: parsing 5/10 files" "\r\033[Kkvmlint: parsing 9/10 files" "\r\033[K"
    )


def test_exit_zero_prefix_selection_and_extend_select(repo):
    (repo / "cpus.c").write_text(CPUS_C + NEW_PROXY_USE)
    assert kvmlint(repo, "check", "--exit-zero").returncode == 0
    assert kvmlint(repo, "check", "--exit-zero", "--select", "KVM999").returncode == 2  # errors still fail
    assert kvmlint(repo, "check", "--select", "KVM", "-q").stdout == kvmlint(repo, "check", "-q").stdout
    assert kvmlint(repo, "check", "--select", "KVM00", "--ignore", "KVM00").returncode == 0
    assert reported_lines(kvmlint(repo, "check", "--select", "KVM003", "--extend-select", "KVM001").stdout) \
        == reported_lines(kvmlint(repo, "check").stdout)
    (repo / "kvmlint.toml").write_text('select = ["KVM003"]\nextend-select = ["irqchip-proxy"]\n')
    assert kvmlint(repo, "check").returncode == 1  # the config's extend-select runs KVM001
    assert kvmlint(repo, "check", "--select", "KVM003").returncode == 0  # --select replaces both
