"""Code-mods before and after, through `kvmlint fix` on copies of the fixture trees."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kvmlint.codemods.split_predicate import wrap_condition
from kvmlint.source.extract import extract

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "qemu-snippets"


@pytest.fixture
def tree_2012(tmp_path):
    return Path(shutil.copytree(FIXTURES / "qemu-2012", tmp_path / "qemu"))


def kvmlint(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "kvmlint", *args], capture_output=True, text=True, cwd=cwd)


def digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


IRQ0_CHANGED = {
    "kvm-all.c", "kvm-stub.c", "kvm.h", "hw/pc_piix.c", "target-i386/kvm.c", "target-i386/Makefile.objs",
}
IRQ0_CREATED = {"target-i386/kvm_i386.h", "target-i386/kvm-stub.c"}


def test_irq0_override_moves_whole_and_touches_nothing_else(tree_2012):
    before = digests(tree_2012)
    done = kvmlint("fix", "--rule", "irq0-override", str(tree_2012))
    assert done.returncode == 0, done.stderr
    after = digests(tree_2012)
    assert {p for p in before if before[p] != after.get(p)} == IRQ0_CHANGED
    assert set(after) - set(before) == IRQ0_CREATED

    for common in ("kvm-all.c", "kvm-stub.c", "kvm.h"):
        assert "kvm_allows_irq0_override" not in (tree_2012 / common).read_text()
    header = (tree_2012 / "target-i386/kvm_i386.h").read_text()
    # kvm_ppc.h's reserved __KVM_PPC_H__ is not copied: upstream's guard
    assert header.endswith("#ifndef QEMU_KVM_I386_H\n#define QEMU_KVM_I386_H\n\nbool kvm_allows_irq0_override(void);\n\n#endif /* QEMU_KVM_I386_H */\n")
    assert "This work is licensed" in header and "Copyright" not in header  # no invented copyright
    stub = (tree_2012 / "target-i386/kvm-stub.c").read_text()
    assert '#include "kvm_i386.h"' in stub and "bool kvm_allows_irq0_override(void)\n{\n    return 1;\n}\n" in stub
    makefile = (tree_2012 / "target-i386/Makefile.objs").read_text()
    assert "obj-$(CONFIG_KVM) += kvm.o hyperv.o\nobj-$(CONFIG_NO_KVM) += kvm-stub.o\n" in makefile
    source = (tree_2012 / "target-i386/kvm.c").read_text()
    assert '#include "kvm.h"\n#include "kvm_i386.h"\n' in source
    assert source.index("bool kvm_allows_irq0_override(void)") < source.index("void kvm_arch_pre_run")
    assert '#include "kvm.h"\n#include "kvm_i386.h"\n' in (tree_2012 / "hw/pc_piix.c").read_text()


def test_fixing_twice_changes_nothing(tree_2012):
    kvmlint("fix", str(tree_2012))
    once = digests(tree_2012)
    again = kvmlint("fix", str(tree_2012))
    assert digests(tree_2012) == once
    assert "0 file(s) written" in again.stdout


def test_fix_introduces_the_split_predicates_the_way_qemu_does(tree_2012):
    done = kvmlint("fix", str(tree_2012))
    assert "fixed: kvm: Decouple" in done.stdout
    header = (tree_2012 / "kvm.h").read_text()
    assert "extern bool kvm_kernel_irqchip;\nextern bool kvm_async_interrupts_allowed;\n" in header
    assert " * kvm_async_interrupts_enabled:\n" in header
    assert "#define kvm_async_interrupts_enabled() (kvm_async_interrupts_allowed)\n" in header
    assert "#define kvm_async_interrupts_enabled() (false)\n" in header  # builds without KVM
    for flag_file in ("kvm-all.c", "kvm-stub.c"):
        assert "bool kvm_async_interrupts_allowed;" in (tree_2012 / flag_file).read_text()
    core = (tree_2012 / "kvm-all.c").read_text()
    # Every arch's irqchip implies async delivery: the common irqchip creation sets it.
    assert (
        "kvm_kernel_irqchip = true;\n"
        "    /* An in-kernel irqchip implies kvm_async_interrupts_enabled(). */\n"
        "    kvm_async_interrupts_allowed = true;\n"
    ) in core
    assert "assert(kvm_async_interrupts_enabled());" in core
    assert "if (!kvm_gsi_routing_enabled())" in core and "if (!kvm_irqfds_enabled())" in core
    # x86 alone ties irqfds to its irqchip: its own irqchip hook sets the flag.
    assert "kvm_irqfds_allowed = true;" in (tree_2012 / "target-i386/kvm.c").read_text()
    assert "kvm_msi_via_irqfd_enabled() && assign" in (tree_2012 / "hw/virtio-pci.c").read_text()
    assert "kvm_set_irq(" in core and "kvm_irqchip_set_irq" not in core  # KVM003's rename
    for path in ("kvm.h", "kvm-all.c", "kvm-stub.c", "cpus.c", "hw/virtio-pci.c", "target-i386/kvm.c"):
        original = extract(path, (FIXTURES / "qemu-2012" / path).read_bytes()).error_nodes
        assert extract(path, (tree_2012 / path).read_bytes()).error_nodes <= original, path
    left = kvmlint("check", "--select", "KVM001", str(tree_2012))
    assert "asks a narrower question" not in left.stdout  # every proposal was applied


def test_a_rewritten_condition_past_80_columns_is_wrapped_like_qemu_code():
    line = "    if (!env->halted || qemu_cpu_has_work(env) || kvm_async_interrupts_enabled()) {\n"
    assert wrap_condition(line) == (
        "    if (!env->halted || qemu_cpu_has_work(env) ||\n"
        "        kvm_async_interrupts_enabled()) {\n"
    )
    short = "    if (kvm_irqfds_enabled()) {\n"
    assert wrap_condition(short) == short


def test_diff_writes_nothing_and_the_diff_applies(tree_2012):
    before = digests(tree_2012)
    shown = kvmlint("fix", "--diff", str(tree_2012))
    assert digests(tree_2012) == before
    assert "+++ b/target-i386/kvm_i386.h" in shown.stdout
    subprocess.run(["git", "init", "-q"], cwd=tree_2012, check=True)
    applied = subprocess.run(["git", "apply", "--check", "-"], input=shown.stdout, text=True, cwd=tree_2012, capture_output=True)
    assert applied.returncode == 0, applied.stderr


def test_format_patch_writes_a_series_that_applies_in_order(tree_2012, tmp_path):
    from test_workflow import git

    git(tree_2012, "init", "-q")
    git(tree_2012, "add", "-A")
    git(tree_2012, "commit", "-q", "-m", "Initial import")
    expected = shutil.copytree(tree_2012, tmp_path / "expected")
    series = tmp_path / "series"
    kvmlint("fix", "--format-patch", str(series), str(tree_2012))
    patches = sorted(series.glob("0[0-9][0-9][1-9]-*.patch"))
    assert len(patches) >= 5
    first = patches[0].read_text()
    assert "Subject: [PATCH 1/" in first and "] kvm: " in first and "Signed-off-by" not in first
    message = first.split("\n\n", 1)[1].split("\n---\n", 1)[0]
    assert max(len(line) for line in message.splitlines()) <= 72
    kvmlint("fix", str(expected))
    for patch in patches:
        subprocess.run(["git", "apply", str(patch)], cwd=tree_2012, check=True)
    def tracked(root):
        return {k: v for k, v in digests(root).items() if not k.startswith(".git/")}

    assert tracked(tree_2012) == tracked(expected)


def current_tree_with_x86_helper(tmp_path) -> Path:
    tree = Path(shutil.copytree(FIXTURES / "qemu-current", tmp_path / "qemu"))
    helper = "bool kvm_pit_reinject_allowed(void)\n{\n    return kvm_irqchip_is_split();\n}\n"
    (tree / "accel/kvm/kvm-all.c").write_text((tree / "accel/kvm/kvm-all.c").read_text() + "\n" + helper)
    (tree / "accel/stubs/kvm-stub.c").write_text(
        (tree / "accel/stubs/kvm-stub.c").read_text() + "\nbool kvm_pit_reinject_allowed(void)\n{\n    return false;\n}\n"
    )
    header = tree / "include/system/kvm.h"
    header.write_text(header.read_text().replace("#endif /* QEMU_KVM_H */", "bool kvm_pit_reinject_allowed(void);\n\n#endif /* QEMU_KVM_H */"))
    pc = tree / "hw/i386/pc.c"
    pc.write_text(pc.read_text() + "\nstatic bool pc_pit_reinject(void)\n{\n    return kvm_pit_reinject_allowed();\n}\n")
    return tree


def test_move_in_the_current_layout_uses_the_existing_header(tmp_path):
    tree = current_tree_with_x86_helper(tmp_path)
    done = kvmlint("fix", "--rule", "KVM002", str(tree))
    assert done.returncode == 0, done.stderr + done.stdout
    own_header = (tree / "target/i386/kvm/kvm_i386.h").read_text()
    # The header's own style: the prototype with KVM, a static inline stub without.
    with_kvm, without_kvm = own_header.split("#else", 1)
    assert "bool kvm_pit_reinject_allowed(void);\n" in with_kvm
    assert "static inline bool kvm_pit_reinject_allowed(void)\n{\n    return false;\n}\n#endif" in without_kvm
    assert "kvm_pit_reinject_allowed" not in (tree / "include/system/kvm.h").read_text()
    assert "kvm_pit_reinject_allowed" not in (tree / "accel/stubs/kvm-stub.c").read_text()
    assert "kvm_pit_reinject_allowed" in (tree / "target/i386/kvm/kvm.c").read_text()
    assert not (tree / "target/i386/kvm/kvm-stub.c").exists()


@pytest.mark.parametrize("meson_names_the_stub", [True, False])
def test_move_in_the_current_layout_creates_the_stub_and_its_meson_line(tmp_path, meson_names_the_stub):
    tree = current_tree_with_x86_helper(tmp_path)
    own_header = tree / "target/i386/kvm/kvm_i386.h"
    own_header.write_text("#ifndef QEMU_KVM_I386_H\n#define QEMU_KVM_I386_H\n\nbool kvm_has_smm(void);\n\n#endif\n")
    meson = tree / "target/i386/kvm/meson.build"
    if not meson_names_the_stub:
        meson.write_text(meson.read_text().replace("i386_system_ss.add(when: 'CONFIG_KVM', if_false: files('kvm-stub.c'))\n", ""))
    done = kvmlint("fix", "--rule", "KVM002", str(tree))
    assert done.returncode == 0, done.stderr + done.stdout
    assert own_header.read_text().endswith("bool kvm_has_smm(void);\n\nbool kvm_pit_reinject_allowed(void);\n\n#endif\n")
    assert "return false;" in (tree / "target/i386/kvm/kvm-stub.c").read_text()
    # Built exactly when KVM is not, by the source set that holds the KVM sources.
    assert meson.read_text().count("i386_system_ss.add(when: 'CONFIG_KVM', if_false: files('kvm-stub.c'))") == 1


def test_a_header_with_kvm_and_no_kvm_branches_gets_a_static_inline_stub(tree_2012):
    # In the style of kvm_ppc.h: prototypes under CONFIG_KVM, static inline stubs otherwise.
    (tree_2012 / "target-i386/kvm_i386.h").write_text(
        "#ifndef __KVM_I386_H__\n#define __KVM_I386_H__\n\n"
        "#ifdef CONFIG_KVM\nint kvm_x86_other(void);\n#else\n"
        "static inline int kvm_x86_other(void)\n{\n    return 0;\n}\n#endif\n\n#endif\n"
    )
    done = kvmlint("fix", "--rule", "irq0-override", str(tree_2012))
    assert done.returncode == 0, done.stderr
    header = (tree_2012 / "target-i386/kvm_i386.h").read_text()
    assert "int kvm_x86_other(void);\nbool kvm_allows_irq0_override(void);\n#else\n" in header
    assert "static inline bool kvm_allows_irq0_override(void)\n{\n    return 1;\n}\n#endif" in header
    assert not (tree_2012 / "target-i386/kvm-stub.c").exists()
    assert "kvm-stub" not in (tree_2012 / "target-i386/Makefile.objs").read_text()
    assert "kvm_allows_irq0_override" not in (tree_2012 / "kvm-stub.c").read_text()
