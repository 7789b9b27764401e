"""The retype_bool code-mod (KVM004's fix): `int` to `bool` in a predicate's declaration, definition and
stubs, byte for byte, once; unsafe ones only with --unsafe-fixes; after a KVM002 move in the same run;
and the result compiles (the build-gate fixture)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import lay_out
from tests.validation.test_build_check import changed_files, configured_tree, needs_gcc, snapshot

IRQ0 = "kvm_allows_irq0_override"
PLACES_2012 = ("target-i386/kvm_i386.h", "target-i386/kvm.c", "target-i386/kvm-stub.c")


def kvmlint(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kvmlint", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def codes(tree: Path) -> list[str]:
    return [f["code"] for f in json.loads(kvmlint("check", "--format", "json", str(tree)).stdout)["findings"]]


def retyped(before: dict[str, bytes], symbol: str, paths) -> dict[str, bytes]:
    """What the fix must leave: `int symbol(` made `bool symbol(` in those files, nothing else anywhere."""
    after = dict(before)
    for path in paths:
        assert before[path].count(f"int {symbol}(".encode()) == 1, path
        after[path] = before[path].replace(f"int {symbol}(".encode(), f"bool {symbol}(".encode())
    return after


def test_2012_moved_helper_is_retyped_in_declaration_definition_and_stub(tmp_path):
    tree = lay_out(tmp_path / "qemu", "qemu-2012", "int-predicate-2012")
    before = snapshot(tree)
    done = kvmlint("fix", "--select", "KVM004", str(tree))
    assert done.returncode == 0, done.stderr
    assert "fixed: kvm: Make kvm_allows_irq0_override() return bool" in done.stdout
    assert snapshot(tree) == retyped(before, IRQ0, PLACES_2012)
    assert "KVM004" not in codes(tree)
    again = kvmlint("fix", "--select", "KVM004", str(tree))
    assert again.returncode == 0 and "0 file(s) written" in again.stdout


def test_current_shape_is_retyped(tmp_path):
    tree = lay_out(tmp_path / "qemu", "qemu-current", "int-predicate-current")
    before = snapshot(tree)
    done = kvmlint("fix", "--select", "int-predicate", str(tree))
    assert done.returncode == 0, done.stderr
    places = ("target/i386/kvm/kvm_i386.h", "target/i386/kvm/kvm.c", "target/i386/kvm/kvm-stub.c")
    assert snapshot(tree) == retyped(before, "kvm_has_exception_payload", places)


def test_a_static_inline_stub_in_the_header_is_retyped_too(tmp_path):
    tree = lay_out(tmp_path / "qemu", "qemu-2012", "int-predicate-2012")
    header = tree / "target-i386/kvm_i386.h"
    header.write_text(header.read_text().replace(
        "int kvm_allows_irq0_override(void);\n",
        "#ifdef CONFIG_KVM\nint kvm_allows_irq0_override(void);\n#else\n"
        "static inline int kvm_allows_irq0_override(void)\n{\n    return 1;\n}\n#endif\n",
    ))
    (tree / "target-i386/kvm-stub.c").unlink()
    done = kvmlint("fix", "--select", "KVM004", str(tree))
    assert done.returncode == 0, done.stderr
    text = header.read_text()
    assert "\nbool kvm_allows_irq0_override(void);\n" in text
    assert "static inline bool kvm_allows_irq0_override(void)\n{\n    return 1;\n}" in text
    assert "int kvm_allows" not in text


def test_an_unsafe_retype_waits_for_unsafe_fixes(tmp_path):
    tree = lay_out(tmp_path / "qemu", "qemu-2012", "int-predicate-2012")
    with open(tree / "hw/pc.c", "a") as source:
        source.write("\nstatic void bochs_bios_init(void)\n{\n    fw_cfg_add_i32(0, 1, kvm_allows_irq0_override());\n}\n")
    before = snapshot(tree)
    safe = kvmlint("fix", "--select", "KVM004", str(tree))
    assert safe.returncode == 1
    assert "not fixed: target-i386/kvm_i386.h:12: KVM004 kvm_allows_irq0_override: the fix is unsafe" in safe.stderr
    assert snapshot(tree) == before
    diff = kvmlint("fix", "--unsafe-fixes", "--select", "KVM004", "--diff", str(tree))
    assert diff.stdout.count("+bool kvm_allows_irq0_override(void)") == 3, diff.stdout
    unsafe = kvmlint("fix", "--unsafe-fixes", "--select", "KVM004", str(tree))
    assert unsafe.returncode == 0, unsafe.stderr
    assert snapshot(tree) == retyped(before, IRQ0, PLACES_2012)


def test_a_move_and_its_retype_in_one_run_as_qemu_did(tmp_path):
    """QEMU's 1d31f66bbc moved kvm_allows_irq0_override() and fixed its return type together; the
    retype is KVM004's change set, right after the move, and nothing is left for a second run."""
    tree = lay_out(tmp_path / "qemu", "qemu-2012")
    done = kvmlint("fix", "--select", "KVM002", str(tree))
    assert done.returncode == 0, done.stderr
    assert done.stdout.index("fixed: kvm: Move kvm_allows_irq0_override() to target-i386") < \
        done.stdout.index("fixed: kvm: Make kvm_allows_irq0_override() return bool")
    for path in PLACES_2012:
        assert "bool kvm_allows_irq0_override(void)" in (tree / path).read_text(), path
    assert not {"KVM002", "KVM004"} & set(codes(tree))
    again = kvmlint("fix", "--select", "KVM002,KVM004", "--unsafe-fixes", str(tree))
    assert again.returncode == 0 and "0 file(s) written" in again.stdout, again.stdout


@needs_gcc
def test_the_retype_compiles_in_the_build_gate(tmp_path):
    """The build gate's hw/pc.c returns the value from an int function: unsafe, and it compiles."""
    tree = configured_tree(tmp_path)
    move = kvmlint("fix", "--select", "KVM002", str(tree), cwd=tree)  # the safe move; the retype is unsafe here
    assert "fixed: kvm: Move kvm_allows_irq0_override() to target-i386" in move.stdout, move.stderr
    assert "return bool" not in move.stdout
    assert codes(tree).count("KVM004") == 1
    done = kvmlint("fix", "--unsafe-fixes", "--select", "KVM004", "--build-check", "build", str(tree), cwd=tree)
    assert done.returncode == 0, done.stderr
    assert "fixed: kvm: Make kvm_allows_irq0_override() return bool" in done.stdout
    assert "0 rolled back" in done.stderr
    validated = kvmlint("validate-build", "build", *changed_files(tree), cwd=tree)
    assert validated.returncode == 0 and " 0 failed" in validated.stdout, validated.stdout
