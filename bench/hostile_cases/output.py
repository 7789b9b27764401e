"""Where kvmlint writes: the tree's configuration aiming the report at the repository, a tracked
file, a source or through a link; names that JSON could not tell apart; a standard output that
cannot take the report; a compile database broken in ways Python would describe.

The report goes only to a file of kvmlint's own (the configuration's `output-file`), JSON names
every file exactly, and every one of these ends in one line, `kvmlint: ...`, never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from hostile_cases import REPOSITORY, KVMLINT_TIMEOUT_SECONDS, crashed, fixture_tree, kvmlint
from hostile_cases._gitrepo import checkout, git

# What Python's exception text looks like when it reaches the user instead of kvmlint's own words.
PYTHON_TEXT = re.compile(r"codec|Error\b|'\w+' object|indices|not iterable|argument must be|embedded null|Expecting value")


def _one_line(result: subprocess.CompletedProcess, status: int = 2) -> str | None:
    """Why `result` is not kvmlint stopping with one line of its own, or None."""
    problem = crashed(result)
    if problem:
        return problem
    lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
    if result.returncode != status or len(lines) != 1 or not lines[0].startswith("kvmlint: "):
        return f"exit {result.returncode}, not one line: {result.stderr.decode(errors='replace')[-200:]!r}"
    return None


def _files(tree: Path) -> dict[str, bytes]:
    return {p.relative_to(tree).as_posix(): p.read_bytes() for p in sorted(tree.rglob("*")) if p.is_file() and not p.is_symlink()}


def _refused_output_file(folder: Path, tree: Path, output_file: str) -> str | None:
    """`check` with the tree's `output-file`: one line, and no file of the tree (its .git too) changed."""
    (tree / "kvmlint.toml").write_text(f"output-file = {json.dumps(output_file)}\n")
    before = _files(tree)
    result = kvmlint(folder, "check", "--no-cache", ".", cwd=tree)
    problem = _one_line(result)
    if problem:
        return f"output-file = {output_file!r}: {problem}"
    changed = sorted(name for name, data in _files(tree).items() if before.get(name) != data)
    return f"output-file = {output_file!r} changed {', '.join(changed)}" if changed else None


def case_output_file_into_the_repository(folder: Path) -> str | None:
    """A committed kvmlint.toml with `output-file` in .git (a branch, the config, a hook), via a link to .git, or in a bare repository of the tree."""
    tree = checkout(folder)
    (tree / "into-git").symlink_to(".git")
    bare = tree / "vendor" / "bare.git"
    for part in ("objects", "refs/heads"):
        (bare / part).mkdir(parents=True)
    (bare / "HEAD").write_text("ref: refs/heads/main\n")
    for output_file in (".git/refs/heads/master", ".git/config", ".Git/hooks/pre-commit", "into-git/HEAD",
                        "vendor/bare.git/refs/heads/main"):
        problem = _refused_output_file(folder, tree, output_file)
        if problem:
            return problem
    return None


def case_output_file_over_the_trees_files(folder: Path) -> str | None:
    """`output-file` naming a tracked file, a C source, a header, a build file or the configuration itself."""
    tree = checkout(folder)
    (tree / "NOTES.txt").write_text("the tree's notes\n")
    git(folder, tree, "add", "NOTES.txt")
    git(folder, tree, "-c", "user.name=Q. Developer", "-c", "user.email=dev@example.org", "commit", "-q", "-m", "Notes")
    for output_file in ("NOTES.txt", "hw/msi.c", "hw/new.c", "include/new.h", "hw/meson.build", "Makefile.new",
                        "default-configs/new.mak", "kvmlint.toml"):
        problem = _refused_output_file(folder, tree, output_file)
        if problem:
            return problem
    return None


def case_output_file_through_a_link(folder: Path) -> str | None:
    """`report.json -> ../victim.txt` shipped in the tree, named by its `output-file` and by the user's `-o report.json`."""
    tree = fixture_tree("qemu-2012", folder / "qemu")
    victim = folder / "victim.txt"
    victim.write_text("the user's\n")
    (tree / "report.json").symlink_to(victim)
    problem = _refused_output_file(folder, tree, "report.json")
    if problem:
        return problem
    (tree / "kvmlint.toml").unlink()
    problem = _one_line(kvmlint(folder, "check", "--no-cache", "-o", "report.json", ".", cwd=tree))
    if problem:
        return f"-o report.json: {problem}"
    return None if victim.read_text() == "the user's\n" else "the victim outside the tree was overwritten"


def case_nul_in_the_output_file(folder: Path) -> str | None:
    """`output-file = "out\\u0000x"`: one line naming the key."""
    tree = fixture_tree("qemu-2012", folder / "qemu")
    (tree / "kvmlint.toml").write_text('output-file = "out\\u0000x"\n')
    result = kvmlint(folder, "check", "--no-cache", ".", cwd=tree)
    return _one_line(result) or (None if b"'output-file'" in result.stderr else "the message does not name output-file")


def case_json_paths_of_different_files(folder: Path) -> str | None:
    """Files named `m<0xff>si.c` and literally `m\\xffsi.c`: JSON must tell them apart and name each exactly."""
    tree = fixture_tree("qemu-2012", folder / "qemu")
    data = (tree / "hw" / "msi.c").read_bytes()
    names = [b"hw/m\xffsi.c", b"hw/m\\xffsi.c"]
    for name in names:
        (tree / os.fsdecode(name)).write_bytes(data)
    result = kvmlint(folder, "check", "--no-cache", "--format", "json", ".", cwd=tree)
    problem = crashed(result)
    if problem:
        return problem
    paths = {finding["path"] for finding in json.loads(result.stdout)["findings"] if "si.c" in finding["path"]}
    if len(paths) != 3:
        return f"{len(paths)} JSON paths for 3 files: {sorted(paths)}"
    unescaped = {re.sub(rb"\\(\\|x[0-9a-f]{2})", lambda m: b"\\" if m.group(1) == b"\\" else bytes.fromhex(m.group(1)[1:].decode()),
                        path.encode()) for path in paths}
    return None if set(names) <= unescaped else f"the paths do not read back to the names: {sorted(paths)}"


def _run(folder: Path, tree: Path, *args: str, stdout, close_stdout: bool = False) -> subprocess.CompletedProcess:
    """`kvmlint ARGS` with standard output `stdout` (or closed), as `kvmlint()` runs it otherwise."""
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder / "home"),
                   "XDG_CACHE_HOME": str(folder / "home" / ".cache"), "LANG": "C.UTF-8", "PYTHONPATH": str(REPOSITORY)}
    (folder / "home").mkdir(exist_ok=True)
    try:
        return subprocess.run([sys.executable, "-m", "kvmlint", *args], cwd=tree, env=environment, stdout=stdout,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=KVMLINT_TIMEOUT_SECONDS,
                              preexec_fn=(lambda: os.close(1)) if close_stdout else None)
    except subprocess.TimeoutExpired as expired:
        return subprocess.CompletedProcess(expired.cmd, -9, b"", b"timed out")


def case_full_standard_output(folder: Path) -> str | None:
    """`> /dev/full` for check (text, SARIF), scope, explain, model and --help: one line each."""
    if not os.path.exists("/dev/full"):
        return None
    tree = fixture_tree("qemu-2012", folder / "qemu")
    for arguments in (("check", "."), ("check", "--format", "sarif", "."), ("scope", "."), ("explain", "KVM001"),
                      ("model",), ("--help",)):
        with open("/dev/full", "wb") as full:
            problem = _one_line(_run(folder, tree, *arguments, stdout=full))
        if problem:
            return f"{' '.join(arguments)} > /dev/full: {problem}"
    return None


def case_closed_standard_output(folder: Path) -> str | None:
    """`kvmlint check . >&-`: one line, not a report into whatever file takes descriptor 1."""
    tree = fixture_tree("qemu-2012", folder / "qemu")
    problem = _one_line(_run(folder, tree, "check", ".", stdout=None, close_stdout=True))
    return f"check . >&-: {problem}" if problem else None


def case_broken_compile_database(folder: Path) -> str | None:
    """compile_commands.json malformed, not UTF-8, nested deeply, or of the wrong shape: one line each, in kvmlint's words."""
    tree = fixture_tree("qemu-2012", folder / "qemu")
    (tree / "build").mkdir()
    databases = [b"[{]", b"\xff\xfe[]", b"[" * 100000, b"[5]", b'[{"directory": "/b", "command": "cc"}]',
                 b'[{"directory": "/b", "file": "a.c", "arguments": "cc -c a.c"}]',
                 b'[{"directory": "/b", "file": "a.c", "arguments": ["cc", 5]}]',
                 b'[{"directory": "/b", "file": "a.c", "command": 5}]',
                 b'[{"directory": "/b", "file": "a\\u0000.c", "command": "cc"}]']
    for database in databases:
        (tree / "build" / "compile_commands.json").write_bytes(database)
        result = kvmlint(folder, "validate-build", "build", "hw/msi.c", cwd=tree)
        problem = _one_line(result)
        if not problem and PYTHON_TEXT.search(result.stderr.decode(errors="replace")):
            problem = f"Python's words: {result.stderr.decode(errors='replace').strip()[:200]!r}"
        if problem:
            return f"{database[:40]!r}: {problem}"
    return None


CASES = [
    case_output_file_into_the_repository,
    case_output_file_over_the_trees_files,
    case_output_file_through_a_link,
    case_nul_in_the_output_file,
    case_json_paths_of_different_files,
    case_full_standard_output,
    case_closed_standard_output,
    case_broken_compile_database,
]
