"""KVM004 int-predicate: a predicate of a target's KVM header that returns int, found from its body and
its callers (not its name), with the retype's safety read from how every caller uses the value."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import lay_out

HEADER_2012 = "target-i386/kvm_i386.h"
HEADER_CURRENT = "target/i386/kvm/kvm_i386.h"


def kvmlint(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kvmlint", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def findings(tree: Path, *args: str) -> list[dict]:
    result = kvmlint("check", "--format", "json", *args, str(tree))
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)["findings"]


def kvm004(tree: Path) -> list[dict]:
    return [f for f in findings(tree) if f["code"] == "KVM004"]


@pytest.fixture
def moved_2012(tmp_path) -> Path:
    """The 2012 tree after a move by hand that kept the int: target-i386/kvm_i386.h declares
    `int kvm_allows_irq0_override(void);`."""
    return lay_out(tmp_path / "qemu", "qemu-2012", "int-predicate-2012")


@pytest.fixture
def current(tmp_path) -> Path:
    return lay_out(tmp_path / "qemu", "qemu-current", "int-predicate-current")


def add_caller(tree: Path, path: str, body: str) -> None:
    with open(tree / path, "a") as source:
        source.write(f"\nstatic void kvm004_caller(void)\n{{\n    {body}\n}}\n")


def test_2012_moved_helper_that_kept_int_is_kvm004_not_kvm002(moved_2012):
    found = findings(moved_2012)
    [finding] = [f for f in found if f["code"] == "KVM004"]
    assert (finding["path"], finding["line"], finding["name"]) == (HEADER_2012, 12, "int-predicate")
    assert finding["message"] == "kvm_allows_irq0_override() is a predicate but returns int: make it return bool"
    assert finding["arch"] == "x86" and finding["symbol"] == "kvm_allows_irq0_override"
    assert finding["fix"]["applicability"] == "safe"  # hw/pc_piix.c asks `if (!kvm_allows_irq0_override())`
    assert "defined in target-i386/kvm-stub.c, target-i386/kvm.c" in finding["details"]
    # KVM002 reported this follow-up before; the helper already lives in its target.
    assert not [f for f in found if f["code"] == "KVM002"], found


def test_current_shape_target_header_int_predicate(current):
    [finding] = kvm004(current)
    assert (finding["path"], finding["line"]) == (HEADER_CURRENT, 35)
    assert finding["symbol"] == "kvm_has_exception_payload" and finding["fix"]["applicability"] == "safe"
    # The header's bool predicates are not findings.
    assert {f["symbol"] for f in findings(current)} & {"kvm_has_smm", "kvm_enable_x2apic"} == set()


@pytest.mark.parametrize(("body", "use"), [
    ("fw_cfg_add_i32(0, 1, kvm_allows_irq0_override());", "passes it on as an argument"),
    ("int allowed = kvm_allows_irq0_override(); (void)allowed;", "stores it"),
    ("if (kvm_allows_irq0_override() == 2) { abort(); }", "uses it as a number"),
], ids=["argument", "stored", "compared"])
def test_a_caller_that_reads_a_number_makes_the_retype_unsafe(moved_2012, body, use):
    add_caller(moved_2012, "hw/pc.c", body)
    [finding] = kvm004(moved_2012)
    assert finding["fix"]["applicability"] == "unsafe"
    text = kvmlint("check", "--select", "KVM004", str(moved_2012)).stdout
    assert re.search(rf"\(unsafe: hw/pc\.c:\d+ in kvm004_caller\(\) {use}, reading the value as a number; ", text), text


@pytest.mark.parametrize("body", [
    "if (kvm_allows_irq0_override() && kvm_enabled()) { abort(); }",
    "bool allowed = kvm_allows_irq0_override(); (void)allowed;",
    "assert(kvm_allows_irq0_override() != 0);",
    "while (!(kvm_allows_irq0_override())) { }",
    "x = kvm_allows_irq0_override() ? 1 : 2;",
], ids=["and", "bool", "assert", "while-not", "ternary"])
def test_truth_value_callers_keep_the_retype_safe(moved_2012, body):
    add_caller(moved_2012, "hw/pc.c", body)
    [finding] = kvm004(moved_2012)
    assert finding["fix"]["applicability"] == "safe"


def test_a_taken_address_leaves_no_fix(moved_2012):
    add_caller(moved_2012, "hw/pc.c", "int (*ask)(void) = kvm_allows_irq0_override; (void)ask;")
    [finding] = kvm004(moved_2012)
    assert finding["fix"] is None
    assert finding["message"].endswith("make it return bool by hand (hw/pc.c:"
                                       f"{finding_line(moved_2012, 'hw/pc.c', 'int (*ask)')} takes its address: "
                                       "a function pointer's type would no longer match)")


def finding_line(tree: Path, path: str, text: str) -> int:
    return next(n for n, line in enumerate((tree / path).read_text().splitlines(), 1) if text in line)


def test_functions_that_are_not_predicates_are_not_reported(moved_2012):
    header = moved_2012 / HEADER_2012
    header.write_text(header.read_text().replace(
        "#endif", "int kvm_x86_put_state(void);\nint kvm_x86_reset(void);\n\n#endif"))
    source = moved_2012 / "target-i386/kvm.c"
    source.write_text(source.read_text() + (
        "\nint kvm_x86_put_state(void)\n{\n    if (!kvm_enabled()) {\n        return -1;\n    }\n    return 0;\n}\n"
        "\nint kvm_x86_reset(void)\n{\n    return 0;\n}\n"  # only literal returns: an error code as likely as a flag
    ))
    add_caller(moved_2012, "hw/pc.c", "if (kvm_x86_put_state() || kvm_x86_reset()) { abort(); }")
    assert [f["symbol"] for f in kvm004(moved_2012)] == ["kvm_allows_irq0_override"]


def test_common_kvm_header_int_predicates_are_not_reported(tmp_path):
    """2012's kvm.h declares `int kvm_has_gsi_routing(void)` and the like: the common API, not a target's."""
    tree = lay_out(tmp_path / "qemu", "qemu-2012")
    assert kvm004(tree) == []


def test_explain_and_rules_know_kvm004():
    explained = kvmlint("explain", "int-predicate")
    assert explained.returncode == 0
    for heading in ("## What it does", "## Why is this bad?", "## Example", "## Fix safety"):
        assert heading in explained.stdout
    assert "KVM004" in kvmlint("rules").stdout
