"""KVM003's rename, offered as safe, leaves a tree that compiles (checked with gcc).

Each case is the build-gate tree (fixtures/build-gate, which really builds)
with one thing added; `kvmlint fix --select KVM003` runs on it, then the tree
is built.  Either the rename is applied everywhere the compiler reads the
name (excluded files, x-macro `.def`/`.inc` files, assembly) and the tree
builds, or it is not applied, the finding says why (naming file:line), and
the tree still builds as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

gate = pytest.importorskip("test_build_gate")  # skips without gcc

OLD, NEW = "kvm_irqchip_set_irq", "kvm_set_irq"
I386_KVM, I386_NO_KVM = gate.BuildConfig("i386", kvm=True), gate.BuildConfig("i386", kvm=False)
CALLER = "void pc_gsi_set_irq(int gsi, int level)\n{\n"  # hw/pc.c's caller of the old name


def kvmlint(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kvmlint", *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture
def tree(tmp_path) -> Path:
    return Path(shutil.copytree(gate.FIXTURE, tmp_path / "qemu"))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path}: {old!r}"
    path.write_text(text.replace(old, new, 1))


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def rename_finding(tree: Path) -> dict:
    result = kvmlint("check", "--no-cache", "--format", "json", "--select", "KVM003", str(tree))
    (finding,) = json.loads(result.stdout)["findings"]
    finding["text"] = " ".join([finding["message"], *finding["details"]])
    return finding


def builds(tree: Path, out: Path, *configs) -> None:
    for config in configs or (I386_KVM, I386_NO_KVM):
        gate.build(tree, config, out / config.label)  # raises BuildError with gcc's output


def snapshot(tree: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in tree.rglob("*") if p.is_file() and ".kvmlint_cache" not in p.parts}


def assert_renamed_and_builds(tree: Path, tmp_path: Path, *also: str) -> None:
    done = kvmlint("fix", "--no-cache", "--select", "KVM003", str(tree))
    assert f"fixed: kvm: Rename {OLD}() to {NEW}()" in done.stdout, done.stderr
    for path in ("kvm.h", "kvm-all.c", "kvm-stub.c", "hw/pc.c"):
        assert f"{NEW}(" in (tree / path).read_text(), path
    for path in also:
        assert NEW in (tree / path).read_text(), path
    builds(tree, tmp_path / "out")


def assert_not_renamed(tree: Path, tmp_path: Path, reason: str) -> None:
    """No fix: the finding names the conflict, `fix` changes nothing, and the tree builds as before."""
    finding = rename_finding(tree)
    assert finding["fix"] is None
    assert reason in finding["message"], finding["message"]
    before = snapshot(tree)
    done = kvmlint("fix", "--no-cache", "--select", "KVM003", str(tree))
    assert done.returncode == 1
    assert f"not fixed: kvm-all.c:34: KVM003 {OLD}: no automatic fix:" in done.stderr
    assert reason in done.stderr
    assert snapshot(tree) == before
    builds(tree, tmp_path / "out")


# --- item A1: the new name already declared where the rename would bring it -----------------

def test_a_local_of_the_new_name_around_a_caller(tree, tmp_path):
    edit(tree / "hw/pc.c", CALLER, CALLER + "    int kvm_set_irq = level;\n\n")
    edit(tree / "hw/pc.c", f"{OLD}(kvm_state, gsi, level);", f"{OLD}(kvm_state, gsi, kvm_set_irq);")
    assert_not_renamed(tree, tmp_path, "hw/pc.c:30: kvm_set_irq is a variable here, where a renamed use (line 35) would mean it")


def test_a_parameter_of_the_new_name_in_a_caller(tree, tmp_path):
    append(tree / "hw/pc.c", f"\nvoid pc_gsi_pulse(int gsi, int kvm_set_irq);\nvoid pc_gsi_pulse(int gsi, int kvm_set_irq)\n"
                             f"{{\n    {OLD}(kvm_state, gsi, kvm_set_irq);\n}}\n")
    assert_not_renamed(tree, tmp_path, "hw/pc.c:38: kvm_set_irq is a parameter here")


def test_a_file_scope_static_of_the_new_name(tree, tmp_path):
    # hw/msix.c includes kvm.h, where the renamed prototype would meet it; it calls nothing renamed.
    append(tree / "hw/msix.c", "\nstatic int kvm_set_irq;\n\nint msix_kvm_set_irq(void);\nint msix_kvm_set_irq(void)\n"
                               "{\n    return kvm_set_irq;\n}\n")
    assert_not_renamed(tree, tmp_path, "hw/msix.c:")
    assert "kvm_set_irq is already declared here (a variable)" in rename_finding(tree)["text"]


def test_an_enum_constant_of_the_new_name_in_a_header(tree, tmp_path):
    edit(tree / "hw/pc.h", "extern int no_hpet;", "enum { kvm_set_irq = 1 };\n\nextern int no_hpet;")
    assert_not_renamed(tree, tmp_path, "hw/pc.h:6: kvm_set_irq is already declared here (an enum constant)")


def test_a_typedef_of_the_new_name(tree, tmp_path):
    edit(tree / "qemu-common.h", "typedef struct MSIMessage {", "typedef int kvm_set_irq;\n\ntypedef struct MSIMessage {")
    assert_not_renamed(tree, tmp_path, "qemu-common.h:22: kvm_set_irq is already declared here (a typedef)")


@pytest.mark.parametrize("macro", ["#define kvm_set_irq(s, irq, level) pc_gsi_set_irq(irq, level)", "#define kvm_set_irq 1"],
                         ids=["function-like", "object-like"])
def test_a_macro_of_the_new_name_in_a_header(tree, tmp_path, macro):
    edit(tree / "hw/pc.h", "extern int no_hpet;", macro + "\n\nextern int no_hpet;")
    assert_not_renamed(tree, tmp_path, "hw/pc.h:6: kvm_set_irq is already declared here (a macro)")


def test_a_use_of_the_new_name_declared_outside_the_tree_means_it_is_taken(tree, tmp_path):
    """A function of that name that kvmlint cannot see (a system library's header) is taken too."""
    system = tmp_path / "system"
    system.mkdir()
    (system / "irq-lib.h").write_text("static inline int kvm_set_irq(void *opaque, int irq)\n{\n    (void)opaque;\n    return irq;\n}\n")
    append(tree / "hw/pc.c", f'\n#include "{system}/irq-lib.h"\n\nint pc_lib_irq(int irq);\nint pc_lib_irq(int irq)\n'
                             "{\n    return kvm_set_irq(NULL, irq);\n}\n")
    assert_not_renamed(tree, tmp_path, "hw/pc.c:42: kvm_set_irq already names something here")


# --- harmless: other namespaces, and scopes the rename does not enter ------------------------

def test_labels_members_and_unrelated_locals_of_either_name_are_left_alone(tree, tmp_path):
    append(tree / "hw/pc.c", f"""
typedef struct PCInjector {{
    int (*kvm_set_irq)(KVMState *s, int irq, int level);
    int (*{OLD})(KVMState *s, int irq, int level);
}} PCInjector;

static PCInjector pc_injector = {{ .kvm_set_irq = {OLD}, .{OLD} = {OLD} }};

int pc_inject_twice(int gsi);
int pc_inject_twice(int gsi)
{{
    PCInjector *injector = &pc_injector;

    if (gsi < 0) {{
        goto kvm_set_irq;
    }}
    injector->kvm_set_irq(kvm_state, gsi, 1);
    return injector->{OLD}(kvm_state, gsi, 0);
kvm_set_irq:
    return -1;
}}

int pc_unrelated_local(void);
int pc_unrelated_local(void)
{{
    int kvm_set_irq = 2;

    return kvm_set_irq;
}}
""")
    finding = rename_finding(tree)
    assert finding["fix"]["applicability"] == "safe", finding["text"]
    assert_renamed_and_builds(tree, tmp_path)
    pc = (tree / "hw/pc.c").read_text()
    assert f"int (*{OLD})(KVMState *s" in pc and f"return injector->{OLD}(kvm_state" in pc  # the member stays
    assert f".kvm_set_irq = kvm_set_irq, .{OLD} = kvm_set_irq }}" in pc


def test_a_declaration_in_code_that_is_never_compiled_is_no_conflict(tree, tmp_path):
    append(tree / "hw/pc.h", "\n#if 0\nint kvm_set_irq;\n#endif\n")
    assert_renamed_and_builds(tree, tmp_path)


# --- item A2: excluded files and narrowed runs still get the rename ---------------------------

def test_an_excluded_caller_is_renamed_too(tree, tmp_path):
    (tree / "kvmlint.toml").write_text('exclude = ["hw/pc.c"]\n')
    assert_renamed_and_builds(tree, tmp_path)


def test_a_fix_narrowed_to_one_file_renames_every_caller_or_nothing(tree, tmp_path):
    before = snapshot(tree)
    done = kvmlint("fix", "--no-cache", "--select", "KVM003", "hw/pc.c", cwd=tree)
    assert "Rename" not in done.stdout  # the finding is kvm-all.c's
    assert snapshot(tree) == before
    done = kvmlint("fix", "--no-cache", "--select", "KVM003", "kvm-all.c", cwd=tree)
    assert "fixed: kvm: Rename" in done.stdout, done.stderr
    assert f"{NEW}(kvm_state" in (tree / "hw/pc.c").read_text()
    builds(tree, tmp_path / "out")


# --- item A3: every file the build can include is read ----------------------------------------

def x_macro_caller(tree: Path, name: str) -> None:
    """hw/pc.c includes `name`, whose lines are calls (x-macro style)."""
    (tree / "hw" / name).write_text(f"/* one injection per GSI the board wires */\nPC_GSI(0, {OLD})\nPC_GSI(2, {OLD})\n")
    append(tree / "hw/pc.c", f"\nvoid pc_gsi_set_all(int level);\nvoid pc_gsi_set_all(int level)\n{{\n"
                             f"#define PC_GSI(gsi, inject) inject(kvm_state, gsi, level);\n#include \"{name}\"\n#undef PC_GSI\n}}\n")


@pytest.mark.parametrize("name", ["pc-inject.def", "pc-inject.inc", "pc-inject.c.inc", "pc-inject.tbl"])
def test_a_caller_in_an_included_file_of_any_suffix_is_renamed(tree, tmp_path, name):
    x_macro_caller(tree, name)
    assert_renamed_and_builds(tree, tmp_path, f"hw/{name}")
    assert OLD not in (tree / "hw" / name).read_text()


def test_an_included_fragment_the_parser_cannot_read_is_renamed(tree, tmp_path):
    """Statements at the top of a file are syntax errors to tree-sitter; the rename's places come from the tokens."""
    (tree / "hw/pc-wiring.c.inc").write_text(f"PC_GSI(0) {OLD}(kvm_state, 0, level);\nPC_GSI(2) {OLD}(kvm_state, 2, level);\n")
    append(tree / "hw/pc.c", "\nvoid pc_gsi_set_wired(int wired, int level);\nvoid pc_gsi_set_wired(int wired, int level)\n{\n"
                             "#define PC_GSI(gsi) if (wired & (1 << (gsi)))\n#include \"pc-wiring.c.inc\"\n#undef PC_GSI\n}\n")
    assert_renamed_and_builds(tree, tmp_path, "hw/pc-wiring.c.inc")


def test_a_caller_in_a_git_tree_is_found_through_gits_file_list(tree, tmp_path):
    x_macro_caller(tree, "pc-inject.def")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(tree)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "base"], check=True)
    assert_renamed_and_builds(tree, tmp_path, "hw/pc-inject.def")


def test_assembly_and_objective_c_callers_are_renamed(tree, tmp_path):
    (tree / "hw/pc-entry.S").write_text(f"/* the GSI 0 entry point */\n    .text\n    .globl pc_gsi0\npc_gsi0:\n"
                                        f"    call {OLD}  // {OLD}(kvm_state, 0, 1)\n    ret\n")
    (tree / "ui").mkdir()
    (tree / "ui/cocoa.m").write_text(f'#include "kvm.h"\n\nstatic void cocoa_irq(void)\n{{\n    {OLD}(kvm_state, 1, 1);\n}}\n')
    assert_renamed_and_builds(tree, tmp_path, "ui/cocoa.m")
    assert f"call {NEW}  // {OLD}(" in (tree / "hw/pc-entry.S").read_text()  # the comment is prose
    if os.uname().machine == "x86_64":
        obj = tmp_path / "entry.o"
        subprocess.run(["gcc", "-c", str(tree / "hw/pc-entry.S"), "-o", str(obj)], check=True)
        assert NEW in subprocess.run(["nm", "-u", str(obj)], capture_output=True, text=True, check=True).stdout


def test_a_build_directory_and_documentation_do_not_stop_the_rename(tree, tmp_path):
    build = tree / "build"
    build.mkdir()
    (build / "config-host.mak").write_text("CONFIG_KVM=y\n")
    (build / "trace.h").write_text(f"void {OLD}_traced(void);\n#define TRACE {OLD}\n")
    (tree / "docs").mkdir()
    (tree / "docs/irq.rst").write_text(f"Boards inject a GSI with ``{OLD}()``.\n")
    finding = rename_finding(tree)
    assert finding["fix"]["applicability"] == "safe"
    assert "not changed: docs/irq.rst:1: documentation names kvm_irqchip_set_irq" in finding["text"]
    assert_renamed_and_builds(tree, tmp_path)
    assert OLD in (tree / "docs/irq.rst").read_text()


def test_other_text_naming_the_old_name_makes_the_rename_unsafe(tree, tmp_path):
    (tree / "scripts").mkdir()
    (tree / "scripts/gen-irq.py").write_text(f"print('    {OLD}(kvm_state, 0, 1);')\n")
    finding = rename_finding(tree)
    assert finding["fix"]["applicability"] == "unsafe"
    assert ("not safe: scripts/gen-irq.py:1: names kvm_irqchip_set_irq but is not C that kvmlint can edit"
            in finding["message"])
    before = snapshot(tree)
    done = kvmlint("fix", "--no-cache", "--select", "KVM003", str(tree))
    assert done.returncode == 1 and snapshot(tree) == before
    assert "the fix is unsafe; --unsafe-fixes applies it" in done.stderr
    done = kvmlint("fix", "--no-cache", "--unsafe-fixes", "--select", "KVM003", str(tree))
    assert "fixed: kvm: Rename" in done.stdout, done.stderr
    assert OLD in (tree / "scripts/gen-irq.py").read_text()
    builds(tree, tmp_path / "out")


def test_a_paste_that_may_build_the_old_name_makes_the_rename_unsafe(tree, tmp_path):
    append(tree / "hw/pc.c", "\n#define PC_INJECT(how, gsi) kvm_irqchip_ ## how(kvm_state, gsi, 1)\n\n"
                             "void pc_gsi_raise(int gsi);\nvoid pc_gsi_raise(int gsi)\n{\n    PC_INJECT(set_irq, gsi);\n}\n")
    finding = rename_finding(tree)
    assert finding["fix"]["applicability"] == "unsafe"
    assert "not safe: hw/pc.c:37: a ## here may paste kvm_irqchip_set_irq together" in finding["message"]
    assert kvmlint("fix", "--no-cache", "--select", "KVM003", str(tree)).returncode == 1
    builds(tree, tmp_path / "out")


def test_a_file_that_cannot_be_read_makes_the_rename_unsafe(tree, tmp_path):
    (tree / "hw/pc-tables.h").write_bytes(b"/* generated */\n" * (600 * 1024))  # over the 8 MiB a source may have
    finding = rename_finding(tree)
    assert finding["fix"]["applicability"] == "unsafe"
    assert "not safe: hw/pc-tables.h: larger than 8 MiB" in finding["message"], finding["message"]


# --- the tree-wide read is bounded and stays inside the tree ----------------------------------

def limited() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (60, 60))
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def test_the_read_for_a_rename_skips_what_is_not_the_trees_text(tree, tmp_path):
    """FIFOs, devices, binaries and symlinks are not read or written; one that leads out of the tree makes the rename unsafe."""
    os.mkfifo(tree / "hw/pc-fifo.def")
    (tree / "hw/zero.h").symlink_to("/dev/zero")
    (tree / "hw/pc.o").write_bytes(b"\0ELF" + OLD.encode() + b"\0" * 64)  # a stale object: binary
    (tree / "hw/pc-copy.h").symlink_to(tree / "hw/pc.h")  # inside the tree: its target is read itself
    victim = tmp_path / "victim.h"
    victim.write_text(f"int {OLD}(void *s, int irq, int level);\n")
    (tree / "hw/outside.h").symlink_to(victim)

    def fix(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "kvmlint", "fix", "--no-cache", "--select", "KVM003", *extra, str(tree)],
                              capture_output=True, text=True, preexec_fn=limited, timeout=120)

    done = fix()
    assert done.returncode == 1 and "the fix is unsafe" in done.stderr, done.stderr
    finding = rename_finding(tree)
    assert "not safe: hw/outside.h: a symlink that leads outside the tree: not read" in finding["message"]
    done = fix("--unsafe-fixes")
    assert "fixed: kvm: Rename" in done.stdout, done.stderr
    assert victim.read_text() == f"int {OLD}(void *s, int irq, int level);\n"
    assert (tree / "hw/outside.h").is_symlink()
    builds(tree, tmp_path / "out")
