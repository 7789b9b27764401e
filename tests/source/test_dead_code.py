"""Code the preprocessor never compiles, and names a macro turns into something else, are not uses.

`#if 0` (also its `#elif 0` and nested forms, and the `#else` of `#if 1`) is
parked code; `#x` in a macro makes a string; a C file's own
`#define kvm_irqchip_in_kernel()` means that macro, not the KVM API.  None of
them is a proxy use (KVM001), a caller (KVM002) or a definition (KVM002,
KVM003).  Conditions the literals do not decide (`#if defined(NEVER)`,
`#ifdef X`, `#if 1`) are compiled code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import lay_out


def kvmlint(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kvmlint", *args], capture_output=True, text=True)


def findings(tree: Path, code: str) -> list[dict]:
    result = kvmlint("check", "--no-cache", "--format", "json", "--select", code, str(tree))
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)["findings"]


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def proxy_in(name: str) -> str:
    return f"static int {name}(void)\n{{\n    return kvm_irqchip_in_kernel() ? 1 : 0;\n}}\n"


CONDITIONAL_USES = (
    "\n#if 0\n" + proxy_in("dead_if_0") + "#else\n" + proxy_in("live_else_of_0") + "#endif\n"
    "\n#if 1\n" + proxy_in("live_if_1") + "#else\n" + proxy_in("dead_else_of_1") + "#endif\n"
    "\n#if defined(NEVER)\n" + proxy_in("live_if_defined_never") + "#elif 0\n" + proxy_in("dead_elif_0")
    + "#elif 0 && defined(X)\n" + proxy_in("dead_elif_0_and_x") + "#else\n" + proxy_in("live_else_of_elifs") + "#endif\n"
    "\n#ifdef CONFIG_NEVER_SET\n" + proxy_in("live_ifdef") + "#if 0\n" + proxy_in("dead_nested_in_ifdef") + "#endif\n#endif\n"
    "\n#if 1\n#if (1 - 1)\n" + proxy_in("dead_nested_in_if_1") + "#endif\n#endif\n"
    "\n#if 0 /* parked */\n#define DEAD_MACRO() (kvm_irqchip_in_kernel() ? 1 : 0)\n#endif\n"
    "#define LIVE_MACRO() (kvm_irqchip_in_kernel() ? 1 : 0)\n"
    "\n/* kvm_irqchip_in_kernel() in a comment */\n"
)


def test_kvm001_skips_code_that_is_never_compiled(tmp_path):
    tree = lay_out(tmp_path / "qemu", "qemu-2012")
    append(tree / "cpus.c", CONDITIONAL_USES)
    reported = {f["function"] for f in findings(tree, "KVM001") if f["path"] == "cpus.c"}
    assert reported == {
        "cpu_thread_is_idle",  # the fixture's own use
        "live_else_of_0", "live_if_1", "live_if_defined_never", "live_else_of_elifs", "live_ifdef", "LIVE_MACRO",
    }


STRINGIZED = (
    "\n#define NAME_OF(x) #x\n"
    "static const char *proxy_name(void)\n{\n    return NAME_OF(kvm_irqchip_in_kernel());\n}\n"
    # the macro's own parameter, stringized and called: not the API
    "#define TRACE_CALL(kvm_irqchip_in_kernel) trace(#kvm_irqchip_in_kernel, kvm_irqchip_in_kernel())\n"
    "#define PASTED(suffix) kvm_irqchip_in_kernel ## suffix()\n"
)


def test_kvm001_skips_stringized_and_pasted_names(tmp_path):
    tree = lay_out(tmp_path / "qemu", "qemu-2012")
    append(tree / "cpus.c", STRINGIZED + proxy_in("still_a_use"))
    reported = {f["function"] for f in findings(tree, "KVM001") if f["path"] == "cpus.c"}
    assert reported == {"cpu_thread_is_idle", "still_a_use"}


def test_kvm001_skips_uses_of_a_files_own_macro_of_the_name(tmp_path):
    tree = lay_out(tmp_path / "qemu", "qemu-2012")
    msi = tree / "hw/msi.c"  # common code, with a proxy use of the API at line 16
    append(msi, "\n#ifndef CONFIG_KVM\n#define kvm_irqchip_in_kernel() (0)\n#endif\n" + proxy_in("not_taken_over")
           + "\n#undef kvm_irqchip_in_kernel\n#define kvm_irqchip_in_kernel() (0)\n" + proxy_in("own_macro"))
    reported = {(f["line"], f["function"]) for f in findings(tree, "KVM001") if f["path"] == "hw/msi.c"}
    assert {function for _, function in reported} == {"msi_notify", "not_taken_over"}, reported


def test_kvm003_ignores_a_definition_that_is_never_compiled(tmp_path):
    tree = lay_out(tmp_path / "qemu", "qemu-2012")
    append(tree / "kvm-all.c", "\n#if 0\nint kvm_irqchip_set_irq_line(KVMState *s, int irq)\n{\n"
                               "    return kvm_irqchip_set_irq(s, irq, 1);\n}\n#endif\n")
    assert {f["symbol"] for f in findings(tree, "KVM003")} == {"kvm_irqchip_set_irq"}


def test_kvm002_ignores_dead_definitions_and_dead_callers(tmp_path):
    tree = lay_out(tmp_path / "qemu", "qemu-2012")
    # A dead x86 helper in the common files is no helper at all.
    append(tree / "kvm-all.c", "\n#if 0\nint kvm_has_pit_state2(void)\n{\n    return 1;\n}\n#endif\n")
    append(tree / "hw/pc.c", "\nint pc_pit_state2(void);\nint pc_pit_state2(void)\n{\n    return kvm_has_pit_state2();\n}\n")
    # A call in parked common code does not make kvm_allows_irq0_override() a common helper.
    append(tree / "cpus.c", "\n#if 0\nstatic int irq0(void)\n{\n    return kvm_allows_irq0_override();\n}\n#endif\n")
    assert {f["symbol"] for f in findings(tree, "KVM002")} == {"kvm_allows_irq0_override"}
