"""Build files cannot crash scope: long and deeply nested build files still give an answer.

Each case plants one shape in a copy of a fixture tree and runs `kvmlint scope`
and `kvmlint check` as a user would, in a subprocess under an address-space and
CPU-time limit.  The run ends with exit status 0 (1 for findings) and no
traceback, with either the right scope (long chains are read whole) or a
`kvmlint: warning: FILE: ...` line naming the bound that was hit (deep nesting),
past which the scope is the conservative one.  The sizes are those that ended
the run with a RecursionError, or took more than the CPU limit (quadratic or
worse), before the readers were bounded.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import FIXTURES

MEMORY_BYTES = 1 << 30
CPU_SECONDS = 30


def run_kvmlint(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
        resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))

    return subprocess.run([sys.executable, "-m", "kvmlint", *args], cwd=cwd, capture_output=True, text=True,
                          errors="replace", preexec_fn=limit, timeout=4 * CPU_SECONDS, stdin=subprocess.DEVNULL)


def _append(path: Path, text: str) -> None:
    with open(path, "a") as stream:
        stream.write(text)


def _built_when(tree: Path, symbol: str) -> None:
    """hw/deep.c built when CONFIG_<symbol> is enabled (qemu-current)."""
    _append(tree / "hw" / "meson.build", f"system_ss.add(when: 'CONFIG_{symbol}', if_true: files('deep.c'))\n")


def _kconfig_deep(tree: Path, depends: str) -> None:
    _append(tree / "hw" / "Kconfig", f"config DEEP\n    bool\n    default y\n    depends on {depends}\n")
    _built_when(tree, "DEEP")


def kconfig_long_and(tree: Path) -> None:
    symbols = [f"LONG{n}" for n in range(800)]
    _append(tree / "hw" / "Kconfig", "".join(f"config {symbol}\n    bool\n    default y\n" for symbol in symbols))
    _kconfig_deep(tree, " && ".join(symbols + ["ARM"]))


def kconfig_chain(tree: Path) -> None:
    """Each link depends on the one before, declared from the last, so each turns on in a round
    of its own; DEEP depends on them all, and on LOOP0, in a loop of `select`s."""
    size = 10_000
    _append(tree / "hw" / "Kconfig", "".join(f"config LINK{n}\n    bool\n    default y\n    depends on LINK{n - 1}\n"
                                             for n in range(size - 1, 0, -1)) + "config LINK0\n    bool\n    default y\n"
            + "".join(f"config LOOP{n}\n    bool\n    select LOOP{(n + 1) % 100}\n" for n in range(100))
            + "config ARM\n    select LOOP1\n")
    _kconfig_deep(tree, " && ".join([f"LINK{n}" for n in range(size)] + ["LOOP0"]))


def make_long_land(tree: Path) -> None:
    operands = ",".join([f"$(CONFIG_OPERAND{n})" for n in range(3_000)] + ["$(CONFIG_HPET)"])
    _append(tree / "hw" / "Makefile.objs", f"hw-obj-$(call land,{operands}) += deep.o\n")


def make_deep_calls(tree: Path) -> None:
    _append(tree / "hw" / "Makefile.objs", "hw-obj-" + "$(call land," * 3_000 + "$(CONFIG_HPET)" + ")" * 3_000
            + " += deep.o\n")


def make_list_chain(tree: Path) -> None:
    """Lists each pulled into the next, one into itself, two into each other."""
    size = 3_000
    _append(tree / "Makefile.objs", "".join(f"link{n}-y += $(link{n + 1}-y)\n" for n in range(size))
            + f"link{size}-y += $(link{size}-y) $(back-y) hw/deep.o\nback-y += $(link{size}-y)\n"
            + "common-obj-$(CONFIG_HPET) += $(link0-y)\n")


def make_deep_ifdefs(tree: Path) -> None:
    depth, entries = 100_000, 20_000
    _append(tree / "hw" / "Makefile.objs", "ifdef CONFIG_HPET\n" + "ifdef CONFIG_PCI\n" * depth
            + "".join(f"hw-obj-y += deep{n}.o\n" for n in range(entries)) + "endif\n" * (depth + 1))
    _append(tree / "hw" / "Makefile.objs", "ifdef CONFIG_HPET\nhw-obj-y += deep.o\nendif\n")


def make_include_ladder(tree: Path) -> None:
    """Each config includes the next two: 2**32 readings down to the depth bound, if each were read again."""
    configs = tree / "default-configs"
    for n in range(40):
        (configs / f"step{n}.mak").write_text(f"include step{n + 1}.mak\ninclude step{n + 2}.mak\nCONFIG_STEP{n}=y\n")
    _append(configs / "pci.mak", "include step0.mak\n")


def make_addprefix_spaces(tree: Path) -> None:
    _append(tree / "hw" / "i386" / "Makefile.objs", "obj-y := $(addprefix " + " " * 5_000 + "x\n")


def make_long_list_name(tree: Path) -> None:
    _append(tree / "Makefile.objs", "a-$()" * 100_000 + "x = y\n")


def meson_set_chain(tree: Path) -> None:
    size = 600
    _append(tree / "hw" / "meson.build", "".join(f"link{n}_ss.add_all(link{n + 1}_ss)\n" for n in range(size))
            + f"link{size}_ss.add(files('deep.c'))\nspecific_ss.add_all(when: 'CONFIG_XICS', if_true: link0_ss)\n")


def meson_deep_ifs(tree: Path) -> None:
    depth, entries = 50_000, 20_000
    _append(tree / "hw" / "meson.build", "if config_all_devices.has_key('CONFIG_XICS')\n" + "if 'CONFIG_X' in y\n" * depth
            + "".join(f"system_ss.add(files('deep{n}.c'))\n" for n in range(entries))
            + "system_ss.add(files('deep.c'))\n" + "endif\n" * (depth + 1))


def meson_accelerator_brackets(tree: Path) -> None:
    _append(tree / "meson.build", "accelerator_targets += {" + "'CONFIG_KVM': [" * 200_000 + "\n")


# name: (fixture, plant, file whose scope is asked, its expected label, expected warning or None)
CASES: dict[str, tuple[str, Callable[[Path], None], str, str, str | None]] = {
    "kconfig-800-and": ("qemu-current", kconfig_long_and, "hw/deep.c", "arm", None),
    "kconfig-3000-parentheses": (
        "qemu-current", lambda tree: _kconfig_deep(tree, "(" * 3_000 + "ARM" + ")" * 3_000), "hw/deep.c", "common",
        "hw/Kconfig: config DEEP: `depends on` nested deeper than 64 levels of parentheses and `!`; taken as true"),
    "kconfig-3000-not": (
        "qemu-current", lambda tree: _kconfig_deep(tree, "!" * 3_000 + "ARM"), "hw/deep.c", "common",
        "hw/Kconfig: config DEEP: `depends on` nested deeper than 64 levels of parentheses and `!`; taken as true"),
    "kconfig-chain": ("qemu-current", kconfig_chain, "hw/deep.c", "arm", None),
    "make-land-3000-operands": ("qemu-2012", make_long_land, "hw/deep.c", "x86", None),
    "make-3000-nested-calls": (
        "qemu-2012", make_deep_calls, "hw/deep.c", "common",
        "hw/Makefile.objs: hw-obj-$(call ...): calls nested deeper than 64 levels; the condition not applied"),
    "make-list-chain": ("qemu-2012", make_list_chain, "hw/deep.c", "x86", None),
    "make-deep-ifdefs": (
        "qemu-2012", make_deep_ifdefs, "hw/deep.c", "x86",
        "hw/Makefile.objs: ifdef/ifeq blocks nested deeper than 64 levels; the deeper blocks' conditions not applied"),
    "make-include-ladder": (
        "qemu-2012", make_include_ladder, "hw/hpet.c", "x86",
        "default-configs/step29.mak: `include` nested deeper than 32 levels; step30.mak and what it includes not read"),
    "make-addprefix-spaces": ("qemu-2012", make_addprefix_spaces, "hw/pc.c", "x86", None),
    "make-long-list-name": ("qemu-2012", make_long_list_name, "hw/hpet.c", "x86", None),
    "meson-set-chain": ("qemu-current", meson_set_chain, "hw/deep.c", "ppc", None),
    "meson-deep-ifs": (
        "qemu-current", meson_deep_ifs, "hw/deep.c", "ppc",
        "hw/meson.build: if/foreach nested deeper than 64 levels (counting those around its subdir()); "
        "the deeper blocks' conditions not applied"),
    "meson-accelerator-brackets": ("qemu-current", meson_accelerator_brackets, "accel/kvm/kvm-all.c", "common", None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_build_files_give_a_scope_or_a_warning(tmp_path, case):
    fixture, plant, path, label, warning = CASES[case]
    tree = tmp_path / "tree"
    shutil.copytree(FIXTURES / fixture, tree)
    plant(tree)
    (tree / path).touch()
    for command in (["scope", "."], ["check", "."]):
        result = run_kvmlint(*command, cwd=tree)
        assert result.returncode in ((0,) if command[0] == "scope" else (0, 1)), (command, result.stderr[-2000:])
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr[-2000:]
        warnings = [line for line in result.stderr.splitlines() if line.startswith("kvmlint: warning: ")]
        if warning is None:
            assert not warnings, (command, warnings)
        else:
            assert f"kvmlint: warning: {warning}" in warnings, (command, warnings)
    scopes = [line for line in run_kvmlint("scope", path, cwd=tree).stdout.splitlines() if line.startswith(path + ": ")]
    assert scopes and scopes[0].split(": ")[1] == label, scopes


def test_a_file_a_thousand_folders_down_has_a_scope(tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(FIXTURES / "qemu-current", tree)
    folders = ["hw"]
    for _ in range(1_100):  # os.makedirs and shutil.rmtree recurse per folder
        folders.append(folders[-1] + "/a")
        os.mkdir(tree / folders[-1])
    path = f"{folders[-1]}/deep.h"
    (tree / path).write_text("int deep;\n")
    try:
        for command in ("scope", "check"):
            result = run_kvmlint(command, path, cwd=tree)
            assert result.returncode == 0, result.stderr[-2000:]
            assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr[-2000:]
        assert run_kvmlint("scope", path, cwd=tree).stdout.startswith(f"{path}: common: header; generic path")
    finally:
        (tree / path).unlink()
        for folder in reversed(folders[1:]):
            os.rmdir(tree / folder)


def test_the_fuzzer_writes_long_and_deep_build_files(tmp_path):
    """bench/fuzz.py's build-file mutation: these 16 cases include an include ladder and
    land/lor calls of 1,000 and 10,000 operands, which crashed or hung the readers before."""
    fuzz = Path(__file__).resolve().parents[2] / "bench" / "fuzz.py"
    result = subprocess.run(
        [sys.executable, str(fuzz), "--mutation", "long_build_file", "--cases", "16", "--seed", "3", "--verbose",
         "--keep", str(tmp_path)], capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0 and " 0 failed" in result.stdout, result.stdout[-3000:] + result.stderr[-2000:]
    assert {"kconfig", "make", "meson", "device"} <= {line.split(" after: ")[-1].split()[0]
                                                      for line in result.stdout.splitlines() if " after: " in line}



def test_a_tree_a_thousand_folders_deep_is_walked_whole(tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(FIXTURES / "qemu-2012", tree)
    folders = ["hw"]
    for _ in range(1_100):  # os.makedirs and shutil.rmtree recurse per folder
        folders.append(folders[-1] + "/a")
        os.mkdir(tree / folders[-1])
    path = f"{folders[-1]}/deep.c"
    (tree / path).write_text("int deep(void) { return kvm_irqchip_in_kernel(); }\n")
    try:
        for command in (["check", "--no-cache", "."], ["fix", "--diff", "."]):
            result = run_kvmlint(*command, cwd=tree)
            assert result.returncode in (0, 1), result.stderr[-2000:]
            assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr[-2000:]
        assert "deep.c" in run_kvmlint("check", "--no-cache", "--format", "concise", ".", cwd=tree).stdout
    finally:
        (tree / path).unlink()
        for folder in reversed(folders[1:]):
            os.rmdir(tree / folder)
