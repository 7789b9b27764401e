"""The tree's names and text reach the user's terminal: forged lines, escape sequences, bidi overrides,
and expressions nested deep enough to break a recursive reader.

Every human format must show a file name, a build file's text or a condition
as inert text on its own line; machine formats (JSON) keep the exact name.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from hostile_cases import crashed, fixture_tree, kvmlint

PROXY_FUNCTION = "int probe_proxy(void)\n{\n    return kvm_irqchip_in_kernel();\n}\n"
FORGED = "forged.c:1:1: KVM001 [irqchip-proxy] a finding the tree made up"
NEWLINE_NAME = f"evil\n{FORGED}.c"
TITLE_NAME = "title\x1b]0;owned\x07\x1b[2J.c"
BIDI_NAME = "bidi\u202egnp.c"
C1_NAME = "csi\u009b2J.c"
# What acts on a terminal: C0 controls but the line break, DEL, C1 controls, bidi overrides and isolates.
ACTIVE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _text(stream: bytes) -> str:
    return stream.decode("utf-8", "surrogateescape")


def _active(result: subprocess.CompletedProcess, streams: str = "out err") -> str | None:
    """What in the output would act on a terminal or forge a line, or None."""
    for name in streams.split():
        text = _text(result.stdout if name == "out" else result.stderr)
        found = ACTIVE.search(text)
        if found:
            return f"std{name} carries {found.group()!r}: {text[max(found.start() - 30, 0):found.end() + 10]!r}"
        if any(line.startswith(FORGED) for line in text.splitlines()):
            return f"std{name} has a line the tree forged: {FORGED!r}"
    return None


def _hostile_tree(folder: Path, *names: str, content: str = PROXY_FUNCTION) -> Path:
    tree = fixture_tree("qemu-2012", folder / "tree")
    for name in names:
        (tree / name).write_text(content)
    return tree


def _checked(folder: Path, tree: Path, format_name: str) -> str | None:
    result = kvmlint(folder, "check", "--no-cache", "--format", format_name, str(tree))
    return crashed(result) or _active(result) or (None if b"probe_proxy" in result.stdout or format_name != "json"
                                                   else "the hostile file's finding is missing")


def case_newline_in_a_file_name_forges_a_finding_line(folder: Path) -> str | None:
    """A file named `evil<newline>forged.c:1:1: KVM001 ...`: text and concise output must not show the forged line."""
    tree = _hostile_tree(folder, NEWLINE_NAME)
    for format_name in ("text", "concise"):
        problem = _checked(folder, tree, format_name)
        if problem:
            return f"{format_name}: {problem}"
    return None


def case_escape_sequences_in_file_names(folder: Path) -> str | None:
    """Files named with ESC]0;...BEL (a terminal title), ESC[2J, a C1 CSI and a bidi override, in text and concise."""
    tree = _hostile_tree(folder, TITLE_NAME, BIDI_NAME, C1_NAME)
    for format_name in ("text", "concise"):
        problem = _checked(folder, tree, format_name)
        if problem:
            return f"{format_name}: {problem}"
    result = kvmlint(folder, "check", "--no-cache", "--format", "json", str(tree))
    paths = {f["path"] for f in json.loads(result.stdout)["findings"]}
    if not {TITLE_NAME, BIDI_NAME, C1_NAME} <= paths:
        return "JSON does not carry the exact file names"
    return None


def case_warning_names_a_hostile_file(folder: Path) -> str | None:
    """A FIFO named with an escape sequence: kvmlint warns that it skips it, on stderr."""
    tree = _hostile_tree(folder)
    os.mkfifo(tree / TITLE_NAME)
    os.mkfifo(tree / NEWLINE_NAME)
    result = kvmlint(folder, "check", "--no-cache", str(tree))
    if b"not a regular file" not in result.stderr:
        return "no warning about the FIFOs"
    return crashed(result) or _active(result)


def case_scope_names_a_hostile_file(folder: Path) -> str | None:
    """`kvmlint scope` lists a file named with a newline and an escape sequence."""
    tree = _hostile_tree(folder, NEWLINE_NAME, TITLE_NAME)
    result = kvmlint(folder, "scope", str(tree))
    return crashed(result) or _active(result)


def _git_tree(folder: Path, name: str) -> Path:
    tree = fixture_tree("qemu-2012", folder / "tree")
    shutil.copy(tree / "cpus.c", tree / name)  # cpus.c's proxy has a fix
    environment = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "HOME": str(folder),
                   "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for command in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"]):
        subprocess.run(["git", *command], cwd=tree, check=True, capture_output=True, env=environment)
    return tree


def case_fix_diff_headers_name_a_hostile_file(folder: Path) -> str | None:
    """`kvmlint fix --diff` on a file named with a newline and ESC]0;...BEL: headers quoted as git does, still a patch."""
    tree = _git_tree(folder, NEWLINE_NAME + TITLE_NAME)
    result = kvmlint(folder, "fix", "--diff", "--no-cache", str(tree))
    problem = crashed(result) or _active(result, "err")
    if problem:
        return problem
    headers = [line for line in _text(result.stdout).splitlines() if line.startswith(("diff --git", "--- ", "+++ "))]
    if any(ACTIVE.search(line) for line in headers) or any(line.startswith(FORGED) for line in _text(result.stdout).splitlines()):
        return "a diff header carries the raw name"
    applied = subprocess.run(["git", "apply", "--check", "-"], cwd=tree, input=result.stdout, capture_output=True)
    return None if applied.returncode == 0 else "git apply refuses the diff: " + _text(applied.stderr).strip()[:200]


def case_fix_reports_name_a_hostile_file(folder: Path) -> str | None:
    """`kvmlint fix` writes a file named with a newline and an escape sequence: its `wrote` and `not fixed` lines."""
    tree = _git_tree(folder, NEWLINE_NAME + TITLE_NAME)
    (tree / (TITLE_NAME + "-choose.c")).write_text(PROXY_FUNCTION)  # no single answer: `not fixed`
    result = kvmlint(folder, "fix", "--no-cache", str(tree))
    if b"wrote" not in result.stdout or b"not fixed" not in result.stderr:
        return "fix wrote nothing or reported every finding fixed"
    return crashed(result) or _active(result)


def case_error_names_a_hostile_path(folder: Path) -> str | None:
    """`kvmlint fix FILE:LINE` for a missing file whose name holds an escape sequence: a one-line error."""
    result = kvmlint(folder, "fix", f"{NEWLINE_NAME}{TITLE_NAME}:3")
    if result.returncode != 2:
        return f"exit status {result.returncode}, expected 2"
    return crashed(result) or _active(result)


def case_deeply_nested_expression_on_the_command_line(folder: Path) -> str | None:
    """`kvmlint validate A "((((...5000...1))))"`, 5000 `!`, a 5000-term `&&` chain: a one-line error each."""
    for expression in ("(" * 5000 + "1" + ")" * 5000, "!" * 5000 + "1", " && ".join(["a"] * 5000)):
        result = kvmlint(folder, "validate", "kvm_irqchip_in_kernel()", expression)
        problem = crashed(result)
        if problem:
            return problem
        lines = result.stderr.strip().splitlines()
        if result.returncode != 2 or len(lines) != 1 or len(lines[0]) > 300:
            return f"not a one-line error (exit {result.returncode}): {_text(result.stderr)[:200]!r}"
    return None


def _proxies_reported(folder: Path, tree: Path, path: str, at_least: int = 1) -> str | None:
    result = kvmlint(folder, "check", "--no-cache", "--format", "json", str(tree))
    problem = crashed(result)
    if problem:
        return problem
    found = [f for f in json.loads(result.stdout)["findings"] if f["path"] == path]
    return None if len(found) >= at_least else f"{len(found)} of {path}'s proxies reported, expected {at_least}"


def case_deeply_nested_c_condition_in_the_tree(folder: Path) -> str | None:
    """A condition of 3000 proxy calls joined by `&&`: every call is reported (each finding reads the condition)."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    calls = " && ".join(["kvm_irqchip_in_kernel()"] * 3000)
    (tree / "deep.c").write_text(f"int deep(void)\n{{\n    if ({calls}) {{\n        return 1;\n    }}\n    return 0;\n}}\n")
    return _proxies_reported(folder, tree, "deep.c", 3000)


def case_deeply_nested_kconfig_expression(folder: Path) -> str | None:
    """A Kconfig `depends on` 5000 parentheses deep, one of 5000 `!` and one of 5000 `&&` terms."""
    tree = fixture_tree("qemu-current", folder / "tree")
    with open(tree / "target" / "i386" / "Kconfig", "a") as stream:
        stream.write("\nconfig DEEP_PARENTHESES\n    bool\n    depends on " + "(" * 5000 + "I386" + ")" * 5000 + "\n")
        stream.write("\nconfig DEEP_NEGATIONS\n    bool\n    depends on " + "!" * 5000 + "I386\n")
        stream.write("\nconfig LONG_CHAIN\n    bool\n    depends on " + " && ".join(["I386"] * 5000) + "\n")
    (tree / "probe.c").write_text(PROXY_FUNCTION)
    return _proxies_reported(folder, tree, "probe.c")


def case_deeply_nested_makefile_condition(folder: Path) -> str | None:
    """A Makefile list named with 3000 nested `$(call lnot,...)`, and one `$(call land,...)` of 3000 operands."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    with open(tree / "hw" / "Makefile.objs", "a") as stream:
        stream.write("hw-obj-" + "$(call lnot," * 3000 + "$(CONFIG_PCI)" + ")" * 3000 + " += msi.o\n")
        stream.write("hw-obj-$(call land," + ",".join(["$(CONFIG_PCI)"] * 3000) + ") += msix.o\n")
    return _proxies_reported(folder, tree, "hw/msi.c")


CASES = [
    case_newline_in_a_file_name_forges_a_finding_line,
    case_escape_sequences_in_file_names,
    case_warning_names_a_hostile_file,
    case_scope_names_a_hostile_file,
    case_fix_diff_headers_name_a_hostile_file,
    case_fix_reports_name_a_hostile_file,
    case_error_names_a_hostile_path,
    case_deeply_nested_expression_on_the_command_line,
    case_deeply_nested_c_condition_in_the_tree,
    case_deeply_nested_kconfig_expression,
    case_deeply_nested_makefile_condition,
]
