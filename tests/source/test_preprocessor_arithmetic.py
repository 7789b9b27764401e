"""`#if` is evaluated with C's arithmetic, or not at all: code the compiler compiles is never taken for dead.

The preprocessor computes in intmax_t and uintmax_t (64 bits) with the usual
arithmetic conversions, so `#if -1 > 0u` is true (the comparison is unsigned)
and a proxy use inside it is reported.  What kvmlint cannot evaluate exactly
(a shift by 64, a division by zero, signed overflow, a macro whose expansion
it does not know) is unknown, which counts as compiled.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import lay_out
from kvmlint.source.preprocessor import constant_value

NEW_PROXY = "\nint msi_irqchip_ready(void)\n{\n    return kvm_irqchip_in_kernel();\n}\n"


def kvm001_functions(tree: Path, path: str) -> set[str]:
    result = subprocess.run([sys.executable, "-m", "kvmlint", "check", "--no-cache", "--format", "json",
                             "--select", "KVM001", str(tree)], capture_output=True, text=True, timeout=120)
    assert result.returncode in (0, 1), result.stderr
    return {f["function"] for f in json.loads(result.stdout)["findings"] if f["path"] == path}


def test_a_proxy_under_if_minus_one_greater_than_zero_u_is_reported(tmp_path):
    tree = lay_out(tmp_path / "qemu", "qemu-2012")
    msi = tree / "hw" / "msi.c"
    msi.write_text(msi.read_text() + "\n#if -1 > 0u" + NEW_PROXY + "#endif\n")
    assert "msi_irqchip_ready" in kvm001_functions(tree, "hw/msi.c")


# condition -> whether the code under it is compiled (gcc agrees on every decided one)
CONDITIONS = {
    "-1 > 0u": True,                      # unsigned comparison: 0xffffffffffffffff > 0
    "-1 < 0": True,
    "0xffffffffffffffff == -1": True,     # a hexadecimal beyond intmax_t is uintmax_t
    "(1 ? -1 : 0u) > 0": True,            # a conditional has the converted type of both branches
    "~0u == 0xffffffffffffffff": True,    # 64 bits, not 32
    "-1 > 0": False,
    "0u > -1": False,
    "(1 ? -1 : 0u) < 0": False,
    "-1 / 2": False,                      # division truncates toward zero
    "1 << 64": True,                      # not exact: unknown, so compiled
    "1 << -1": True,
    "-1 >> 1": True,
    "1 / 0": True,
    "0 % 0": True,
    "9223372036854775807 + 1": True,      # signed overflow
    "18446744073709551616 == 0": True,    # too large for any type
    "0 && SOME_MACRO": True,              # the macro's expansion may regroup the expression
    "0 && defined(SOME_MACRO)": False,    # defined() is 0 or 1: this is decided
}


def test_conditions_the_compiler_decides_are_decided_the_same_way_and_the_rest_count_as_compiled(tmp_path):
    tree = lay_out(tmp_path / "qemu", "qemu-2012")
    cpus = tree / "cpus.c"
    blocks = "".join(f"\n#if {condition}\nstatic int block_{number}(void)\n{{\n"
                     f"    return kvm_irqchip_in_kernel() ? 1 : 0;\n}}\n#endif\n"
                     for number, condition in enumerate(CONDITIONS))
    cpus.write_text(cpus.read_text() + blocks)
    reported = kvm001_functions(tree, "cpus.c")
    compiled = {f"block_{number}" for number, live in enumerate(CONDITIONS.values()) if live}
    assert reported - {"cpu_thread_is_idle"} == compiled


@pytest.mark.parametrize("condition, value", [
    ("-1 > 0u", 1), ("-1 < 0", 1), ("0xffffffffffffffff == -1", 1), ("-0x8000000000000000 > 0", 1),
    ("9223372036854775808u == 0x8000000000000000", 1), ("0x8000000000000000 / -1", 0), ("-7 % 3", -1),
    ("1u << 63 > 0", 1), ("(0 ? 0u : -1) > 0", 1), ("1ULL + 1llu", 2), ("1 \\\n + 1", 2),
    ("defined X ? 1 : 1", 1), ("defined(X) && 0", 0), ("0 * defined(X)", 0),
    ("1 << 63", None), ("(-9223372036854775807 - 1) / -1", None), ("-(-9223372036854775807 - 1)", None),
    ("9223372036854775808", None), ("0x1ffffffffffffffff", None), ("1lul", None), ("1lL", None),
    ("defined(X) ? -1 : 0u", None), ("'a'", None), ("__has_include(<x>)", None), ("1.0", None),
])
def test_constant_value_is_cs_or_unknown(condition, value):
    assert constant_value(condition) == value
