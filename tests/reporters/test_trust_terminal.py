"""What reaches the terminal: a name or text from the tree is shown inert, on its own line, in every
human format; machine formats keep the exact name; a deeply nested expression is a one-line error.

Every kvmlint run here is a subprocess under CPU-time and memory limits.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kvmlint.terminal import for_terminal, git_quoted

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "qemu-snippets"
PROXY_FUNCTION = "int probe_proxy(void)\n{\n    return kvm_irqchip_in_kernel();\n}\n"
FORGED = "forged.c:1:1: KVM001 [irqchip-proxy] a finding the tree made up"
NEWLINE_NAME = f"evil\n{FORGED}.c"
TITLE_NAME = "title\x1b]0;owned\x07.c"
BIDI_NAME = "bidi\u202egnp.c"
C1_NAME = "csi\u009b2J.c"
HOSTILE_NAMES = (NEWLINE_NAME, TITLE_NAME, BIDI_NAME, C1_NAME)
# What acts on a terminal: C0 controls but the line break, DEL, C1 controls, bidi overrides and isolates.
ACTIVE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def limit() -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (60, 60))
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def kvmlint(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "kvmlint", *args], capture_output=True, cwd=cwd, timeout=120,
                          preexec_fn=limit, env={**os.environ, **GIT_ENV})
    stderr = done.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr[-2000:]
    return done


def inert(stream: bytes) -> str:
    """The output as text, asserted to hold nothing that acts on a terminal and no forged line."""
    text = stream.decode("utf-8", "surrogateescape")
    assert not ACTIVE.search(text), repr(text[:2000])
    assert not any(line.startswith(FORGED) for line in text.splitlines())
    return text


@pytest.fixture
def tree(tmp_path) -> Path:
    tree = Path(shutil.copytree(FIXTURES / "qemu-2012", tmp_path / "tree", ignore=shutil.ignore_patterns(".kvmlint_cache")))
    for name in HOSTILE_NAMES:
        (tree / name).write_text(PROXY_FUNCTION)
    return tree


@pytest.mark.parametrize("format_name", ["text", "concise"])
def test_hostile_file_names_are_escaped_in_text_and_concise_output(tree, format_name):
    done = kvmlint("check", "--no-cache", "--format", format_name, str(tree))
    output = inert(done.stdout)
    for name in HOSTILE_NAMES:
        assert f"{for_terminal(name)}:3:12: KVM001" in output
    assert "evil\\nforged.c:1:1:" in output and "title\\x1b]0;owned\\x07.c" in output
    assert "bidi\\u202egnp.c" in output and "csi\\x9b2J.c" in output


def test_json_keeps_the_exact_names(tree):
    done = kvmlint("check", "--no-cache", "--format", "json", str(tree))
    paths = {finding["path"] for finding in json.loads(done.stdout)["findings"]}
    assert set(HOSTILE_NAMES) <= paths


def test_a_warning_on_stderr_names_a_hostile_file_inert(tree):
    for name in HOSTILE_NAMES:
        (tree / name).unlink()
        os.mkfifo(tree / name)
    done = kvmlint("check", "--no-cache", str(tree))
    stderr = inert(done.stderr)
    assert f"kvmlint: warning: {for_terminal(NEWLINE_NAME)}: not a regular file; skipped" in stderr


def test_scope_lists_a_hostile_file_inert(tree):
    output = inert(kvmlint("scope", str(tree)).stdout)
    assert output.count("\n") == len(output.splitlines())  # one line per file, none split
    assert any(line.startswith(for_terminal(NEWLINE_NAME) + ": ") for line in output.splitlines())


@pytest.fixture
def fixable(tmp_path) -> Path:
    """A git tree with cpus.c (whose proxy has a fix) copied under a hostile name."""
    tree = Path(shutil.copytree(FIXTURES / "qemu-2012", tmp_path / "tree", ignore=shutil.ignore_patterns(".kvmlint_cache")))
    shutil.copy(tree / "cpus.c", tree / (NEWLINE_NAME + TITLE_NAME))
    (tree / (TITLE_NAME + "-choose.c")).write_text(PROXY_FUNCTION)  # no single answer: `not fixed`
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(["git", *command], cwd=tree, check=True, capture_output=True, env={**os.environ, **GIT_ENV})
    return tree


def test_fix_names_a_hostile_file_inert_in_wrote_and_not_fixed_lines(fixable):
    done = kvmlint("fix", "--no-cache", str(fixable))
    output, stderr = inert(done.stdout), inert(done.stderr)
    assert f"wrote {for_terminal(NEWLINE_NAME + TITLE_NAME)}" in output.splitlines()
    assert f"not fixed: {for_terminal(TITLE_NAME + '-choose.c')}:3: KVM001" in stderr


def test_fix_diff_headers_quote_a_hostile_name_as_git_does_and_the_diff_applies(fixable):
    done = kvmlint("fix", "--diff", "--no-cache", str(fixable))
    inert(done.stderr)
    text = done.stdout.decode("utf-8", "surrogateescape")
    headers = [line for line in text.splitlines() if line.startswith(("diff --git", "--- ", "+++ "))]
    quoted = git_quoted("b/" + NEWLINE_NAME + TITLE_NAME)
    assert quoted == '"b/evil\\nforged.c:1:1: KVM001 [irqchip-proxy] a finding the tree made up.ctitle\\033]0;owned\\a.c"'
    assert f"+++ {quoted}" in headers
    assert not any(ACTIVE.search(line) for line in headers)
    assert not any(line.startswith(FORGED) for line in text.splitlines())
    listed = subprocess.run(["git", "ls-files"], cwd=fixable, capture_output=True, text=True).stdout.splitlines()
    assert git_quoted(NEWLINE_NAME + TITLE_NAME) in listed  # git writes the name the same way
    applied = subprocess.run(["git", "apply", "--check", "-"], cwd=fixable, input=done.stdout, capture_output=True)
    assert applied.returncode == 0, applied.stderr


def test_a_patch_series_for_a_hostile_name_applies_with_git_am(fixable, tmp_path):
    done = kvmlint("fix", "--no-cache", "--format-patch", str(tmp_path / "series"), str(fixable))
    inert(done.stdout)
    patches = sorted(p for p in (tmp_path / "series").iterdir() if not p.name.startswith("0000-"))
    subprocess.run(["git", "am", "-q", *map(str, patches)], cwd=fixable, check=True, capture_output=True,
                   env={**os.environ, **GIT_ENV})
    assert "kvm_async_interrupts_enabled" in (fixable / (NEWLINE_NAME + TITLE_NAME)).read_text()


def test_an_error_naming_a_hostile_path_is_one_inert_line(tmp_path):
    done = kvmlint("fix", f"{NEWLINE_NAME}{TITLE_NAME}:3", cwd=tmp_path)
    assert done.returncode == 2
    stderr = inert(done.stderr)
    assert stderr == f"kvmlint: {for_terminal(NEWLINE_NAME + TITLE_NAME)}: no such file\n"


def test_the_escaping_is_idempotent_and_leaves_plain_text_alone():
    assert for_terminal("hw/i386/kvm/apic.c") == "hw/i386/kvm/apic.c"
    assert for_terminal("caf\u00e9.c") == "caf\u00e9.c"  # printable non-ASCII stays
    assert for_terminal("a\tb\r\x7f\u2066\udcff") == "a\\tb\\r\\x7f\\u2066\\xff"
    once = for_terminal(NEWLINE_NAME + TITLE_NAME + BIDI_NAME)
    assert for_terminal(once) == once
    assert git_quoted("a/hw/pc.c") == "a/hw/pc.c" and git_quoted('a/"q\\') == '"a/\\"q\\\\"'
    assert git_quoted("b/caf\u00e9") == '"b/caf\\303\\251"'


@pytest.mark.parametrize("expression", [
    "(" * 5000 + "1" + ")" * 5000,
    "!" * 5000 + "1",
    " && ".join(["a"] * 5000),
    "a ? " * 3000 + "b" + " : c" * 3000,
])
def test_a_deeply_nested_expression_to_validate_is_a_one_line_error(expression):
    done = kvmlint("validate", "kvm_irqchip_in_kernel()", expression)
    assert done.returncode == 2
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kvmlint: cannot read the expression: ") and len(lines[0]) < 200


def test_an_expression_nested_as_deep_as_allowed_is_still_validated():
    from kvmlint.model.expression import MAX_NESTING

    deep = "(" * (MAX_NESTING - 1) + "kvm_irqchip_in_kernel()" + ")" * (MAX_NESTING - 1)
    done = kvmlint("validate", "kvm_irqchip_in_kernel()", deep)
    assert done.returncode == 0 and b"verdict: safe" in done.stdout


def test_a_condition_of_thousands_of_proxy_calls_reports_every_one(tmp_path):
    tree = Path(shutil.copytree(FIXTURES / "qemu-2012", tmp_path / "tree", ignore=shutil.ignore_patterns(".kvmlint_cache")))
    calls = " && ".join(["kvm_irqchip_in_kernel()"] * 3000)
    (tree / "deep.c").write_text(f"int deep(void)\n{{\n    if ({calls}) {{\n        return 1;\n    }}\n    return 0;\n}}\n")
    done = kvmlint("check", "--no-cache", "--format", "json", str(tree))
    findings = [f for f in json.loads(done.stdout)["findings"] if f["path"] == "deep.c"]
    assert len(findings) == 3000


def test_deeply_nested_kconfig_and_makefile_conditions_are_read_around(tmp_path):
    current = Path(shutil.copytree(FIXTURES / "qemu-current", tmp_path / "current", ignore=shutil.ignore_patterns(".kvmlint_cache")))
    with open(current / "target" / "i386" / "Kconfig", "a") as stream:
        stream.write("\nconfig DEEP_PARENTHESES\n    bool\n    depends on " + "(" * 5000 + "I386" + ")" * 5000 + "\n")
        stream.write("\nconfig DEEP_NEGATIONS\n    bool\n    depends on " + "!" * 5000 + "I386\n")
        stream.write("\nconfig LONG_CHAIN\n    bool\n    depends on " + " && ".join(["I386"] * 5000) + "\n")
    (current / "probe.c").write_text(PROXY_FUNCTION)
    done = kvmlint("check", "--no-cache", "--format", "json", str(current))
    assert "probe.c" in {f["path"] for f in json.loads(done.stdout)["findings"]}

    old = Path(shutil.copytree(FIXTURES / "qemu-2012", tmp_path / "old", ignore=shutil.ignore_patterns(".kvmlint_cache")))
    with open(old / "hw" / "Makefile.objs", "a") as stream:
        stream.write("hw-obj-" + "$(call lnot," * 3000 + "$(CONFIG_PCI)" + ")" * 3000 + " += msi.o\n")
        stream.write("hw-obj-$(call land," + ",".join(["$(CONFIG_PCI)"] * 3000) + ") += msix.o\n")
    done = kvmlint("check", "--no-cache", "--format", "json", str(old))
    assert {"hw/msi.c", "hw/msix.c"} <= {f["path"] for f in json.loads(done.stdout)["findings"]}
