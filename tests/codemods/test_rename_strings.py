"""KVM003's rename is not safe while a string literal in C names the function.

The compiler and the linker read names inside strings that no token spells:
`__attribute__((alias("kvm_irqchip_set_irq")))`, an asm label
(`int f(void) asm("kvm_irqchip_set_irq")`), a symbol in inline assembly
(`asm("call kvm_irqchip_set_irq")`).  A rename that left them would not
build or link, so it is offered as unsafe, and the finding names the string's
file and line.  A string in code that is never compiled, or one naming a
longer name, is no obstacle, and `#pragma weak` spells the name as a token,
so the rename changes it with the rest.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

gate = pytest.importorskip("test_build_gate")  # skips without gcc
from test_rename_safety import NEW, OLD, append, builds, kvmlint, rename_finding, snapshot  # noqa: E402


@pytest.fixture
def tree(tmp_path) -> Path:
    return Path(shutil.copytree(gate.FIXTURE, tmp_path / "qemu"))


def line_of_string(path: Path) -> int:
    """The line of the first string literal that spells OLD."""
    lines = path.read_text().split("\n")
    return next(number for number, text in enumerate(lines, 1) if f'"{OLD}' in text or f' {OLD}"' in text)


STRINGS = {
    "an alias": "\nint kvm_irqchip_set_irq_compat(KVMState *s, int irq, int level)\n"
                f'    __attribute__((alias("{OLD}")));\n',
    "an asm label": f'\nint kvm_irqchip_set_irq_entry(KVMState *s, int irq, int level) asm("{OLD}");\n',
    "inline assembly": f'\nvoid kvm_irqchip_trampoline(void);\nvoid kvm_irqchip_trampoline(void)\n{{\n'
                       f'    asm volatile("jmp {OLD}");\n}}\n',
}


@pytest.mark.parametrize("added", STRINGS.values(), ids=STRINGS.keys())
def test_a_string_naming_the_function_makes_the_rename_unsafe(tree, added):
    append(tree / "kvm-all.c", added)
    line = line_of_string(tree / "kvm-all.c")
    finding = rename_finding(tree)
    assert finding["fix"]["applicability"] == "unsafe"
    assert f"not safe: kvm-all.c:{line}: a string here names {OLD}" in finding["message"], finding["message"]
    before = snapshot(tree)
    done = kvmlint("fix", "--no-cache", "--select", "KVM003", str(tree))
    assert done.returncode == 1 and snapshot(tree) == before
    assert "the fix is unsafe; --unsafe-fixes applies it" in done.stderr


def test_strings_never_compiled_or_naming_a_longer_name_leave_the_rename_safe_and_pragma_weak_is_renamed(tree, tmp_path):
    append(tree / "kvm-all.c", f'\n#if 0\nint kvm_irqchip_old(void) __attribute__((alias("{OLD}")));\n#endif\n'
                               f'static const char kvm_irqchip_line_name[] = "{OLD}_line";\n'
                               f"const char *kvm_irqchip_name(void);\n"
                               f"const char *kvm_irqchip_name(void)\n{{\n    return kvm_irqchip_line_name;\n}}\n"
                               f"int kvm_irqchip_weak_set_irq(KVMState *s, int irq, int level);\n"
                               f"#pragma weak kvm_irqchip_weak_set_irq = {OLD}\n")
    finding = rename_finding(tree)
    assert finding["fix"]["applicability"] == "safe", finding["message"]
    done = kvmlint("fix", "--no-cache", "--select", "KVM003", str(tree))
    assert f"fixed: kvm: Rename {OLD}() to {NEW}()" in done.stdout, done.stderr
    assert f"#pragma weak kvm_irqchip_weak_set_irq = {NEW}\n" in (tree / "kvm-all.c").read_text()
    builds(tree, tmp_path / "out")
