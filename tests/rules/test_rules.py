"""Rules KVM001-KVM003 on the fixture trees, through the command a user runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kvmlint import rules

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "qemu-snippets"
TREE_2012 = FIXTURES / "qemu-2012"
TREE_CURRENT = FIXTURES / "qemu-current"


def check(*args: str) -> tuple[int, dict]:
    completed = subprocess.run(
        [sys.executable, "-m", "kvmlint", "check", "--format", "json", *args],
        capture_output=True,
        text=True,
    )
    return completed.returncode, json.loads(completed.stdout)


def by_code(document: dict, code: str) -> dict[tuple[str, int], dict]:
    return {(f["path"], f["line"]): f for f in document["findings"] if f["code"] == code}


def test_kvm001_reports_exactly_the_common_proxy_sites_of_the_2012_tree():
    status, document = check(str(TREE_2012))
    assert status == 1
    assert set(by_code(document, "KVM001")) == {
        ("kvm-all.c", 22), ("kvm-all.c", 40), ("kvm-all.c", 61), ("kvm-all.c", 79),
        ("cpus.c", 24), ("hw/virtio-pci.c", 22), ("hw/virtio-pci.c", 39),
        ("hw/msi.c", 16), ("hw/msix.c", 14),
    }


def test_kvm001_proposes_the_predicate_upstream_chose_with_its_evidence():
    _, document = check(str(TREE_2012))
    found = by_code(document, "KVM001")
    expected = {
        ("kvm-all.c", 22): ("kvm_irqchip_set_irq", "kvm_async_interrupts_enabled()"),
        ("kvm-all.c", 40): ("kvm_irqchip_add_msi_route", "kvm_gsi_routing_enabled()"),
        ("kvm-all.c", 61): ("kvm_irqchip_assign_irqfd", "kvm_irqfds_enabled()"),
        ("cpus.c", 24): ("cpu_thread_is_idle", "kvm_async_interrupts_enabled()"),
        ("hw/virtio-pci.c", 22): ("virtio_pci_set_guest_notifiers", "kvm_msi_via_irqfd_enabled()"),
        ("hw/virtio-pci.c", 39): ("virtio_pci_set_guest_notifiers", "kvm_msi_via_irqfd_enabled()"),
    }
    for site, (function, replacement) in expected.items():
        finding = found[site]
        assert (finding["function"], finding["replacement"]) == (function, replacement), site
        assert finding["fix"]["applicability"] == "safe"
        assert finding["message"].endswith(f"use {replacement}") and len(finding["message"]) < 120
        assert finding["evidence"] and finding["verdicts"]["x86"].startswith("identical")


def test_kvm001_without_evidence_lists_the_candidates_and_what_each_changes():
    _, document = check(str(TREE_2012))
    macro_site = by_code(document, "KVM001")[("hw/msix.c", 14)]
    assert macro_site["function"] == "MSIX_USES_KERNEL"  # the macro holding the use
    assert macro_site["replacement"] is None and macro_site["fix"] is None
    assert macro_site["confidence"] == "low" and "no single answer" in macro_site["message"]
    candidates = [d for d in macro_site["details"] if d.startswith("candidate ")]
    assert any(d.startswith("candidate kvm_msi_via_irqfd_enabled() (") for d in candidates), candidates
    assert all("x86" in d and "arm: differs in 1 of 2: kernel_irqchip=" in d for d in candidates), candidates
    helper_site = by_code(document, "KVM001")[("kvm-all.c", 79)]
    assert "KVM002" in helper_site["message"]


def test_kvm001_is_silent_in_target_and_build_arch_specific_files():
    _, document = check(str(TREE_2012))
    paths = {path for path, _ in by_code(document, "KVM001")}
    assert not paths & {"hw/pc.c", "hw/pc_piix.c", "hw/a15mpcore.c", "target-i386/kvm.c", "hw/xics.c"}


def test_kvm001_on_the_current_layout():
    _, document = check(str(TREE_CURRENT))
    found = by_code(document, "KVM001")
    assert set(found) == {("accel/kvm/kvm-all.c", 31), ("hw/intc/two_arch_ipi.c", 16)}
    assert found[("accel/kvm/kvm-all.c", 31)]["replacement"] == "kvm_gsi_routing_enabled()"
    # Shared by two architectures, but nothing says what it asks: no guess.
    assert found[("hw/intc/two_arch_ipi.c", 16)]["replacement"] is None


def test_json_contract_keys_and_paths_relative_to_the_directory_argument():
    _, document = check(str(TREE_2012))
    assert set(document) == {"version", "findings", "summary"}
    assert set(document["summary"]) == {"files", "parsed", "findings", "seconds"}
    finding = by_code(document, "KVM001")[("cpus.c", 24)]
    assert list(finding) == [
        "code", "name", "path", "line", "column", "end_line", "end_column", "function", "symbol",
        "message", "replacement", "arch", "confidence", "evidence", "details", "verdicts", "fix",
    ]  # evidence, details and verdicts were added in 0.2; nothing was removed
    assert (finding["column"], finding["end_column"]) == (51, 51 + len("kvm_irqchip_in_kernel()"))


def test_kvm002_reports_the_x86_helper_and_the_alias_selects_only_it():
    _, document = check(str(TREE_2012), "--select", "KVM002")
    helpers = {f["symbol"]: f for f in document["findings"]}
    assert helpers["kvm_allows_irq0_override"]["arch"] == "x86"
    assert helpers["kvm_allows_irq0_override"]["fix"]["applicability"] == "safe"
    _, only = check(str(TREE_2012), "--select", "irq0-override")
    assert [f["symbol"] for f in only["findings"]] == ["kvm_allows_irq0_override"]


def test_kvm002_leaves_generic_concepts_alone(tmp_path):
    tree = tmp_path / "q"
    subprocess.run(["cp", "-r", str(TREE_2012), str(tree)], check=True)
    # GSI routing is a generic concept even when only x86 asks for it today.
    kvm_all = tree / "kvm-all.c"
    kvm_all.write_text(kvm_all.read_text().replace("kvm_allows_irq0_override", "kvm_gsi_routes_allowed"))
    for path in (tree / "kvm.h", tree / "kvm-stub.c", tree / "hw" / "pc_piix.c"):
        path.write_text(path.read_text().replace("kvm_allows_irq0_override", "kvm_gsi_routes_allowed"))
    _, document = check(str(tree), "--select", "KVM002")
    assert "kvm_gsi_routes_allowed" not in {f["symbol"] for f in document["findings"]}


def test_kvm003_names_the_injection_api_without_irqchip():
    _, document = check(str(TREE_2012), "--select", "irqchip-named-injection")
    (finding,) = document["findings"]
    assert (finding["symbol"], finding["replacement"]) == ("kvm_irqchip_set_irq", "kvm_set_irq")


def test_registry_is_derived_from_the_rule_modules():
    codes = [rule.code for rule in rules.all_rules()]
    assert codes == sorted(codes) and {"KVM001", "KVM002", "KVM003"} <= set(codes)
    for rule in rules.all_rules():
        for section in ("## What it does", "## Why is this bad?", "## Example", "## Fix safety"):
            assert section in rule.docs, (rule.code, section)


def test_explain_prints_the_docs_by_code_name_or_alias():
    for word in ("KVM002", "arch-helper-in-common", "irq0-override"):
        out = subprocess.run(
            [sys.executable, "-m", "kvmlint", "explain", word], capture_output=True, text=True, check=True
        ).stdout
        assert out.startswith("# KVM002 arch-helper-in-common") and "## Fix safety" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["check", "/no/such/tree"], "no such file or directory"),
        (["check", str(TREE_2012), "--select", "KVM999"], "unknown rule 'KVM999'"),
        (["explain", "nonsense"], "unknown rule 'nonsense'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    completed = subprocess.run([sys.executable, "-m", "kvmlint", *args], capture_output=True, text=True)
    assert completed.returncode == 2
    assert message in completed.stderr and "Traceback" not in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1


def test_unusable_files_are_skipped_with_a_warning_and_the_rest_still_checked(tmp_path):
    tree = tmp_path / "q"
    subprocess.run(["cp", "-r", str(TREE_2012), str(tree)], check=True)
    (tree / "hw" / "blob.c").write_bytes(b"\x7fELF\x00\x00kvm" * 100)
    (tree / "hw" / "latin1.c").write_bytes(b"/* Fran\xe7ois */ int kvm_x(void) { return kvm_irqchip_in_kernel(); }\n")
    unreadable = tree / "hw" / "secret.c"
    unreadable.write_text("int kvm_y;\n")
    os.chmod(unreadable, 0)
    completed = subprocess.run(
        [sys.executable, "-m", "kvmlint", "check", str(tree)], capture_output=True, text=True
    )
    assert completed.returncode == 1 and "Traceback" not in completed.stderr
    assert "hw/blob.c: binary file; skipped" in completed.stderr
    assert "hw/latin1.c: not valid UTF-8" in completed.stderr
    if os.geteuid() != 0:  # root reads anything
        assert "hw/secret.c: cannot be read" in completed.stderr
    assert "cpus.c:24:51: KVM001" in completed.stdout


def test_explain_proposes_what_check_proposes():
    _, document = check(str(TREE_2012))
    idle_site = by_code(document, "KVM001")[("cpus.c", 24)]
    explained = subprocess.run(
        [sys.executable, "-m", "kvmlint", "explain", "KVM001"], capture_output=True, text=True, check=True
    ).stdout
    example = explained.split("Use instead", 1)[1].split("```c\n", 1)[1].split("\n", 1)[0]
    assert example.endswith(f"|| {idle_site['replacement']}) {{")
    # The table of questions comes from the same evidence data check uses.
    for finding in by_code(document, "KVM001").values():
        if finding["replacement"]:
            assert f"| `{finding['replacement']}` |" in explained
    assert "| `kvm_async_interrupts_enabled()` | `kvm_halt_in_kernel()` |" in explained
