"""The classes of false and missed findings seen on QEMU releases 2012-2025 (issue 9).

`qemu_helpers` (conftest.py) is the 2012 fixture tree with what later releases had: an in-kernel
interrupt controller's device file with `kvm` in its name, a helper whose flag
kvm_init() sets from an x86-only capability, a helper named for the PC machine,
helpers only x86 device code calls, and a device function that maps MMIO and
then asks the proxy.  functional-only/ is a copy of a tests/functional/ folder
with nothing that tells the era.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kvmlint.analysis import analyse
from kvmlint.source.discover import C_SUFFIXES, PYTHON_SUFFIXES, discover

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "qemu-snippets"
FUNCTIONAL_ONLY = FIXTURES / "functional-only"


def check(*args: str) -> tuple[int, list[dict], str]:
    completed = subprocess.run(
        [sys.executable, "-m", "kvmlint", "check", "--format", "json", *args], capture_output=True, text=True
    )
    return completed.returncode, json.loads(completed.stdout)["findings"], completed.stderr


def kvm002(tree: Path) -> dict[str, dict]:
    _, findings, _ = check("--select", "KVM002", str(tree))
    return {f["symbol"]: f for f in findings}


def explanation(finding: dict) -> str:
    """Everything a user reads about a finding: its first line, evidence and details."""
    return "\n".join([finding["message"], *finding["evidence"], *finding["details"]])


def test_the_kvm_layer_is_the_header_core_and_stub_found_from_the_code(qemu_helpers):
    analysis = analyse(discover([str(qemu_helpers)]), jobs=1)
    assert analysis.scope("hw/mpic_kvm.c").common  # common and kvm-named, yet not the KVM layer
    assert analysis.kvm_layer == {"kvm.h", "kvm-all.c", "kvm-stub.c"}


def test_a_kvm_named_device_file_is_not_the_common_kvm_layer(qemu_helpers):
    assert "kvm_mpic_connect_vcpu" not in kvm002(qemu_helpers)


def test_the_layer_follows_the_code_when_the_files_are_renamed(qemu_helpers, tmp_path):
    tree = Path(shutil.copytree(qemu_helpers, tmp_path / "qemu"))
    (tree / "accel").mkdir()
    (tree / "kvm-all.c").rename(tree / "accel" / "core.c")
    (tree / "kvm-stub.c").rename(tree / "accel" / "no-kvm.c")
    makefile = tree / "Makefile.target"
    makefile.write_text(
        makefile.read_text().replace("kvm-all.o", "accel/core.o").replace("kvm-stub.o", "accel/no-kvm.o")
    )
    found = kvm002(tree)
    assert found["kvm_has_robust_singlestep"]["path"] == "accel/core.c"
    assert "accel/no-kvm.c" in explanation(found["kvm_has_robust_singlestep"])


def test_a_flag_set_from_an_x86_only_capability_in_kvm_init_is_evidence(qemu_helpers):
    finding = kvm002(qemu_helpers)["kvm_has_robust_singlestep"]
    assert finding["arch"] == "x86"
    message = explanation(finding)
    assert "robust_singlestep" in message and "KVM_CAP_X86_ROBUST_SINGLESTEP" in message
    assert "kvm_init()" in message and "kvm-all.c:" in message


def test_a_flag_set_from_a_capability_of_several_architectures_is_not(qemu_helpers):
    # kvm_has_vcpu_events() reads a flag set from KVM_CAP_VCPU_EVENTS (x86 and arm64)
    assert "kvm_has_vcpu_events" not in kvm002(qemu_helpers)


def test_a_helper_named_for_one_architectures_machine_is_reported(qemu_helpers):
    finding = kvm002(qemu_helpers)["kvm_pc_setup_irq_routing"]
    assert finding["arch"] == "x86"
    assert "'pc' machine" in explanation(finding)


def test_a_helper_only_one_architectures_device_code_calls_is_reported_unless_generic(qemu_helpers):
    found = kvm002(qemu_helpers)
    assert "every caller is x86 device code (hw/pc.c)" in explanation(found["kvm_flash_encryption_enabled"])
    assert "kvm_has_vcpu_events" not in found  # a generic concept, though only hw/pc.c calls it


def test_mmio_set_up_elsewhere_in_the_function_does_not_silence_a_proxy(qemu_helpers):
    _, findings, _ = check("--select", "KVM001", str(qemu_helpers))
    sites = {(f["path"], f["line"]) for f in findings if f["path"] == "hw/pci_plug.c"}
    source = (qemu_helpers / "hw/pci_plug.c").read_text().splitlines()
    plugged = next(n for n, line in enumerate(source, 1) if "kvm_irqchip_in_kernel" in line)
    # the first use is in the plug function (MMIO mapped above it); the other two choose the model,
    # one with else, one with an early return
    assert sites == {("hw/pci_plug.c", plugged)}


def test_an_era_less_functional_tests_folder_is_current_qemu():
    sources = discover([str(FUNCTIONAL_ONLY)], suffixes=C_SUFFIXES + PYTHON_SUFFIXES)
    assert analyse(sources, jobs=1).era == "current"
    status, findings, _ = check(str(FUNCTIONAL_ONLY))
    assert (status, findings) == (0, [])  # split is valid on x86 today
    status, findings, _ = check("--era", "2012", str(FUNCTIONAL_ONLY))
    assert status == 1 and findings[0]["code"] == "KVM006"  # and was not in 2012


def test_layout_tells_the_era_when_no_kvm_symbol_does(tmp_path):
    for layout, era in (("meson.build", "current"), ("Makefile.target", "2012")):
        tree = tmp_path / era
        shutil.copytree(FUNCTIONAL_ONLY, tree)
        (tree / layout).write_text("# build\n")
        sources = discover([str(tree)], suffixes=C_SUFFIXES + PYTHON_SUFFIXES)
        assert analyse(sources, jobs=1).era == era


def test_a_pre_commit_run_on_a_few_files_still_tells_the_core_from_a_device_file(qemu_helpers):
    files = [str(qemu_helpers / "kvm-all.c"), str(qemu_helpers / "hw/mpic_kvm.c")]
    analysis = analyse(discover(files), jobs=1)
    assert analysis.kvm_layer == {"kvm-all.c"}  # the tree's header, read aside, names the API


@pytest.mark.skipif(not os.environ.get("KVMLINT_QEMU_TREE"), reason="needs KVMLINT_QEMU_TREE")
def test_on_a_real_tree_the_layer_is_one_header_one_core_and_stubs_and_kvm002_stays_in_it():
    tree = Path(os.environ["KVMLINT_QEMU_TREE"])
    analysis = analyse(discover([str(tree)]), jobs=2)
    headers = [path for path in analysis.kvm_layer if path.endswith(".h")]
    assert len(headers) == 1 and 2 <= len(analysis.kvm_layer) <= 4
    _, findings, _ = check("--select", "KVM002", str(tree))
    assert all(f["path"] in analysis.kvm_layer for f in findings)
