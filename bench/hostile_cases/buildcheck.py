"""The build check (`kvmlint fix --build-check`, `kvmlint validate-build`) against a build
directory written by someone else: its recorded commands write nothing there, run nothing but a
compiler, prove no fix they cannot prove, lose no edit, and cannot make kvmlint wait forever or
read without end.

Each case builds a tree and a build directory inside its folder; kvmlint's temporary files go
to the folder's `tmp/`, which must be empty again afterwards.  The cases need gcc (and ninja
where named); without it they report that rather than hold.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

from hostile_cases import KVMLINT_TIMEOUT_SECONDS, REPOSITORY, crashed, kvmlint

BUILD_GATE = REPOSITORY / "fixtures" / "build-gate"
MOVE = "kvm: Move kvm_allows_irq0_override() to target-i386"


# --- set-up --------------------------------------------------------------------------------

def _tree(folder: Path, commands: dict[str, str]) -> tuple[Path, Path]:
    """A tree with one C file per entry of `commands` (name -> the command after `gcc`, which
    compiles ../NAME) and a build directory that built each once, long ago."""
    tree, build = folder / "qemu", folder / "qemu" / "build"
    build.mkdir(parents=True)
    (folder / "tmp").mkdir()
    (tree / "configure").write_text("#!/bin/sh\n")
    entries = []
    for name, command in commands.items():
        (tree / name).write_text(f"int {Path(name).stem}(int x);\nint {Path(name).stem}(int x) {{ return x; }}\n")
        for built in (f"{name}.o", f"{name}.o.d", f"{name}.d"):
            (build / built).write_bytes(b"built\n")
            os.utime(build / built, (1_000_000_000, 1_000_000_000))
        full = (command if command.startswith(("sh ", "python3 ", "/", "./"))
                else f"gcc {command}" + ("" if command.startswith("@") else f" -c ../{name}"))
        entries.append({"directory": str(build), "file": str(tree / name), "output": f"{name}.o", "command": full})
    (build / "compile_commands.json").write_text(json.dumps(entries, indent=1))
    return tree, build


def _state(top: Path, leave_out: Path) -> dict[str, tuple]:
    """Every entry under `top` but `leave_out`: bytes and modification time, link target, folder time."""
    found = {}
    for directory, folders, files in os.walk(top):
        for name in folders + files:
            path = Path(directory, name)
            if path == leave_out or leave_out in path.parents:
                continue
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                found[str(path)] = ("link", os.readlink(path))
            elif stat.S_ISREG(info.st_mode):
                found[str(path)] = ("file", path.read_bytes(), info.st_mtime_ns)
            else:
                found[str(path)] = ("entry", info.st_mtime_ns)
    return found


def _validate(folder: Path, tree: Path, build: Path, *files: str) -> tuple[subprocess.CompletedProcess, str | None]:
    """validate-build of `files` (default: every C file); (the result, what changed in the folder)."""
    before = _state(folder, folder / "tmp")
    names = files or tuple(sorted(p.name for p in tree.glob("*.c")))
    result = kvmlint(folder, "validate-build", str(build), *(str(tree / n) for n in names), cwd=tree,
                     env={"TMPDIR": str(folder / "tmp")})
    after = _state(folder, folder / "tmp")
    changed = sorted(set(before) ^ set(after) | {p for p in before if p in after and before[p] != after[p]})
    changed = [p for p in changed if not p.startswith(str(folder / "home"))]
    if list((folder / "tmp").iterdir()):
        changed.append("its temporary directory was left behind")
    return result, (", ".join(Path(p).name for p in changed) or None)


def _needs(*programs: str) -> str | None:
    missing = [p for p in programs if shutil.which(p) is None]
    return f"needs {', '.join(missing)}" if missing else None


def _configured(folder: Path) -> Path:
    tree = folder / "qemu"
    shutil.copytree(BUILD_GATE, tree)
    (tree / "build").mkdir()
    (folder / "tmp").mkdir()
    subprocess.run([str(tree / "configure")], cwd=tree / "build", check=True, capture_output=True)
    return tree


def _rewrite(tree: Path, change) -> None:
    database = tree / "build" / "compile_commands.json"
    entries = json.loads(database.read_text())
    for entry in entries:
        entry["command"] = change(entry)
    database.write_text(json.dumps(entries, indent=1))


def _compile_hw_pc_once(entry: dict) -> str:
    """hw/pc.c without a target's include path: the move of kvm_allows_irq0_override() breaks it."""
    command = entry["command"]
    if entry["file"].endswith("hw/pc.c"):
        for flag in (f"-I{Path(entry['file']).parents[1]}/target-i386", "-DNEED_CPU_H", "-DTARGET_I386", "-DCONFIG_KVM"):
            command = command.replace(" " + flag, "")
    return command


def _sources(tree: Path) -> dict[str, bytes]:
    return {p.relative_to(tree).as_posix(): p.read_bytes() for p in sorted(tree.rglob("*"))
            if p.is_file() and "build" not in p.relative_to(tree).parts and ".kvmlint_cache" not in p.parts}


def _fix(folder: Path, tree: Path) -> subprocess.CompletedProcess:
    return kvmlint(folder, "fix", "--unsafe-fixes", "--build-check", "build", str(tree), cwd=tree,
                   env={"TMPDIR": str(folder / "tmp")})


def _with_timeouts(folder: Path, tree: Path, *arguments: str) -> subprocess.CompletedProcess:
    """kvmlint with the compiler's and ninja's timeouts at 3 s, so that a case can wait them out."""
    program = ("import sys\nfrom kvmlint.validation import compile_runner, dependencies\ncompile_runner.COMPILE_TIMEOUT_SECONDS = 3\n"
               "dependencies.NINJA_TIMEOUT_SECONDS = 3\nfrom kvmlint.cli import main\nsys.argv = ['kvmlint', *sys.argv[1:]]\nmain()\n")
    (folder / "home").mkdir(exist_ok=True)
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder / "home"), "LANG": "C.UTF-8",
                   "PYTHONPATH": str(REPOSITORY), "TMPDIR": str(folder / "tmp"), "XDG_CACHE_HOME": str(folder / "home")}
    try:
        return subprocess.run([sys.executable, "-c", program, *arguments], cwd=tree, capture_output=True, env=environment,
                              stdin=subprocess.DEVNULL, timeout=KVMLINT_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(arguments, -9, b"", b"timed out")


def _text(result: subprocess.CompletedProcess) -> str:
    return (result.stdout + result.stderr).decode("utf-8", "replace")


# --- 1. outputs: every spelling goes to the temporary directory, or nothing runs ---------------

def case_joined_output_spellings(folder: Path) -> str | None:
    """Units whose outputs are spelled joined (-oFILE, -MFFILE, -Wp,-MD,FILE, -aux-info FILE, --output=FILE, @rsp)."""
    if (missing := _needs("gcc")) is not None:
        return missing
    tree, build = _tree(folder, {
        "a.c": "-MD -MFa.c.o.d -oa.c.o", "b.c": "-Wp,-MD,b.c.o.d -o b.c.o", "c.c": "-aux-info c.c.aux -o c.c.o",
        "d.c": "-MMD --output=d.c.o", "e.c": "-aux-info=e.c.aux -MD -oe.c.o", "f.c": "@f.rsp",
    })
    (build / "f.rsp").write_text("-of.c.o -MD -MFf.c.o.d -c ../f.c\n")
    result, changed = _validate(folder, tree, build)
    if problem := crashed(result):
        return problem
    if changed:
        return f"the build directory changed: {changed}"
    if result.returncode != 0 or not result.stdout.startswith(b"6 unit(s) compiled"):
        return "the units were not compiled: " + _text(result).strip()[-200:]
    return None


def case_implicit_and_unredirectable_outputs(folder: Path) -> str | None:
    """Units with -save-temps, -dumpdir, -fdump-*, -fprofile-generate, -ftime-trace, sarif files, -Xclang, -B, -specs."""
    if (missing := _needs("gcc")) is not None:
        return missing
    options = ["-save-temps", "-save-temps=cwd", "-dumpdir x/", "-fdump-tree-all", "-fprofile-generate", "-ftime-trace",
               "-fdiagnostics-format=sarif-file", "-Xclang -load", "-B.", "-specs=x", "-fplugin=x.so", "-Wa,-adhln=x.lst",
               "-E", "-dumpversion"]
    tree, build = _tree(folder, {f"u{n}.c": f"{option} -o u{n}.c.o" for n, option in enumerate(options)})
    result, changed = _validate(folder, tree, build)
    if problem := crashed(result):
        return problem
    if changed:
        return f"the build directory changed: {changed}"
    refused = result.stdout.count(b"cannot check: ")
    if result.returncode != 1 or refused != len(options):
        return f"{refused} of {len(options)} units refused: " + _text(result).strip()[-300:]
    return None


def case_response_file_outside_or_fifo(folder: Path) -> str | None:
    """Response files outside the tree, behind a link, a FIFO, and one naming another."""
    if (missing := _needs("gcc")) is not None:
        return missing
    tree, build = _tree(folder, {"a.c": "@../../outside.rsp", "b.c": "@fifo.rsp", "c.c": "@link.rsp", "d.c": "@nested.rsp"})
    (folder / "outside.rsp").write_text("-oa.c.o -c ../a.c\n")
    os.mkfifo(build / "fifo.rsp")
    (build / "link.rsp").symlink_to(folder / "outside.rsp")
    (build / "nested.rsp").write_text("@link.rsp\n")
    result, changed = _validate(folder, tree, build)
    if problem := crashed(result):
        return problem
    if changed:
        return f"the build directory changed: {changed}"
    if result.stdout.count(b"cannot check: ") != 4:
        return "a response file was used: " + _text(result).strip()[-300:]
    return None


# --- programs: only a C compiler, installed outside the tree ------------------------------------

def case_commands_that_are_not_a_compiler(folder: Path) -> str | None:
    """Entries that run `sh -c`, `python3 -c`, a script of the folder, and a "gcc" shipped in the build directory."""
    if (missing := _needs("gcc")) is not None:
        return missing
    victim = folder / "victim"
    evil = folder / "evil"
    evil.write_text(f"#!/bin/sh\ntouch {victim}\n")
    evil.chmod(0o755)
    tree, build = _tree(folder, {"a.c": f"sh -c 'touch {victim}'", "b.c": f"python3 -c 'open(\"{victim}\", \"w\")'",
                                 "c.c": f"{evil} -c ../c.c", "d.c": "./gcc -c ../d.c -o d.c.o"})
    (build / "gcc").write_text(f"#!/bin/sh\ntouch {victim}\nexec gcc \"$@\"\n")
    (build / "gcc").chmod(0o755)
    result, changed = _validate(folder, tree, build)
    if problem := crashed(result):
        return problem
    if victim.exists():
        return "a recorded command that is not a compiler ran"
    if changed or result.stdout.count(b"cannot check: ") != 4:
        return f"changed: {changed}; " + _text(result).strip()[-300:]
    return None


# --- 2. a unit that cannot prove a fix never counts as proof -----------------------------------

def case_every_unit_fails_without_the_fixes(folder: Path) -> str | None:
    """Every recorded command fails whatever the fixes (a header never generated); the move breaks hw/pc.c."""
    if (missing := _needs("gcc")) is not None:
        return missing
    tree = _configured(folder)
    _rewrite(tree, lambda e: _compile_hw_pc_once(e).replace(" -c ", " -include generated-missing.h -c "))
    before = _sources(tree)
    result = _fix(folder, tree)
    if problem := crashed(result):
        return problem
    if b"fixed: " in result.stdout or result.returncode != 1:
        return "a fix no unit proved was kept: " + result.stdout.decode(errors="replace").strip().splitlines()[0]
    if _sources(tree) != before:
        return "the tree was left changed"
    return None


def case_units_whose_commands_are_not_run(folder: Path) -> str | None:
    """Every recorded command has -save-temps: none is run, so none proves a fix."""
    if (missing := _needs("gcc")) is not None:
        return missing
    tree = _configured(folder)
    _rewrite(tree, lambda e: e["command"].replace(" -c ", " -save-temps -c "))
    before, built = _sources(tree), _state(tree / "build", folder / "tmp")
    result = _fix(folder, tree)
    if problem := crashed(result):
        return problem
    if b"fixed: " in result.stdout or result.returncode != 1:
        return "a fix no unit proved was kept"
    if _sources(tree) != before or _state(tree / "build", folder / "tmp") != built:
        return "the tree or the build directory was left changed"
    return None


# --- 3. an edit made while the check compiles survives the roll-back ---------------------------

def case_edit_while_the_check_compiles(folder: Path) -> str | None:
    """The user saves hw/pc.c while gcc runs (a compiler wrapper does it), and the fix in it does not compile."""
    if (missing := _needs("gcc")) is not None:
        return missing
    tree = _configured(folder)
    wrapper = folder / "bin" / "editing-gcc"
    wrapper.parent.mkdir()
    wrapper.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        if [ ! -e {folder}/edited ]; then
            touch {folder}/edited
            printf '/* my edit */\\n' >> {tree}/hw/pc.c
        fi
        exec gcc "$@"
        """))
    wrapper.chmod(0o755)
    _rewrite(tree, lambda e: _compile_hw_pc_once(e).replace("cc ", f"{wrapper} ", 1))
    result = _fix(folder, tree)
    if problem := crashed(result):
        return problem
    if not (tree / "hw" / "pc.c").read_text().endswith("/* my edit */\n"):
        return "the edit made during the build check was lost"
    if b"changed while the build check compiled" not in result.stderr:
        return "the edit was kept silently: " + result.stderr.decode(errors="replace").strip()[-200:]
    if f"fixed: {MOVE}".encode() in result.stdout:
        return "the move, which does not compile, was reported fixed"
    return None


# --- 4. nothing in the build directory makes kvmlint hang or read without end -----------------

def _database_case(folder: Path, plant) -> str | None:
    tree, build = folder / "qemu", folder / "qemu" / "build"
    build.mkdir(parents=True)
    (folder / "tmp").mkdir()
    (tree / "configure").write_text("#!/bin/sh\n")
    (tree / "a.c").write_text("int a;\n")
    plant(build / "compile_commands.json")
    result = kvmlint(folder, "validate-build", str(build), str(tree / "a.c"), cwd=tree)
    if problem := crashed(result):
        return problem
    lines = result.stderr.decode(errors="replace").splitlines()
    if result.returncode != 2 or len(lines) != 1 or not lines[0].startswith("kvmlint: "):
        return f"not a one-line error (exit {result.returncode}): {lines[:2]}"
    return None


def case_database_is_a_fifo(folder: Path) -> str | None:
    """compile_commands.json is a FIFO nobody writes to."""
    return _database_case(folder, os.mkfifo)


def case_database_is_dev_zero(folder: Path) -> str | None:
    """compile_commands.json is a link to /dev/zero."""
    return _database_case(folder, lambda path: path.symlink_to("/dev/zero"))


def case_database_is_a_2_gib_sparse_file(folder: Path) -> str | None:
    """compile_commands.json is a 2 GiB sparse file."""
    def sparse(path: Path) -> None:
        with open(path, "wb") as stream:
            stream.truncate(2 << 30)
    return _database_case(folder, sparse)


def case_ninja_deps_is_a_fifo(folder: Path) -> str | None:
    """A ninja build whose .ninja_deps is a FIFO (`ninja -t deps` would wait on it forever)."""
    if (missing := _needs("gcc", "ninja")) is not None:
        return missing
    tree, build = _tree(folder, {"a.c": "-o a.c.o"})
    (build / "build.ninja").write_text("rule cc\n  command = gcc -c $in -o $out\nbuild a.c.o: cc ../a.c\n")
    os.mkfifo(build / ".ninja_deps")
    (tree / "a.h").write_text("int h;\n")
    result, changed = _validate(folder, tree, build, "a.h")
    if problem := crashed(result):
        return problem
    if changed or result.returncode != 0 or b"warning: " not in result.stderr:
        return f"changed: {changed}; " + _text(result).strip()[-200:]
    return None


def case_ninja_manifest_includes_a_fifo(folder: Path) -> str | None:
    """A ninja log in a format kvmlint does not read, and a manifest that includes a FIFO: ninja waits."""
    if (missing := _needs("gcc", "ninja")) is not None:
        return missing
    tree, build = _tree(folder, {"a.c": "-o a.c.o"})
    (build / "build.ninja").write_text("include rules.ninja\n")
    os.mkfifo(build / "rules.ninja")
    (build / ".ninja_deps").write_bytes(b"# ninjadeps\n" + (99).to_bytes(4, sys.byteorder))
    (tree / "a.h").write_text("int h;\n")
    result = _with_timeouts(folder, tree, "validate-build", str(build), str(tree / "a.h"))
    if problem := crashed(result):
        return problem
    if b"`ninja -t deps` did not finish" not in result.stderr:
        return "ninja was not stopped: " + _text(result).strip()[-200:]
    return None


def case_compiler_reads_a_fifo_header(folder: Path) -> str | None:
    """A changed source includes a header that is a FIFO: gcc would wait on it forever."""
    if (missing := _needs("gcc")) is not None:
        return missing
    tree, build = _tree(folder, {"a.c": "-o a.c.o"})
    os.mkfifo(tree / "waits.h")
    (tree / "a.c").write_text('#include "waits.h"\nint a;\n')
    result = _with_timeouts(folder, tree, "validate-build", str(build), str(tree / "a.c"))
    if problem := crashed(result):
        return problem
    if result.returncode != 1 or b"the compiler did not finish within 3 s" not in result.stdout:
        return "the compiler was not stopped: " + _text(result).strip()[-200:]
    return None


CASES = [
    case_joined_output_spellings,
    case_implicit_and_unredirectable_outputs,
    case_response_file_outside_or_fifo,
    case_commands_that_are_not_a_compiler,
    case_every_unit_fails_without_the_fixes,
    case_units_whose_commands_are_not_run,
    case_edit_while_the_check_compiles,
    case_database_is_a_fifo,
    case_database_is_dev_zero,
    case_database_is_a_2_gib_sparse_file,
    case_ninja_deps_is_a_fifo,
    case_ninja_manifest_includes_a_fifo,
    case_compiler_reads_a_fifo_header,
]
