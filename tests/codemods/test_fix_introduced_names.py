"""KVM001's fix never declares a name the tree already declares.

Introducing a predicate adds a flag (`bool kvm_irqfds_allowed`, its `extern`)
and a macro (`kvm_irqfds_enabled()`).  Where the tree already declares one of
those names, a second declaration would not compile (`conflicting types`,
a redefinition).  A flag the tree declares as QEMU does is reused; any other
declaration of either name means the fix is not made, and the reason names
the place.  Each case is the build-gate tree with one thing added, fixed
with `kvmlint fix --select KVM001`, then built with gcc for every
configuration.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

gate = pytest.importorskip("test_build_gate")  # skips without gcc

FLAG, PREDICATE = "kvm_irqfds_allowed", "kvm_irqfds_enabled"
PC_USE = "int pc_irqfds(void);\nint pc_irqfds(void)\n{\n    return kvm_irqfds_allowed;\n}\n"


@pytest.fixture
def tree(tmp_path) -> Path:
    return Path(shutil.copytree(gate.FIXTURE, tmp_path / "qemu"))


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def insert_after(path: Path, anchor: str, text: str) -> None:
    content = path.read_text()
    assert anchor in content, f"{path}: {anchor!r}"
    path.write_text(content.replace(anchor, anchor + text, 1))


def fix(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kvmlint", "fix", "--no-cache", "--select", "KVM001", str(tree)],
                          capture_output=True, text=True, timeout=300)


def builds(tree: Path, out: Path) -> None:
    for config in gate.CONFIGS:
        gate.build(tree, config, out / config.label)  # raises BuildError with gcc's output


def assert_not_introduced(tree: Path, tmp_path: Path, reason: str) -> None:
    builds(tree, tmp_path / "before")
    done = fix(tree)
    assert f"not fixed: kvm-all.c:91: KVM001 kvm_irqchip_in_kernel: {reason}" in done.stderr, done.stderr
    assert "fixed: kvm: Decouple 'async interrupt delivery' from 'kernel irqchip'" in done.stdout  # the others are
    assert PREDICATE not in (tree / "kvm.h").read_text()
    builds(tree, tmp_path / "after")


def test_a_static_of_the_flags_name_in_a_file_that_includes_the_header_stops_that_predicate(tree, tmp_path):
    append(tree / "hw/pc.c", "\nstatic int kvm_irqfds_allowed = 3;\n" + PC_USE)
    assert_not_introduced(tree, tmp_path, f"hw/pc.c:37: {FLAG} is already declared here (variable); "
                                          f"introducing {PREDICATE}() would declare it again: introduce it by hand")


def test_an_extern_of_another_type_in_a_header_stops_that_predicate(tree, tmp_path):
    insert_after(tree / "kvm.h", "extern bool kvm_kernel_irqchip;\n", "extern int kvm_irqfds_allowed;\n")
    assert_not_introduced(tree, tmp_path, f"kvm.h:19: {FLAG} is already declared here (extern)")


def test_a_macro_of_the_flags_name_stops_that_predicate(tree, tmp_path):
    insert_after(tree / "kvm.h", "extern bool kvm_kernel_irqchip;\n", "#define kvm_irqfds_allowed 1\n")
    assert_not_introduced(tree, tmp_path, f"kvm.h:19: {FLAG} is already declared here (macro)")


def test_a_variable_of_the_predicates_name_stops_that_predicate(tree, tmp_path):
    insert_after(tree / "kvm.h", "extern bool kvm_kernel_irqchip;\n", "extern bool kvm_irqfds_enabled;\n")
    builds(tree, tmp_path / "before")
    done = fix(tree)
    assert (f"not fixed: kvm-all.c:91: KVM001 kvm_irqchip_in_kernel: kvm.h:19: {PREDICATE} is already declared "
            f"here (extern), not as a predicate: introduce {PREDICATE}() by hand") in done.stderr, done.stderr
    builds(tree, tmp_path / "after")


def test_a_flag_the_tree_declares_as_qemu_does_is_reused_not_declared_again(tree, tmp_path):
    insert_after(tree / "kvm.h", "extern bool kvm_kernel_irqchip;\n", "extern bool kvm_irqfds_allowed;\n")
    for source in ("kvm-all.c", "kvm-stub.c"):
        insert_after(tree / source, "bool kvm_kernel_irqchip;\n", "bool kvm_irqfds_allowed;\n")
    done = fix(tree)
    assert "fixed: kvm: Decouple 'irqfds usable' from 'kernel irqchip'" in done.stdout, done.stderr
    assert f"#define {PREDICATE}() ({FLAG})" in (tree / "kvm.h").read_text()
    assert (tree / "kvm.h").read_text().count(f"extern bool {FLAG};") == 1
    for source in ("kvm-all.c", "kvm-stub.c"):
        assert (tree / source).read_text().count(f"\nbool {FLAG};") == 1, source
    builds(tree, tmp_path / "after")
