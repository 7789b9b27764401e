"""Fixes that build: moves only where every caller can follow, moved prototypes with the
types they need, every unfixed finding listed, fix run from anywhere in the checkout."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SNIPPETS = FIXTURES / "qemu-snippets"


def kvmlint(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "kvmlint", *args], capture_output=True, text=True, cwd=cwd)


def copy(tmp_path: Path, name: str) -> Path:
    return Path(shutil.copytree(SNIPPETS / name, tmp_path / "qemu"))


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def kvm002(tree: Path, symbol: str) -> dict:
    result = kvmlint("check", "--format", "json", "--select", "KVM002", str(tree))
    finding = next(f for f in json.loads(result.stdout)["findings"] if f["symbol"] == symbol)
    finding["text"] = " ".join([finding["message"], *finding.get("details", [])])  # the reason, with its details
    return finding


# --- item 2: a move only where every caller is compiled per target, for that target ----------

def test_2012_a_caller_compiled_once_for_every_target_gets_no_move(tmp_path):
    tree = copy(tmp_path, "qemu-2012")
    append(tree / "hw/hpet.c", "\nint hpet_irq0_routed(void)\n{\n    return kvm_allows_irq0_override();\n}\n")
    finding = kvm002(tree, "kvm_allows_irq0_override")
    assert finding["fix"] is None
    assert "no move offered: hw/hpet.c calls it and is compiled once for every target" in finding["text"]
    assert "options: keep the declaration where that caller sees it" in finding["text"]
    before = (tree / "kvm.h").read_text()
    done = kvmlint("fix", "--rule", "irq0-override", str(tree))
    assert done.returncode == 1
    assert "not fixed: kvm-all.c:77: KVM002 kvm_allows_irq0_override: no automatic fix:" in done.stderr
    assert (tree / "kvm.h").read_text() == before
    assert not (tree / "target-i386/kvm_i386.h").exists()


def test_2012_per_target_callers_get_the_move(tmp_path):
    tree = copy(tmp_path, "qemu-2012")  # its one caller, hw/pc_piix.c, is i386's obj-y
    assert kvm002(tree, "kvm_allows_irq0_override")["fix"]["applicability"] == "safe"


def test_2012_a_common_caller_under_a_target_ifdef_keeps_the_helper_in_place(tmp_path):
    """The kvm_arch_vmalloc case: common kvm-all.c calls it under #ifdef TARGET_<ARCH>."""
    tree = copy(tmp_path, "qemu-2012")
    append(tree / "kvm-all.c", "\nint kvm_irq0_routed(void);\nint kvm_irq0_routed(void)\n{\n"
                               "#ifdef TARGET_I386\n    return kvm_allows_irq0_override();\n#endif\n    return 0;\n}\n")
    finding = kvm002(tree, "kvm_allows_irq0_override")
    assert finding["fix"] is None
    assert "kvm-all.c calls it under #ifdef TARGET_I386 but is built for other targets too" in finding["text"]


def current_tree_with_arm_helper(tmp_path, caller: str) -> Path:
    tree = copy(tmp_path, "qemu-current")
    append(tree / "accel/kvm/kvm-all.c", "\nbool kvm_arm_supports_user_irq(void)\n{\n    return kvm_check_extension(kvm_state, KVM_CAP_ARM_USER_IRQ);\n}\n")
    append(tree / "accel/stubs/kvm-stub.c", "\nbool kvm_arm_supports_user_irq(void)\n{\n    return false;\n}\n")
    header = tree / "include/system/kvm.h"
    text = header.read_text()
    guard_end = text.rindex("#endif")
    header.write_text(
        text[:guard_end]
        + "/**\n * kvm_arm_supports_user_irq\n *\n * Returns: true if KVM can deliver interrupts to user space.\n */\n"
        + "bool kvm_arm_supports_user_irq(void);\n\n" + text[guard_end:]
    )
    append(tree / caller, "\nstatic bool user_irq(void)\n{\n    return kvm_arm_supports_user_irq();\n}\n")
    return tree


def test_current_a_system_ss_caller_gets_no_move(tmp_path):
    tree = current_tree_with_arm_helper(tmp_path, "hw/intc/arm_gicv3_common.c")
    finding = kvm002(tree, "kvm_arm_supports_user_irq")
    assert finding["fix"] is None
    assert ("no move offered: hw/intc/arm_gicv3_common.c calls it and is compiled once for every target "
            "(hw/intc/meson.build: system_ss") in finding["text"]


def test_current_a_per_target_caller_gets_the_move_with_the_doc_comment(tmp_path):
    tree = current_tree_with_arm_helper(tmp_path, "hw/arm/virt.c")
    assert kvm002(tree, "kvm_arm_supports_user_irq")["fix"]["applicability"] == "safe"
    done = kvmlint("fix", "--rule", "KVM002", str(tree))
    assert "fixed: kvm: Move kvm_arm_supports_user_irq() to target/arm" in done.stdout, done.stderr
    header = next((tree / "target/arm").rglob("kvm_arm.h")).read_text()
    assert " * Returns: true if KVM can deliver interrupts to user space.\n */\nbool kvm_arm_supports_user_irq(void);" in header
    common = (tree / "include/system/kvm.h").read_text()
    assert "kvm_arm_supports_user_irq" not in common
    assert "\n\n\n" not in common


# --- the move itself: doc comment, spacing, types ------------------------------------------

def test_adjacent_prototypes_moved_in_one_run_leave_one_blank_line(tmp_path):
    tree = copy(tmp_path, "qemu-2012")
    header = tree / "kvm.h"
    header.write_text(header.read_text().replace(
        "int kvm_allows_irq0_override(void);\n",
        "int kvm_allows_irq0_override(void);\n\n"
        "void kvm_put_apic_state(void *d, int level);\nvoid kvm_get_apic_state(void *d, int level);\n",
    ))
    append(tree / "target-i386/kvm.c", "\nvoid kvm_put_apic_state(void *d, int level)\n{\n}\n\n"
                                       "void kvm_get_apic_state(void *d, int level)\n{\n}\n")
    append(tree / "hw/pc_piix.c", "\nstatic void sync_apic(void)\n{\n    kvm_put_apic_state(0, 0);\n    kvm_get_apic_state(0, 0);\n}\n")
    done = kvmlint("fix", "--unsafe-fixes", "--rule", "KVM002", str(tree))
    assert "fixed: kvm: Move kvm_get_apic_state() to target-i386" in done.stdout, done.stderr
    text = header.read_text()
    assert "apic_state" not in text and "\n\n\n" not in text


def test_a_later_unsafe_run_still_offers_the_return_type_after_the_safe_move(tmp_path):
    tree = copy(tmp_path, "qemu-2012")
    append(tree / "hw/pc_piix.c", "\nstatic int irq0_flag(void)\n{\n    return kvm_allows_irq0_override();\n}\n")
    first = kvmlint("fix", "--rule", "irq0-override", str(tree))
    assert first.returncode == 0, first.stderr
    assert "return bool" not in first.stdout  # hw/pc_piix.c returns it as an int: the retype is unsafe
    # The follow-up is KVM004's finding now that the helper lives in its target.
    safe = kvmlint("fix", "--rule", "int-predicate", str(tree))
    assert "not fixed: target-i386/kvm_i386.h:12: KVM004" in safe.stderr and "--unsafe-fixes applies it" in safe.stderr
    assert safe.returncode == 1
    later = kvmlint("fix", "--unsafe-fixes", "--rule", "int-predicate", str(tree))
    assert "fixed: kvm: Make kvm_allows_irq0_override() return bool" in later.stdout, later.stderr
    for path in ("target-i386/kvm.c", "target-i386/kvm_i386.h", "target-i386/kvm-stub.c"):
        assert "bool kvm_allows_irq0_override(void)" in (tree / path).read_text(), path
    assert kvmlint("fix", "--unsafe-fixes", "--rule", "int-predicate", str(tree)).returncode == 0


# --- every finding not fixed is listed, and the exit status says so ------------------------

@pytest.mark.parametrize("unsafe", [False, True], ids=["safe", "unsafe"])
def test_fix_lists_every_finding_it_leaves_and_exits_1(tmp_path, unsafe):
    tree = copy(tmp_path, "qemu-2012")
    done = kvmlint("fix", *(["--unsafe-fixes"] if unsafe else []), str(tree))
    assert done.returncode == 1
    # KVM001 without evidence has no fix: both runs say so
    assert "not fixed: hw/msi.c:16: KVM001 kvm_irqchip_in_kernel: no automatic fix:" in done.stderr
    assert "not fixed: hw/msix.c:14: KVM001" in done.stderr
    # the proxy inside the helper that moves goes with it: not listed
    assert "not fixed: kvm-all.c:79" not in done.stderr
    left = kvmlint("check", "--format", "json", str(tree))
    listed = set(re.findall(r"^kvmlint: not fixed: ([^:]+:\d+):", done.stderr, re.MULTILINE))
    remaining = {f"{f['path']}:{f['line']}" for f in json.loads(left.stdout)["findings"]}
    assert remaining <= listed | {p for p in remaining if p.startswith("target-i386/")}, (remaining, listed)


# --- fix finds the checkout root, as check does -------------------------------------------

def test_fix_of_one_file_reads_the_whole_checkout_and_fixes_that_file(tmp_path):
    tree = copy(tmp_path, "qemu-2012")
    before = {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    done = kvmlint("fix", "cpus.c", cwd=tree)
    assert "no definition of" not in done.stderr
    assert "fixed: kvm: Decouple 'async interrupt delivery' from 'kernel irqchip'" in done.stdout, done.stderr
    assert "kvm_async_interrupts_enabled()" in (tree / "cpus.c").read_text()
    assert (tree / "hw/virtio-pci.c").read_bytes() == before[tree / "hw/virtio-pci.c"]  # outside the path


def test_fix_from_a_subdirectory_fixes_the_findings_there(tmp_path):
    tree = copy(tmp_path, "qemu-2012")
    done = kvmlint("fix", cwd=tree / "hw")
    assert "no definition of" not in done.stderr
    assert "kvm_msi_via_irqfd_enabled()" in (tree / "hw/virtio-pci.c").read_text(), done.stderr
    assert "kvm_irqchip_in_kernel()" in (tree / "cpus.c").read_text()


# --- moved prototypes compile: the types they use come with them (build gate) ------------

def test_moved_prototypes_bring_their_types_and_build_without_kvm(tmp_path):
    gate = pytest.importorskip("test_build_gate")
    tree = Path(shutil.copytree(FIXTURES / "build-gate", tmp_path / "qemu"))
    common = tree / "qemu-common.h"
    common.write_text(common.read_text().replace("#endif", "typedef struct DeviceState DeviceState;\n\n#endif"))
    header = tree / "kvm.h"
    header.write_text(header.read_text().replace(
        "int kvm_allows_irq0_override(void);\n",
        "int kvm_allows_irq0_override(void);\n\nstruct kvm_lapic_state;\n\n"
        "/**\n * kvm_get_apic_state:\n * @s: the KVM state\n *\n * Reads the in-kernel LAPIC into @kapic.\n */\n"
        "void kvm_get_apic_state(KVMState *s, DeviceState *d, struct kvm_lapic_state *kapic);\n",
    ))
    append(tree / "target-i386/kvm.c", "\nvoid kvm_get_apic_state(KVMState *s, DeviceState *d, struct kvm_lapic_state *kapic)\n"
                                       "{\n    (void)s;\n    (void)d;\n    (void)kapic;\n}\n")
    append(tree / "hw/pc.c", "\n#ifdef CONFIG_KVM\nvoid pc_kvm_sync_apic(DeviceState *apic);\n"
                             "void pc_kvm_sync_apic(DeviceState *apic)\n{\n    kvm_get_apic_state(kvm_state, apic, NULL);\n}\n#endif\n")
    done = kvmlint("fix", "--unsafe-fixes", str(tree))
    assert "fixed: kvm: Move kvm_get_apic_state() to target-i386" in done.stdout, done.stderr
    moved = (tree / "target-i386/kvm_i386.h").read_text()
    assert '#include "kvm.h"' in moved and '#include "qemu-common.h"' in moved
    assert "struct kvm_lapic_state;" in moved
    assert " * Reads the in-kernel LAPIC into @kapic.\n */\nvoid kvm_get_apic_state(" in moved
    for config in (gate.BuildConfig("i386", kvm=True), gate.BuildConfig("i386", kvm=False)):
        gate.build(tree, config, tmp_path / "out" / config.label)  # raises BuildError with gcc's output
