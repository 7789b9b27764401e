"""The build check keeps its promises whoever wrote the build directory: the build directory is
untouched (every output of every spelling goes to a temporary directory, or the command is not
run), a fix no unit can prove is not kept, an edit made while the check compiles survives the
roll-back, and nothing in the build directory or its commands can make kvmlint hang or run out
of memory."""

from __future__ import annotations

import errno
import json
import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kvmlint.validation import compile_runner, dependencies
from kvmlint.validation.compile_command import split_response_file
from kvmlint.validation.compile_database import CompileDatabase
from kvmlint.validation.compile_runner import compile_units

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "build-gate"
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("cc") is None, reason="needs gcc")
needs_ninja = pytest.mark.skipif(shutil.which("ninja") is None, reason="needs ninja")
MEMORY_BYTES = 1 << 30


def limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (60, 60))


def kvmlint(*arguments: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`kvmlint ARGUMENTS` in a bounded process (memory, CPU time, wall time)."""
    return subprocess.run([sys.executable, "-m", "kvmlint", *arguments], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, preexec_fn=limited, timeout=timeout)


def state(top: Path, leave_out: Path | None = None) -> dict[str, tuple]:
    """Every file, link and folder under `top`: its bytes and modification time, where a link
    points, a folder's time (a file created and removed there changes it)."""
    found = {}
    for folder, folders, files in os.walk(top):
        for name in folders + files:
            path = Path(folder, name)
            if leave_out is not None and (path == leave_out or leave_out in path.parents):
                continue
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                found[str(path)] = ("link", os.readlink(path))
            elif stat.S_ISREG(info.st_mode):
                found[str(path)] = ("file", path.read_bytes(), info.st_mtime_ns)
            else:
                found[str(path)] = ("folder" if stat.S_ISDIR(info.st_mode) else "other", info.st_mtime_ns)
    return found


# --- 1. every output of every spelling goes to the temporary directory, or nothing runs ---------

REDIRECTED = [
    "-o a.o", "-oa.o", "--output=a.o", "--output a.o", "",  # "": the compiler's default output, a.o
    "-MD -MF a.o.d -o a.o", "-MD -MFa.o.d -o a.o", "-MMD -MFa.o.d -o a.o", "-MD -o a.o", "-MMD -o a.o",
    "-MD -MT a.o -MQ other -MF a.d -o a.o",
    "-Wp,-MD,a.wp.d -o a.o", "-Wp,-MMD,a.wp.d -o a.o", "-Wp,-MD,a.wp.d,-MT,a.o -o a.o", "-MD -Wp,-MF,a.wp.d -o a.o",
    "-aux-info a.aux -o a.o", "-aux-info=a.aux -o a.o",
    "-Wl,-Map=a.map -o a.o", "-Xlinker -Map=a.map -o a.o",
    "-fstack-usage -o a.o", "-fcallgraph-info -o a.o", "-fcallgraph-info=su,da -o a.o",
    "--coverage -o a.o", "-ftest-coverage -fprofile-arcs -o a.o", "-fprofile-arcs -fprofile-update=atomic -o a.o",
    "-frecord-gcc-switches -o a.o", "-g -gsplit-dwarf -o a.o", "-gsplit-dwarf -o a.o",
    "@a.rsp", "@'quoted name.rsp'",
]
REFUSED = {
    "-save-temps -o a.o": "-save-temps: writes files where kvmlint cannot send them",
    "-save-temps=obj -o a.o": "-save-temps=obj: writes files",
    "-save-temps=cwd -o a.o": "-save-temps=cwd: writes files",
    "--save-temps -o a.o": "--save-temps: writes files",
    "-dumpdir dumps/ -o a.o": "-dumpdir: writes files",
    "-dumpbase a -o a.o": "-dumpbase: writes files",
    "-fdump-tree-original -o a.o": "-fdump-tree-original: writes files",
    "-fdump-rtl-expand -o a.o": "-fdump-rtl-expand: writes files",
    "-fdump-ada-spec -o a.o": "-fdump-ada-spec: writes files",
    "-da -o a.o": "-da: makes the compiler write dump files",
    "-fprofile-generate -o a.o": "-fprofile-generate: reads or writes profile data",
    "-fprofile-note=a.gcno --coverage -o a.o": "-fprofile-note=a.gcno: reads or writes profile data",
    "-fdiagnostics-format=sarif-file -o a.o": "-fdiagnostics-format=sarif-file: writes files",
    "-fdiagnostics-format=json-file -o a.o": "-fdiagnostics-format=json-file: writes files",
    "-fopt-info-all=a.opt -o a.o": "-fopt-info-all=a.opt: writes files",
    "-fcompare-debug -o a.o": "-fcompare-debug: writes files",
    "-ftime-trace -o a.o": "-ftime-trace: writes files",
    "-fmodules-cache-path=cache -o a.o": "-fmodules-cache-path=cache: writes files",
    "-serialize-diagnostics a.dia -o a.o": "-serialize-diagnostics: writes files",
    "--serialize-diagnostics a.dia -o a.o": "--serialize-diagnostics: writes files",
    "-Xclang -ast-dump -o a.o": "-Xclang: makes the compiler load or run other programs",
    "-B. -o a.o": "-B.: makes the compiler load or run other programs",
    "-specs=a.specs -o a.o": "-specs=a.specs: makes the compiler load or run other programs",
    "-wrapper sh,-c -o a.o": "-wrapper: makes the compiler load or run other programs",
    "-fplugin=./a.so -o a.o": "-fplugin=./a.so: makes the compiler load or run other programs",
    "-Wa,-adhln=a.lst -o a.o": "-Wa,-adhln=a.lst: passes options to the assembler",
    "-Xassembler -adhln=a.lst -o a.o": "-Xassembler: passes options to the assembler",
    "-Xpreprocessor -MD -o a.o": "-Xpreprocessor: passes options to the preprocessor",
    "-Wp,-dD,-o,a.i -o a.o": "-Wp,-dD,-o,a.i: passes -dD to the preprocessor",
    "-E -o a.o": "-E: does not compile the unit, so it proves nothing",
    "-M -o a.o": "-M: does not compile the unit",
    "-MM -o a.o": "-MM: does not compile the unit",
    "-### -o a.o": "-###: does not compile the unit",
    "--version -o a.o": "--version: does not compile the unit",
    "-dumpversion -o a.o": "-dumpversion: does not compile the unit",
    "--write-dependencies -o a.o": "--write-dependencies: an option kvmlint does not know",
    "--outp=a.o": "--outp=a.o: an option kvmlint does not know",
    "-MJ a.json -o a.o": None,  # clang's: redirected, and gcc rejects it (the unit does not compile)
    "-o a.o ../b.c": "its inputs (../b.c, ../a.c) are not the unit's source alone",
    "@nested.rsp": "@nested.rsp: names another response file, @a.rsp",
    "@fifo.rsp": "@fifo.rsp: a response file kvmlint will not read (not a regular file)",
    "@link.rsp": "@link.rsp: a response file kvmlint will not read (a symbolic link",
    "@missing.rsp": "@missing.rsp: a response file kvmlint will not read (No such file or directory)",
    "@../../outside.rsp": "a response file outside the tree and the build directories",
    "@big.rsp": "@big.rsp: a response file kvmlint will not read (larger than 1 MiB)",
}
REFUSED_PROGRAMS = {
    "sh -c 'touch {victim}'": "it runs sh, which is not a C compiler kvmlint recognises by name",
    "python3 -c 'open(\"{victim}\", \"w\")'": "it runs python3, which is not a C compiler",
    "{evil} -c ../a.c": "which is not a C compiler kvmlint recognises",
    "./gcc -c ../a.c -o a.o": "is inside the tree or a build directory",
    "ccache sh -c 'touch {victim}'": "it runs sh, which is not a C compiler",
    "gcc 'unclosed -c ../a.c": "it names no compiler (or is a command the shell cannot split)",
}


def tree_with_one_unit(tmp_path: Path, command: str, directory: str = "build") -> tuple[Path, Path]:
    """A tree with a.c and a build directory that built it once, whose database compiles a.c
    with `command` (run in `directory`); the folders kvmlint runs from and writes temporary
    files to are separate.  (the tree, the build directory)"""
    tree, build = tmp_path / "qemu", tmp_path / "qemu" / "build"
    build.mkdir(parents=True)
    (tree / "configure").write_text("#!/bin/sh\n")
    (tree / "a.c").write_text("int a(int x);\nint a(int x) { return x + 1; }\n")
    (tree / "b.c").write_text("int b;\n")
    for name in ("a.o", "a.o.d", "a.d"):  # what the build left, older than the sources
        (build / name).write_bytes(b"built\n")
        os.utime(build / name, (1_000_000_000, 1_000_000_000))
    (build / "a.rsp").write_text("-oa.o -MD -MFa.o.d -c ../a.c\n")
    (build / "quoted name.rsp").write_text("'-o' \"a.o\" -MD -MF\\ a.o.d -c ../a.c\n")
    (build / "nested.rsp").write_text("@a.rsp\n")
    (build / "big.rsp").write_text("-c ../a.c" + " " * (1 << 20))
    os.mkfifo(build / "fifo.rsp")
    (build / "link.rsp").symlink_to(build / "a.rsp")
    (tmp_path / "outside.rsp").write_text("-oa.o -c ../a.c\n")
    evil = tmp_path / "evil"
    evil.write_text(f"#!/bin/sh\ntouch {tmp_path / 'victim'}\n")
    evil.chmod(0o755)
    fake = build / "gcc"
    fake.write_text(f"#!/bin/sh\ntouch {tmp_path / 'victim'}\nexec gcc \"$@\"\n")
    fake.chmod(0o755)
    for folder in ("home", "tmp", "cwd"):
        (tmp_path / folder).mkdir()
    if not command.startswith(("sh ", "python3 ", "{evil} ", "./", "ccache ", "gcc ")):
        command = f"gcc {command}" + ("" if command.startswith("@") else " -c ../a.c")
    full = command.format(victim=tmp_path / "victim", evil=evil)
    (build / "compile_commands.json").write_text(json.dumps(
        [{"directory": str(tree / directory), "file": str(tree / "a.c"), "output": "a.o", "command": full}]))
    return tree, build


def validate_one_unit(tmp_path: Path) -> subprocess.CompletedProcess:
    return kvmlint("validate-build", str(tmp_path / "qemu" / "build"), str(tmp_path / "qemu" / "a.c"),
                   cwd=tmp_path / "cwd", env={"HOME": str(tmp_path / "home"), "TMPDIR": str(tmp_path / "tmp")})


def assert_untouched(tmp_path: Path, before: dict, result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    after = state(tmp_path, leave_out=tmp_path / "tmp")
    changed = sorted(set(before) ^ set(after) | {p for p in before if p in after and before[p] != after[p]})
    assert not changed, (changed, result.stdout, result.stderr)
    assert not list((tmp_path / "tmp").iterdir()), "the temporary directory is removed"
    assert not (tmp_path / "victim").exists()


@needs_gcc
@pytest.mark.parametrize("spelling", REDIRECTED)
def test_every_output_spelling_goes_to_the_temporary_directory(tmp_path, spelling):
    tree_with_one_unit(tmp_path, spelling)
    before = state(tmp_path, leave_out=tmp_path / "tmp")
    result = validate_one_unit(tmp_path)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert result.stdout.startswith("1 unit(s) compiled") and " 0 failed" in result.stdout, result.stdout
    assert_untouched(tmp_path, before, result)


@needs_gcc
@pytest.mark.parametrize("spelling", REFUSED)
def test_a_command_whose_outputs_cannot_all_be_sent_aside_is_not_run(tmp_path, spelling):
    tree_with_one_unit(tmp_path, spelling)
    before = state(tmp_path, leave_out=tmp_path / "tmp")
    result = validate_one_unit(tmp_path)
    assert result.returncode == 1, (result.stdout, result.stderr)
    why = REFUSED[spelling]
    if why is None:
        assert "does not compile: a.c (a.o)" in result.stdout, result.stdout
    else:
        assert f"cannot check: a.c (a.o): not run: " in result.stdout and why in result.stdout, result.stdout
        assert "0 unit(s) compiled" in result.stdout and "1 not run" in result.stdout, result.stdout
    assert_untouched(tmp_path, before, result)


@needs_gcc
@pytest.mark.parametrize("program", REFUSED_PROGRAMS)
def test_a_program_that_is_not_an_installed_c_compiler_is_not_run(tmp_path, program):
    tree_with_one_unit(tmp_path, program)
    before = state(tmp_path, leave_out=tmp_path / "tmp")
    result = validate_one_unit(tmp_path)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "cannot check: a.c (a.o): not run: " in result.stdout and REFUSED_PROGRAMS[program] in result.stdout, result.stdout
    assert_untouched(tmp_path, before, result)


@needs_gcc
def test_recorded_arguments_run_only_a_compiler_and_ccache_in_front_is_dropped(tmp_path):
    tree, build = tree_with_one_unit(tmp_path, "-o a.o")
    database = build / "compile_commands.json"
    entry = json.loads(database.read_text())[0]
    database.write_text(json.dumps([{**entry, "command": "ccache gcc -c ../a.c -o a.o"}]))
    before = state(tmp_path, leave_out=tmp_path / "tmp")
    result = validate_one_unit(tmp_path)  # ccache is not installed here: it is not what runs
    assert result.returncode == 0 and result.stdout.startswith("1 unit(s) compiled"), (result.stdout, result.stderr)
    assert_untouched(tmp_path, before, result)
    del entry["command"]
    database.write_text(json.dumps([{**entry, "arguments": [str(tmp_path / "evil")]}]))
    before = state(tmp_path, leave_out=tmp_path / "tmp")
    refused = validate_one_unit(tmp_path)
    assert refused.returncode == 1
    assert f"not run: it runs {tmp_path / 'evil'}, which is not a C compiler kvmlint recognises" in refused.stdout
    assert_untouched(tmp_path, before, refused)


@needs_gcc
def test_a_command_run_outside_the_tree_and_the_build_directory_is_not_run(tmp_path):
    tree_with_one_unit(tmp_path, "-o a.o")
    database = tmp_path / "qemu" / "build" / "compile_commands.json"
    entries = json.loads(database.read_text())
    entries[0]["directory"] = str(tmp_path / "cwd")
    entries[0]["command"] = f"gcc -c {tmp_path / 'qemu' / 'a.c'} -o a.o"
    database.write_text(json.dumps(entries))
    before = state(tmp_path, leave_out=tmp_path / "tmp")
    result = validate_one_unit(tmp_path)
    assert result.returncode == 1
    assert f"not run: it runs in {tmp_path / 'cwd'}, outside the tree and the build directories" in result.stdout
    assert_untouched(tmp_path, before, result)


def test_response_files_are_split_as_gcc_splits_them():
    assert split_response_file("-DA='x y' \"-DB=\\\"q\\\"\"  -I\\ dir\n\t-c a.c") == ["-DA=x y", '-DB="q"', "-I dir", "-c", "a.c"]
    assert split_response_file("'' x") == ["", "x"]
    assert split_response_file("  \n") == []


# --- 2. a unit that cannot prove a fix never counts as proof -----------------------------------

def configured_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "qemu"
    shutil.copytree(FIXTURE, tree)
    (tree / "build").mkdir()
    subprocess.run([str(tree / "configure")], cwd=tree / "build", check=True, capture_output=True)
    return tree


def rewrite_commands(tree: Path, change) -> None:
    database = tree / "build" / "compile_commands.json"
    entries = json.loads(database.read_text())
    for entry in entries:
        entry["command"] = change(entry)
    database.write_text(json.dumps(entries, indent=1))


def compile_hw_pc_once(entry: dict) -> str:
    """hw/pc.c compiled once for every target (no target folder on its include path): moving
    kvm_allows_irq0_override() to target-i386's header breaks it."""
    command = entry["command"]
    if entry["file"].endswith("hw/pc.c"):
        for flag in ("-I{}/target-i386", "-DNEED_CPU_H", "-DTARGET_I386", "-DCONFIG_KVM"):
            command = command.replace(" " + flag.format(str(Path(entry["file"]).parents[1])), "")
    return command


def sources(tree: Path) -> dict[str, bytes]:
    return {p.relative_to(tree).as_posix(): p.read_bytes() for p in sorted(tree.rglob("*"))
            if p.is_file() and "build" not in p.relative_to(tree).parts and ".kvmlint_cache" not in p.parts}


MOVE = "kvm: Move kvm_allows_irq0_override() to target-i386"
RENAME = "kvm: Rename kvm_irqchip_set_irq() to kvm_set_irq()"


@needs_gcc
def test_when_every_unit_fails_without_the_fixes_too_no_fix_is_kept(tmp_path):
    tree = configured_tree(tmp_path)
    # Every command fails whatever the fixes (a generated header the build never made), and the move breaks hw/pc.c.
    rewrite_commands(tree, lambda e: compile_hw_pc_once(e).replace(" -c ", " -include generated-missing.h -c "))
    before = sources(tree)
    result = kvmlint("fix", "--unsafe-fixes", "--build-check", "build", str(tree), cwd=tree)
    assert result.returncode == 1, result.stderr
    assert "fixed: " not in result.stdout, result.stdout
    assert f"rolled back: {MOVE}" in result.stderr
    assert re.search(r"its fix was rolled back: not proven: \S+ \(\S+\) fails without the fixes too:\n.*generated-missing.h",
                     result.stderr), result.stderr
    assert sources(tree) == before, "every fix was rolled back"
    assert re.search(r"0 fix\(es\) compile, [1-9]\d* rolled back", result.stderr), result.stderr


@needs_gcc
def test_a_unit_whose_command_is_not_run_proves_no_fix(tmp_path):
    tree = configured_tree(tmp_path)
    rewrite_commands(tree, lambda e: e["command"].replace(" -c ", " -save-temps -c "))
    before = sources(tree)
    built = state(tree / "build")
    result = kvmlint("fix", "--unsafe-fixes", "--build-check", "build", str(tree), cwd=tree)
    assert result.returncode == 1, result.stderr
    assert "fixed: " not in result.stdout, result.stdout
    assert f"not fixed: kvm-all.c:163: KVM002 kvm_allows_irq0_override: its fix was rolled back: not proven: " in result.stderr
    assert "not run: -save-temps: writes files where kvmlint cannot send them to its temporary directory" in result.stderr
    assert sources(tree) == before
    assert state(tree / "build") == built, "nothing ran in the build directory"


# --- 3. an edit made while the check compiles survives the roll-back --------------------------

@needs_gcc
def test_an_edit_made_while_the_check_compiles_survives_the_roll_back(tmp_path):
    tree = configured_tree(tmp_path)
    # The user's editor saves hw/pc.c while gcc compiles (a compiler wrapper does it once).
    wrapper = tmp_path / "bin" / "editing-gcc"
    wrapper.parent.mkdir()
    wrapper.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        if [ ! -e {tmp_path}/edited ]; then
            touch {tmp_path}/edited
            printf '/* my edit */\\n' >> {tree}/hw/pc.c
        fi
        exec gcc "$@"
        """))
    wrapper.chmod(0o755)
    rewrite_commands(tree, lambda e: compile_hw_pc_once(e).replace("cc ", f"{wrapper} ", 1))
    result = kvmlint("fix", "--unsafe-fixes", "--build-check", "build", str(tree), cwd=tree)
    assert (tmp_path / "edited").exists()
    pc = (tree / "hw" / "pc.c").read_text()
    assert pc.endswith("/* my edit */\n"), "the edit is kept"
    assert ("build-check: stopped: hw/pc.c changed while the build check compiled: kept as it is, "
            "and the check stopped there") in result.stderr, result.stderr
    assert f"left unproven on disk: {MOVE}" in result.stderr, result.stderr
    assert ("not fixed: kvm-all.c:163: KVM002 kvm_allows_irq0_override: its fix is left unproven on disk "
            "(the build check stopped): not proven: the check stopped before judging it") in result.stderr, result.stderr
    assert f"fixed: {MOVE}" not in result.stdout
    assert result.returncode == 1
    assert not list(tree.rglob("*kvmlint-journal*")) and not list(tree.rglob("*.kvmlint-tmp"))


# --- 4. nothing in the build directory makes kvmlint hang or exhaust memory ---------------------

def tree_with_database(tmp_path: Path) -> tuple[Path, Path]:
    tree, build = tmp_path / "qemu", tmp_path / "qemu" / "build"
    build.mkdir(parents=True)
    (tree / "configure").write_text("#!/bin/sh\n")
    (tree / "a.c").write_text("int a;\n")
    return tree, build


@pytest.mark.parametrize("planted", ["fifo", "dev-zero", "sparse"])
def test_a_database_that_is_no_regular_bounded_file_is_a_one_line_error(tmp_path, planted):
    tree, build = tree_with_database(tmp_path)
    database = build / "compile_commands.json"
    if planted == "fifo":
        os.mkfifo(database)
    elif planted == "dev-zero":
        database.symlink_to("/dev/zero")
    else:
        with open(database, "wb") as stream:
            stream.truncate(2 << 30)
    result = kvmlint("validate-build", str(build), str(tree / "a.c"), cwd=tree, timeout=30)
    assert result.returncode == 2
    expected = {"fifo": "not a regular file", "dev-zero": "a symbolic link, not the build's own file",
                "sparse": "larger than 256 MiB"}[planted]
    assert result.stderr == f"kvmlint: {database}: {expected}\n"


@needs_gcc
@needs_ninja
def test_a_ninja_log_that_is_a_fifo_is_a_warning_not_a_hang(tmp_path):
    tree, build = tree_with_database(tmp_path)
    (build / "compile_commands.json").write_text(json.dumps(
        [{"directory": str(build), "file": "../a.c", "output": "a.o", "command": "gcc -c ../a.c -o a.o"}]))
    (build / "build.ninja").write_text("rule cc\n  command = gcc -c $in -o $out\nbuild a.o: cc ../a.c\n")
    os.mkfifo(build / ".ninja_deps")
    header = tree / "a.h"
    header.write_text("int h;\n")
    result = kvmlint("validate-build", str(build), str(header), cwd=tree, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"kvmlint: warning: {build / '.ninja_deps'}: not a regular file; the include graph says which units" in result.stderr


@needs_ninja
def test_ninja_is_stopped_at_its_timeout(tmp_path, monkeypatch):
    """A log in a format kvmlint does not read is listed by `ninja -t deps`: a manifest that
    includes a FIFO makes ninja wait forever, unless it is stopped."""
    build = tmp_path / "build"
    build.mkdir()
    os.mkfifo(build / "rules.ninja")
    (build / "build.ninja").write_text("include rules.ninja\n")
    (build / ".ninja_deps").write_bytes(b"# ninjadeps\n" + (99).to_bytes(4, sys.byteorder))
    monkeypatch.setattr(dependencies, "NINJA_TIMEOUT_SECONDS", 2)
    warnings: list[str] = []
    assert dependencies.read_ninja_deps(build, warnings) == {}
    assert warnings == [f"{build / '.ninja_deps'}: `ninja -t deps` did not finish; the include graph says which units "
                        "read a changed header"]
    assert_no_reader(build / "rules.ninja")


def assert_no_reader(fifo: Path) -> None:
    """Soon nothing has the FIFO open for reading: the process and its children were killed."""
    deadline = time.monotonic() + 10
    while True:
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError as error:
            assert error.errno == errno.ENXIO
            return
        assert time.monotonic() < deadline, f"a process still reads {fifo}"
        time.sleep(0.1)


@needs_gcc
def test_a_compiler_that_waits_on_a_fifo_is_stopped_at_its_timeout(tmp_path, monkeypatch):
    tree, build = tree_with_database(tmp_path)
    os.mkfifo(tree / "waits.h")
    (tree / "a.c").write_text('#include "waits.h"\nint a;\n')
    (build / "compile_commands.json").write_text(json.dumps(
        [{"directory": str(build), "file": "../a.c", "output": "a.o", "command": "gcc -c ../a.c -o a.o"}]))
    monkeypatch.setattr(compile_runner, "COMPILE_TIMEOUT_SECONDS", 2)
    database = CompileDatabase([build], tree)
    compiled = compile_units(database.affected([tree / "a.c"]), 1, database.confines)
    assert [f.errors for f in compiled.failures] == ["the compiler did not finish within 2 s; stopped"]
    assert_no_reader(tree / "waits.h")


@needs_gcc
def test_a_depfile_outside_the_build_is_not_read(tmp_path):
    tree, build = tree_with_database(tmp_path)
    (tmp_path / "elsewhere.d").write_text(f"a.o: ../a.c {tree / 'secret.h'}\n")
    (build / "compile_commands.json").write_text(json.dumps(
        [{"directory": str(build), "file": "../a.c", "output": "a.o",
          "command": f"gcc -MD -MF {tmp_path / 'elsewhere.d'} -c ../a.c -o a.o"}]))
    database = CompileDatabase([build], tree)
    assert database.recorded(database.units[0]) is None


MESON_QEMU_COMMAND = (
    "ccache cc -m64 -Ilibqemu-x86_64-softmmu.fa.p -I. -I.. -Itarget/i386 -I../target/i386 -Iqapi -Itrace -Iui/shader "
    "-I/usr/include/glib-2.0 -fdiagnostics-color=auto -Wall -Winvalid-pch -Werror -std=gnu11 -O2 -g "
    "-fstack-protector-strong -Wimplicit-fallthrough=2 -Wshadow=local -Wno-psabi -Wundef -Wvla "
    "-isystem {tree}/linux-headers -isystem linux-headers -iquote . -iquote {tree} -iquote {tree}/include "
    "-iquote {tree}/host/include/x86_64 -pthread -mcx16 -msse2 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 "
    "-fno-strict-aliasing -fno-common -fwrapv -ftrivial-auto-var-init=zero -fzero-call-used-regs=used-gpr -fPIE "
    "-DCOMPILING_PER_TARGET '-DCONFIG_TARGET=\"x86_64-softmmu-config-target.h\"' "
    "-MD -MQ libqemu-x86_64-softmmu.fa.p/target_i386_kvm_kvm.c.o -MF libqemu-x86_64-softmmu.fa.p/target_i386_kvm_kvm.c.o.d "
    "-o libqemu-x86_64-softmmu.fa.p/target_i386_kvm_kvm.c.o -c ../target/i386/kvm/kvm.c"
)
MAKE_2012_COMMAND = (
    "cc -I{tree}/tcg -I{tree}/tcg/i386 -I{tree}/linux-headers -I{tree}/i386-softmmu -I{tree} -I{tree}/target-i386 "
    "-Itarget-i386 -fPIE -DPIE -m64 -D_GNU_SOURCE -Wstrict-prototypes -Wall -Wundef -fno-strict-aliasing "
    "-fstack-protector-all -Wold-style-definition -DNEED_CPU_H -DTARGET_I386 -MMD -MP -MT kvm.o -MF ./kvm.d "
    "-O2 -D_FORTIFY_SOURCE=2 -g -c -o kvm.o {tree}/target-i386/kvm.c"
)


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs cc")
@pytest.mark.parametrize("recorded, directory, source", [
    (MESON_QEMU_COMMAND, "build", "target/i386/kvm/kvm.c"), (MAKE_2012_COMMAND, "i386-softmmu", "target-i386/kvm.c"),
], ids=["meson", "make-2012"])
def test_the_commands_qemu_builds_record_are_run_with_only_their_outputs_moved(tmp_path, recorded, directory, source):
    from kvmlint.validation.compile_command import check_command
    from kvmlint.validation.compile_database import _split_command

    tree = tmp_path / "qemu"
    arguments = _split_command(recorded.format(tree=tree))
    command = check_command(arguments, tree / directory, tree / source, tmp_path / "scratch" / "0", (tree,))
    assert command.executable == shutil.which("cc")
    expected = list(arguments[2 if arguments[0] == "ccache" else 1:])  # ccache in front is dropped
    expected[expected.index("-o") + 1] = f"{tmp_path}/scratch/0.o"
    expected[expected.index("-MF") + 1] = f"{tmp_path}/scratch/0.d"
    assert command.arguments == (shutil.which("cc"), *expected, "-g0")


@needs_gcc
def test_ctrl_c_stops_the_compilers_at_once(tmp_path):
    """The compilers run in a session of their own (so that a timeout kills their children too),
    which the terminal's Ctrl-C does not reach: kvmlint stops them itself."""
    tree, build = tree_with_database(tmp_path)
    os.mkfifo(tree / "waits.h")
    (tree / "a.c").write_text('#include "waits.h"\nint a;\n')
    (build / "compile_commands.json").write_text(json.dumps(
        [{"directory": str(build), "file": "../a.c", "output": "a.o", "command": "gcc -c ../a.c -o a.o"}]))
    running = subprocess.Popen([sys.executable, "-m", "kvmlint", "validate-build", str(build), str(tree / "a.c")],
                               cwd=tree, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while True:  # until gcc opens the header; held open, it then waits for input that never comes
        try:
            writer = os.open(tree / "waits.h", os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:
            assert time.monotonic() < deadline and running.poll() is None, "gcc never opened the header"
            time.sleep(0.1)
    try:
        running.send_signal(signal.SIGINT)
        try:
            running.wait(timeout=10)
        finally:
            running.kill()
        assert running.returncode == 2 and running.stderr.read().endswith("kvmlint: aborted\n")
        while True:  # gcc is gone: writing to the header breaks the pipe
            try:
                os.write(writer, b" ")
            except BrokenPipeError:
                break
            assert time.monotonic() < deadline, "gcc still reads the header"
            time.sleep(0.1)
    finally:
        os.close(writer)


# --- a full temporary folder ends in one line, never an internal error -------------------------

FULL_TEMPORARY_FOLDER = """
import errno, os, tempfile
class Full(tempfile.TemporaryDirectory):
    def __init__(self, *args, **options):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
tempfile.TemporaryDirectory = Full
"""


def full_temporary_folder(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(FULL_TEMPORARY_FOLDER)
    return {"PYTHONPATH": os.pathsep.join([str(site), str(Path(__file__).resolve().parents[2])])}


@needs_gcc
def test_no_room_for_the_compilers_outputs_rolls_every_fix_back(tmp_path):
    tree = configured_tree(tmp_path)
    before = sources(tree)
    result = kvmlint("fix", "--unsafe-fixes", "--build-check", "build", str(tree), cwd=tree,
                     env=full_temporary_folder(tmp_path))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    assert "fixed: " not in result.stdout, result.stdout
    assert "not proven: " in result.stderr and "no temporary folder for its outputs (No space left on device)" in result.stderr
    assert sources(tree) == before, "every fix was rolled back"


def test_no_room_for_the_commits_index_is_one_line_and_commits_nothing(tmp_path):
    tree = tmp_path / "qemu"
    shutil.copytree(FIXTURE, tree)
    git = ["git", "-c", "user.name=T", "-c", "user.email=t@example.org"]
    subprocess.run(git + ["init", "-q"], cwd=tree, check=True)
    subprocess.run(git + ["add", "-A"], cwd=tree, check=True)
    subprocess.run(git + ["commit", "-qm", "base"], cwd=tree, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tree, capture_output=True, text=True).stdout
    before = sources(tree)
    env = {**full_temporary_folder(tmp_path), "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.org"}
    result = kvmlint("fix", "--commit", str(tree), cwd=tree, env=env)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    assert "no temporary folder for the commits' index (No space left on device)" in result.stderr
    assert subprocess.run(["git", "rev-parse", "HEAD"], cwd=tree, capture_output=True, text=True).stdout == head
    assert sources(tree) == before, "the fixes are undone"
