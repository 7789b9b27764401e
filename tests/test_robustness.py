"""Hostile and unlucky input: kvmlint never crashes, never hangs and stays bounded.

Every kvmlint run here is a subprocess under CPU-time and memory rlimits and a
timeout, so a regression fails the test instead of eating the machine.  The
sizes are chosen so that quadratic behaviour would need far more CPU time than
the limit allows: the tests assert completion, not speed.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "qemu-snippets"

PROXY_FUNCTION = """\
static bool cpu_thread_is_idle(CPUArchState *env)
{
    if (!env->halted || kvm_irqchip_in_kernel()) {
        return false;
    }
    return true;
}
"""


def run_kvmlint(
    *args: str, cwd: Path, cpu_seconds: int = 30, memory_mb: int = 1024, timeout: int = 120, env: dict | None = None,
) -> subprocess.CompletedProcess:
    """`kvmlint ARGS` in a child that the kernel stops past its CPU time or memory."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
        memory = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return subprocess.run(
        [sys.executable, "-m", "kvmlint", *args],
        cwd=cwd,
        capture_output=True,
        timeout=timeout,
        preexec_fn=limit,
        env={**os.environ, **(env or {})},
    )


def assert_clean_exit(result: subprocess.CompletedProcess, allowed=(0, 1)) -> str:
    """No signal, no traceback, no internal error; return stderr as text."""
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode in allowed, (result.returncode, stderr[-2000:])
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr[-2000:]
    return stderr


def common_tree(directory: Path) -> Path:
    """A tree whose files are all common code: `configure` marks the root."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "configure").write_text("#!/bin/sh\n")
    return directory


def finding_paths(result: subprocess.CompletedProcess) -> set[str]:
    return {finding["path"] for finding in json.loads(result.stdout)["findings"]}


# Item 6: a non-UTF-8 byte in a string literal of a KVM file.


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_non_utf8_string_literal_keeps_every_finding(tmp_path, jobs):
    tree = common_tree(tmp_path / "tree")
    # Enough files for the worker pool to start with -j2.
    for number in range(20):
        (tree / f"file{number}.c").write_text(PROXY_FUNCTION)
    (tree / "bad.c").write_bytes(
        b'static const char *name = "kernel_irqchip=\xff\xfe";\n' + PROXY_FUNCTION.encode()
    )
    result = run_kvmlint("check", "--format", "json", "-j", jobs, ".", cwd=tree)
    stderr = assert_clean_exit(result, allowed=(1,))
    assert finding_paths(result) == {"bad.c"} | {f"file{number}.c" for number in range(20)}
    assert "bad.c: not valid UTF-8 (line 1)" in stderr


# Items 9 and 10: deep nesting and sizes that are quadratic if walked naively.


def test_thousand_nested_ifdefs_are_analysed_with_a_warning(tmp_path):
    tree = common_tree(tmp_path / "tree")
    depth = 1000
    source = "".join(f"#ifdef CONFIG_{n}\n" for n in range(depth)) + PROXY_FUNCTION + "#endif\n" * depth
    (tree / "nested.c").write_text(source)
    result = run_kvmlint("check", "--format", "json", ".", cwd=tree)
    stderr = assert_clean_exit(result, allowed=(1,))
    assert finding_paths(result) == {"nested.c"}
    assert "nested.c: #if nesting deeper than 200 levels" in stderr


def test_many_proxy_uses_in_one_function_stay_linear(tmp_path):
    tree = common_tree(tmp_path / "tree")
    uses = "".join(f"    if (kvm_irqchip_in_kernel()) {{ kvm_irqchip_add_irqfd(s, {n}); }}\n" for n in range(4000))
    (tree / "many.c").write_text(f"void many_uses(void *s)\n{{\n{uses}}}\n")
    result = run_kvmlint("check", "--format", "json", ".", cwd=tree, cpu_seconds=20)
    assert_clean_exit(result, allowed=(1,))
    assert len(json.loads(result.stdout)["findings"]) == 4000


def test_long_line_of_slashes_and_suppressions(tmp_path):
    tree = common_tree(tmp_path / "tree")
    source = PROXY_FUNCTION.replace(
        "    if (", "    /* kvmlint: ignore[KVM001] */\n    if ("
    ) + "/" * 400_000 + "\n" + "kvmlint: ignore " * 20_000 + "\n"
    (tree / "slashes.c").write_text(source)
    result = run_kvmlint("check", "--format", "json", "--show-suppressed", ".", cwd=tree, cpu_seconds=20)
    assert_clean_exit(result, allowed=(0,))


def test_deeply_nested_macro_and_expression(tmp_path):
    tree = common_tree(tmp_path / "tree")
    depth = 20_000
    (tree / "macro.c").write_text("#define DEEP " + "kvm_wrap(" * depth + "1" + ")" * depth + "\n")
    parens = 5_000
    (tree / "expr.c").write_text(
        "int deep(void)\n{\n    return " + "(" * parens + "kvm_irqchip_in_kernel()" + ")" * parens + ";\n}\n"
    )
    result = run_kvmlint("check", "--format", "json", ".", cwd=tree, cpu_seconds=8)
    assert_clean_exit(result, allowed=(1,))
    assert finding_paths(result) == {"expr.c"}
