"""`kvmlint fix --build-check BUILD_DIR` and `kvmlint validate-build`: fixes proven with gcc.

The build-gate fixture's `configure` writes a `compile_commands.json` for its
i386 and arm targets, as QEMU's configure does; the tests run kvmlint on a
copy and compile with the recorded commands.  KVMLINT_QEMU_BUILD (a
configured build directory of a real QEMU checkout) runs the same check on
real QEMU.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kvmlint.validation.compile_database import CompileDatabase
from kvmlint.validation.dependencies import parse_depfile, parse_ninja_deps, parse_ninja_deps_log

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "build-gate"
needs_gcc = pytest.mark.skipif(shutil.which("cc") is None or shutil.which("gcc") is None, reason="needs gcc")


def kvmlint(*arguments: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kvmlint", *arguments], capture_output=True, text=True, cwd=cwd)


def configured_tree(tmp_path: Path, *options: str) -> Path:
    tree = tmp_path / "qemu"
    shutil.copytree(FIXTURE, tree)
    (tree / "build").mkdir()
    subprocess.run([str(tree / "configure"), *options], cwd=tree / "build", check=True, capture_output=True)
    return tree


def build_everything(tree: Path) -> None:
    """What `make` would do: run every recorded command (leaving a .d file per object)."""
    for entry in json.loads((tree / "build" / "compile_commands.json").read_text()):
        subprocess.run(shlex.split(entry["command"]), cwd=entry["directory"], check=True, capture_output=True)


def compile_hw_pc_once(tree: Path) -> None:
    """Make the build compile hw/pc.c once for every target (no target folder on its
    include path), as current QEMU compiles a system_ss file, while the Makefiles
    kvmlint reads still say it is i386's."""
    database = tree / "build" / "compile_commands.json"
    entries = json.loads(database.read_text())
    for entry in entries:
        if entry["file"].endswith("hw/pc.c"):
            for flag in (f"-I{tree}/target-i386", "-DNEED_CPU_H", "-DTARGET_I386", "-DCONFIG_KVM"):
                entry["command"] = entry["command"].replace(f" {flag}", "")
    database.write_text(json.dumps(entries, indent=1))


def commit_all(tree: Path) -> None:
    git = ["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    (tree / ".gitignore").write_text("build/\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "pristine"], check=True)


def snapshot(tree: Path) -> dict[str, bytes]:
    return {
        p.relative_to(tree).as_posix(): p.read_bytes()
        for p in sorted(tree.rglob("*")) if p.is_file() and "build" not in p.relative_to(tree).parts
    }


@needs_gcc
@pytest.mark.parametrize("options", [(), ("--disable-kvm",)], ids=["kvm", "nokvm"])
def test_every_fix_compiles_in_the_fixture(tmp_path, options):
    tree = configured_tree(tmp_path, *options)
    result = kvmlint("fix", "--unsafe-fixes", "--build-check", "build", str(tree), cwd=tree)
    assert result.returncode == 0, result.stderr
    assert "fixed: kvm: Move kvm_allows_irq0_override() to target-i386" in result.stdout
    assert "0 rolled back" in result.stderr
    # A unit that only reads kvm.h, whose change is declarations and macros it does not use: the front end.
    assert re.search(r"compilation\(s\) \([1-9]\d* by the front end alone", result.stderr), result.stderr
    assert (tree / "target-i386" / "kvm_i386.h").is_file()
    # The move adds its stub to the target's Makefile.objs: no compile proves that line.
    assert ("build-check: target-i386/Makefile.objs (changed by 'kvm: Move kvm_allows_irq0_override() to "
            "target-i386'): a build file, not proven by compiling units; build the tree to check it") in result.stderr
    # The changed tree compiles unit by unit with the build's own commands.
    changed = changed_files(tree)
    assert "kvm.h" in changed and "target-i386/kvm_i386.h" in changed
    validated = kvmlint("validate-build", "build", *changed, cwd=tree)
    assert validated.returncode == 0, validated.stdout
    assert " 0 failed" in validated.stdout


def changed_files(tree: Path) -> list[str]:
    """The files that differ from the fixture (new ones included)."""
    before = snapshot(FIXTURE)
    return [path for path, data in snapshot(tree).items() if before.get(path) != data]


@needs_gcc
def test_a_fix_that_breaks_the_build_is_rolled_back_with_the_compiler_error(tmp_path):
    tree = configured_tree(tmp_path)
    compile_hw_pc_once(tree)
    before = snapshot(tree)
    result = kvmlint("fix", "--unsafe-fixes", "--build-check", "build", str(tree), cwd=tree)
    assert result.returncode == 1, "a rolled-back fix leaves a finding: exit 1"
    assert "rolled back: kvm: Move kvm_allows_irq0_override() to target-i386\n" in result.stderr
    # The finding the move was for is not fixed, with the compiler's first error lines.
    not_fixed = result.stderr.split("not fixed: kvm-all.c:163: KVM002 kvm_allows_irq0_override: its fix was rolled back: ")
    assert len(not_fixed) == 2, result.stderr
    assert re.match(r"does not compile:\nhw/pc.c \(i386-softmmu/hw_pc.c.o\):\n.*hw/pc.c:\d+:\d+: fatal error: kvm_i386.h: "
                    "No such file or directory", not_fixed[1]), result.stderr
    # So is the proxy use inside the helper that no longer moves.
    assert re.search(r"not fixed: kvm-all.c:\d+: KVM001 kvm_irqchip_in_kernel: no automatic fix", result.stderr)
    # The follow-up that retypes the moved helper goes with it.
    assert "rolled back: kvm: Make kvm_allows_irq0_override() return bool: it builds on" in result.stderr
    assert "fixed: kvm: Move" not in result.stdout
    after = snapshot(tree)
    assert not (tree / "target-i386" / "kvm_i386.h").exists()
    assert not (tree / "target-i386" / "kvm-stub.c").exists()
    assert after["target-i386/Makefile.objs"] == before["target-i386/Makefile.objs"]
    assert "kvm_allows_irq0_override" in after["kvm.h"].decode()
    assert b"kvm_i386.h" not in after["hw/pc.c"]
    # Only the files that stay changed are listed as written.
    wrote = re.findall(r"^wrote (\S+)$", result.stdout, re.MULTILINE)
    assert sorted(wrote) == sorted(p for p, data in after.items() if before.get(p) != data), result.stdout
    assert "target-i386/kvm_i386.h" not in wrote and "target-i386/Makefile.objs" not in wrote
    assert f"\n{len(wrote)} file(s) written" in result.stdout
    # The other fixes stay, and everything compiles.
    assert "fixed: kvm: Rename kvm_irqchip_set_irq() to kvm_set_irq()" in result.stdout
    assert b"kvm_set_irq(" in after["kvm.h"]
    validated = kvmlint("validate-build", "build", *changed_files(tree), cwd=tree)
    assert validated.returncode == 0, validated.stdout


@needs_gcc
def test_validate_build_without_files_compiles_what_git_sees_changed(tmp_path):
    tree = configured_tree(tmp_path)
    commit_all(tree)
    clean = kvmlint("validate-build", "build", cwd=tree)
    assert clean.returncode == 0 and clean.stdout.startswith("0 unit(s) compiled"), clean.stdout
    pc = tree / "hw" / "pc.c"
    pc.write_text(pc.read_text() + "static int unused;\n")  # -Werror: an unused variable fails
    result = kvmlint("validate-build", "../build", cwd=tree / "hw")
    assert result.returncode == 1
    assert "does not compile: hw/pc.c (i386-softmmu/hw_pc.c.o)" in result.stdout
    assert re.search(r"error: .unused. defined but not used", result.stdout), result.stdout


UNIT_SUMMARY = re.compile(r"(\d+) unit\(s\) compiled(?: \((\d+) by the front end alone[^)]*\))? in")


def compiled_units(stdout: str) -> tuple[int, int]:
    """(units compiled, of them by the front end alone), from validate-build's summary."""
    match = UNIT_SUMMARY.search(stdout)
    assert match, stdout
    return int(match[1]), int(match[2] or 0)


def built_and_committed(tmp_path: Path, kvm_h_addition: str = "") -> Path:
    """The fixture, with `kvm_h_addition` appended to kvm.h's external API, built once and
    committed: the state a build check compares a change with."""
    tree = configured_tree(tmp_path)
    kvm_h = tree / "kvm.h"
    kvm_h.write_text(kvm_h.read_text().replace("/* external API */\n", "/* external API */\n" + kvm_h_addition, 1))
    build_everything(tree)
    commit_all(tree)
    return tree


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@needs_gcc
def test_a_header_change_of_declarations_is_checked_by_the_front_end_which_still_rejects_a_wrong_one(tmp_path):
    tree = built_and_committed(tmp_path)
    edit(tree / "kvm.h", "int kvm_has_gsi_routing(void);\n",
         "int kvm_has_gsi_routing(void);\n\n/* Whether INTx can be masked. */\nint kvm_has_intx_set_mask(void);\n")
    added = kvmlint("validate-build", "build", cwd=tree)
    assert added.returncode == 0, added.stdout
    units, front_end = compiled_units(added.stdout)
    assert units > 1 and front_end == units, "no unit's own source changed: the front end checks them all"
    forced = kvmlint("validate-build", "--full-compile", "build", cwd=tree)
    assert forced.returncode == 0 and compiled_units(forced.stdout) == (units, 0)
    alone = kvmlint("fix", "--full-compile", str(tree))
    assert alone.returncode == 2 and alone.stderr == "kvmlint: --full-compile goes with --build-check\n"
    edit(tree / "kvm.h", "int kvm_has_gsi_routing(void);", "bool kvm_has_gsi_routing(void);")
    conflicting = kvmlint("validate-build", "build", cwd=tree)
    assert conflicting.returncode == 1
    assert re.search(r"error: conflicting types for .kvm_has_gsi_routing.", conflicting.stdout), conflicting.stdout
    assert compiled_units(conflicting.stdout) == (units, units)


@needs_gcc
def test_a_header_change_the_front_end_cannot_judge_gets_the_whole_command(tmp_path):
    tree = built_and_committed(tmp_path)
    # A new inline function that only the optimiser's passes reject (-Werror=return-type), used by the
    # macro most units expand.
    edit(tree / "kvm.h", "#if defined CONFIG_KVM || !defined NEED_CPU_H\n#define kvm_irqchip_in_kernel() (kvm_kernel_irqchip)",
         "static inline bool kvm_checked(bool v) { if (v) { return true; } }\n"
         "#if defined CONFIG_KVM || !defined NEED_CPU_H\n#define kvm_irqchip_in_kernel() (kvm_checked(kvm_kernel_irqchip))")
    result = kvmlint("validate-build", "build", cwd=tree)
    assert result.returncode == 1
    assert "control reaches end of non-void function" in result.stdout, result.stdout
    assert compiled_units(result.stdout)[1] == 0
    # The front end alone accepts it: the whole command is what catches it.
    entry = next(e for e in json.loads((tree / "build" / "compile_commands.json").read_text())
                 if e["file"].endswith("hw/virtio-pci.c"))
    syntax = subprocess.run([*shlex.split(entry["command"]), "-fsyntax-only"], cwd=entry["directory"], capture_output=True)
    assert syntax.returncode == 0, syntax.stderr


@needs_gcc
def test_a_changed_macro_gets_the_whole_command_exactly_in_the_units_that_expand_it(tmp_path):
    # Unused, an inline function with a path that returns nothing compiles; used, -Werror=return-type fails.
    tree = built_and_committed(tmp_path, "static inline bool kvm_checked(bool v) { if (v) { return true; } }\n")
    edit(tree / "kvm.h", "#define kvm_irqchip_in_kernel() (kvm_kernel_irqchip)",
         "#define kvm_irqchip_in_kernel() (kvm_checked(kvm_kernel_irqchip))")
    result = kvmlint("validate-build", "build", cwd=tree)
    assert result.returncode == 1
    failing = set(re.findall(r"^does not compile: (\S+)", result.stdout, re.MULTILINE))
    expanding = {str(p.relative_to(tree)) for p in tree.rglob("*.c") if re.search(r"\bkvm_irqchip_in_kernel\b", p.read_text())}
    assert failing and failing <= expanding, (failing, expanding)
    units, front_end = compiled_units(result.stdout)
    assert 0 < front_end < units, "units that never expand the macro get the front end"


@needs_gcc
def test_an_added_include_gets_the_front_end_only_while_the_build_predates_it(tmp_path):
    tree = built_and_committed(tmp_path)
    # Every unit reads qemu-common.h already; including it once more brings in nothing new.
    edit(tree / "kvm.h", '#include "qemu-common.h"\n', '#include "qemu-common.h"\n#include "qemu-common.h" /* again */\n')
    fresh = kvmlint("validate-build", "build", cwd=tree)
    units, front_end = compiled_units(fresh.stdout)
    assert fresh.returncode == 0 and front_end == units > 1, fresh.stdout
    # Built after the change, the record may list what the new include brought: it proves nothing.
    build_everything(tree)
    rebuilt = kvmlint("validate-build", "build", cwd=tree)
    assert rebuilt.returncode == 0 and compiled_units(rebuilt.stdout) == (units, 0), rebuilt.stdout


@needs_gcc
def test_a_named_file_that_matches_head_is_compiled_in_full(tmp_path):
    tree = built_and_committed(tmp_path)
    edit(tree / "kvm.h", "int kvm_has_gsi_routing(void);\n", "int kvm_has_gsi_routing(void);\nint kvm_has_intx_set_mask(void);\n")
    commit_all(tree)  # what the build compiled is no longer HEAD's
    result = kvmlint("validate-build", "build", "kvm.h", cwd=tree)
    assert result.returncode == 0, result.stdout
    units, front_end = compiled_units(result.stdout)
    assert units > 1 and front_end == 0


@needs_gcc
def test_validate_build_reports_the_first_error_of_each_failing_unit(tmp_path):
    tree = configured_tree(tmp_path)
    msix = tree / "hw" / "msix.c"
    msix.write_text(msix.read_text().replace('#include "msix.h"', '#include "msix.h"\n#include "cpu.h"', 1))
    result = kvmlint("validate-build", str(tree / "build"), str(msix))
    assert result.returncode == 1
    assert "does not compile: hw/msix.c (common/hw_msix.c.o):" in result.stdout
    assert "fatal error: cpu.h: No such file or directory" in result.stdout
    assert "1 unit(s) compiled" in result.stdout


@needs_gcc
def test_a_header_recompiles_exactly_its_includers_by_depfile_and_by_include_graph(tmp_path):
    tree = configured_tree(tmp_path)
    header = tree / "hw" / "msix.h"
    expected = {
        (entry["output"]) for entry in json.loads((tree / "build" / "compile_commands.json").read_text())
        if '"msix.h"' in Path(entry["file"]).read_text()
    }
    assert expected == {"common/hw_msix.c.o", "common/hw_virtio-pci.c.o"}
    by_graph = CompileDatabase([tree / "build"], tree)
    assert {u.output for u in by_graph.affected([header])} == expected
    build_everything(tree)
    by_depfile = CompileDatabase([tree / "build"], tree)
    assert {u.output for u in by_depfile.affected([header])} == expected
    # the .d files were read: they also name system headers, which the include graph leaves out
    unit = next(u for u in by_depfile.units if u.output == "common/hw_msix.c.o")
    assert any(not str(p).startswith(str(tree)) for p in by_depfile.dependencies(unit))


@needs_gcc
def test_a_new_source_file_is_compiled_with_its_directory_units_commands(tmp_path):
    tree = configured_tree(tmp_path)
    commit_all(tree)
    new = tree / "target-i386" / "helper.c"
    new.write_text('#include "qemu-common.h"\nint unused_helper(void);\nint unused_helper(void) { return missing; }\n')
    result = kvmlint("validate-build", str(tree / "build"), str(new))
    assert result.returncode == 1
    assert "target-i386/helper.c (i386-softmmu/target-i386_kvm.c.o (as helper.c))" in result.stdout
    assert re.search(r"error: .missing. undeclared", result.stdout), result.stdout


def ninja_build(tree: Path, leave_out: str) -> None:
    """Drive the fixture's build with ninja, as meson does (`deps = gcc`: ninja keeps the
    .d files in its log and deletes them), and build every object but `leave_out`."""
    entries = json.loads((tree / "build" / "compile_commands.json").read_text())
    lines = ["rule cc", "  command = $cmd", "  depfile = $out.d", "  deps = gcc", ""]
    for entry in entries:
        lines += [f"build {entry['output']}: cc {entry['file']}", f"  cmd = {entry['command']}", ""]
    (tree / "build" / "build.ninja").write_text("\n".join(lines))
    wanted = [e["output"] for e in entries if e["output"] != leave_out]
    subprocess.run(["ninja", "-C", str(tree / "build"), *wanted], check=True, capture_output=True)


@needs_gcc
@pytest.mark.skipif(shutil.which("ninja") is None, reason="needs ninja")
def test_a_ninja_build_says_which_units_read_a_header_and_which_it_never_built(tmp_path):
    tree = configured_tree(tmp_path)
    ninja_build(tree, leave_out="common/hw_virtio-pci.c.o")
    build = tree / "build"
    assert not list(build.rglob("*.d")) and (build / ".ninja_deps").is_file()
    listed = subprocess.run(["ninja", "-C", str(build), "-t", "deps"], capture_output=True, text=True, check=True)
    from_log = parse_ninja_deps_log((build / ".ninja_deps").read_bytes(), build)
    built = len(json.loads((build / "compile_commands.json").read_text())) - 1
    assert from_log == parse_ninja_deps(listed.stdout, build) and len(from_log) == built
    # msix.h is read by hw/msix.c (built) and hw/virtio-pci.c (never built in this build).
    database = CompileDatabase([build], tree)
    assert [u.output for u in database.affected([tree / "hw" / "msix.h"])] == ["common/hw_msix.c.o"]
    assert [u.output for u in database.never_built] == ["common/hw_virtio-pci.c.o"]
    result = kvmlint("validate-build", str(build), str(tree / "hw" / "msix.h"))
    assert result.returncode == 0 and result.stdout.startswith("1 unit(s) compiled"), result.stdout
    assert "1 unit(s) that" in result.stderr and "never built" in result.stderr
    # Its own source changed, a unit the build never compiled is compiled.
    source = kvmlint("validate-build", str(build), str(tree / "hw" / "virtio-pci.c"))
    assert source.returncode == 0 and source.stdout.startswith("1 unit(s) compiled"), source.stdout


def test_ninja_deps_log_versions_and_damage(tmp_path):
    def path_record(name: bytes, number: int) -> bytes:
        padded = name + b"\0" * (-len(name) % 4)
        return (len(padded) + 4).to_bytes(4, sys.byteorder) + padded + (~number & 0xFFFFFFFF).to_bytes(4, sys.byteorder)

    def deps_record(output: int, inputs: list[int], mtime_words: int) -> bytes:
        numbers = [output] + [7] * mtime_words + inputs
        return (len(numbers) * 4 | 0x80000000).to_bytes(4, sys.byteorder) + b"".join(n.to_bytes(4, sys.byteorder) for n in numbers)

    build = tmp_path / "build"
    paths = path_record(b"a.o", 0) + path_record(b"../a.c", 1) + path_record(b"../include/b.h", 2)
    for version, mtime_words in ((3, 1), (4, 2)):
        log = b"# ninjadeps\n" + version.to_bytes(4, sys.byteorder) + paths + deps_record(0, [1], mtime_words)
        log += deps_record(0, [1, 2], mtime_words)  # a later record of an output replaces the earlier
        assert parse_ninja_deps_log(log, build) == {build / "a.o": {tmp_path / "a.c", tmp_path / "include" / "b.h"}}
        # A record cut short by an interrupted build is ignored, as ninja ignores it.
        assert parse_ninja_deps_log(log[:-3], build) == {build / "a.o": {tmp_path / "a.c"}}
    assert parse_ninja_deps_log(b"# ninjadeps\n" + (5).to_bytes(4, sys.byteorder), build) is None
    assert parse_ninja_deps_log(b"not a log", build) is None


def test_a_unit_is_compiled_with_its_recorded_command_outputs_aside_and_no_debug_info(tmp_path):
    tree = tmp_path / "qemu"
    (tree / "build").mkdir(parents=True)
    (tree / "configure").write_text("#!/bin/sh\n")
    (tree / "a.c").write_text("int a;\n")
    seen = tmp_path / "argv"
    compiler = tmp_path / "recording-cc"  # named as a C compiler: kvmlint runs no other program
    compiler.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {seen}\n')
    compiler.chmod(0o755)
    recorded = "-Ifoo '-DNAME=\"a b\"' -O2 -g -Wall -Werror -MD -MQ a.o -MF a.o.d -o a.o -c ../a.c"
    (tree / "build" / "compile_commands.json").write_text(json.dumps(
        [{"directory": str(tree / "build"), "file": "../a.c", "output": "a.o", "command": f"{compiler} {recorded}"}]))
    result = kvmlint("validate-build", str(tree / "build"), str(tree / "a.c"))
    assert result.returncode == 0, result.stderr
    argv = seen.read_text().splitlines()
    object_file, depfile = argv[argv.index("-o") + 1], argv[argv.index("-MF") + 1]
    expected = shlex.split(recorded.replace("-MF a.o.d", f"-MF {depfile}").replace("-o a.o", f"-o {object_file}"))
    assert argv == expected + ["-g0"]  # the same command, outputs aside, no debug information
    assert not object_file.startswith(str(tree)) and not depfile.startswith(str(tree))


def test_depfile_and_ninja_deps_formats(tmp_path):
    depfile = "obj/a.o: ../a.c ../include/my\\ header.h \\\n  /usr/include/stdio.h\n../a.c:\n"
    assert parse_depfile(depfile) == ["../a.c", "../include/my header.h", "/usr/include/stdio.h"]
    ninja = (
        "libcommon.fa.p/hw_a.c.o: #deps 2, deps mtime 1 (VALID)\n    ../hw/a.c\n    ../include/b.h\n\n"
        "other.o: #deps 1, deps mtime 1 (STALE)\n    ../c.h\n\n"
    )
    deps = parse_ninja_deps(ninja, tmp_path / "build")
    assert deps[tmp_path / "build" / "libcommon.fa.p" / "hw_a.c.o"] == {tmp_path / "hw" / "a.c", tmp_path / "include" / "b.h"}
    assert deps[tmp_path / "build" / "other.o"] == {tmp_path / "c.h"}


def test_bad_build_directories_are_one_line_errors(tmp_path):
    tree = tmp_path / "qemu"
    shutil.copytree(FIXTURE, tree)
    (tree / "build").mkdir()
    missing = kvmlint("fix", "--build-check", str(tree / "build"), str(tree))
    assert missing.returncode == 2
    assert missing.stderr.startswith("kvmlint: ") and "no compile_commands.json" in missing.stderr
    assert "Traceback" not in missing.stderr
    (tree / "build" / "compile_commands.json").write_text("[{]")
    broken = kvmlint("validate-build", str(tree / "build"), str(tree / "cpus.c"))
    assert broken.returncode == 2 and "not valid JSON" in broken.stderr
    (tree / "build" / "compile_commands.json").write_text(json.dumps(
        [{"directory": "/elsewhere", "file": "/elsewhere/a.c", "command": "cc -c a.c"}]))
    foreign = kvmlint("fix", "--build-check", str(tree / "build"), str(tree))
    assert foreign.returncode == 2 and "compiles no file of the tree" in foreign.stderr
    assert snapshot(tree) == snapshot(FIXTURE), "nothing is written when the build directory is unusable"


@pytest.mark.skipif(not os.environ.get("KVMLINT_QEMU_BUILD"), reason="KVMLINT_QEMU_BUILD (a configured QEMU build directory) not set")
def test_real_qemu_fixes_compile(tmp_path):
    """`kvmlint fix --build-check` on a configured QEMU checkout (it writes the fixes there:
    use a copy).  Every fix it keeps compiles; none is rolled back."""
    build_dir = Path(os.environ["KVMLINT_QEMU_BUILD"]).resolve()
    tree = build_dir.parent
    result = kvmlint("fix", "--build-check", str(build_dir), str(tree))
    assert "Traceback" not in result.stderr
    assert result.returncode in (0, 1), result.stderr
    assert " 0 rolled back" in result.stderr, result.stderr
    assert "fails without the fixes too" not in result.stderr, result.stderr


@needs_gcc
def test_build_check_with_and_without_kvm_checks_the_stub_files_too(tmp_path):
    tree = configured_tree(tmp_path)
    (tree / "build-nokvm").mkdir()
    subprocess.run([str(tree / "configure"), "--disable-kvm"], cwd=tree / "build-nokvm", check=True, capture_output=True)
    one = configured_tree(tmp_path / "one")
    only_kvm = kvmlint("fix", "--build-check", "build", str(one), cwd=one)
    assert "build-check: kvm-stub.c: no unit of" in only_kvm.stderr  # built only without KVM
    both = kvmlint("fix", "--build-check", "build", "--build-check", "build-nokvm", str(tree), cwd=tree)
    assert both.returncode == 0, both.stderr
    assert "kvm-stub.c: no unit" not in both.stderr
    assert "0 rolled back" in both.stderr
