"""Issue 18, what kvmlint writes: a tree's configuration cannot aim the report at the repository or
at a source, JSON and SARIF name every file exactly, a standard output that cannot take the report
is one line, and a broken compile database is one line naming the file.

Every run is a subprocess under CPU-time and address-space limits and a timeout; each hostile tree
is built in tmp_path.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
FIXTURES = REPOSITORY / "fixtures" / "qemu-snippets"
CPU_SECONDS = 60
MEMORY_BYTES = 2 << 30
USER_CONFIG = "[user]\n\tname = Q. Developer\n\temail = dev@example.org\n"
PROXY_FUNCTION = "int probe_proxy(void)\n{\n    return kvm_irqchip_in_kernel();\n}\n"


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


def _environment(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / ".gitconfig").write_text(USER_CONFIG)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "LANG": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
        "PYTHONPATH": str(REPOSITORY),
    }


def kvmlint(tmp_path: Path, *args: str, cwd: Path, preexec_fn=_limit, **streams) -> subprocess.CompletedProcess:
    streams.setdefault("stdout", subprocess.PIPE)
    streams.setdefault("stderr", subprocess.PIPE)
    return subprocess.run([sys.executable, "-m", "kvmlint", *map(str, args)], cwd=cwd, env=_environment(tmp_path),
                          stdin=subprocess.DEVNULL, timeout=120, preexec_fn=preexec_fn, **streams)


def git(tmp_path: Path, tree: Path, *args: str) -> None:
    done = subprocess.run(["git", *args], cwd=tree, env=_environment(tmp_path), capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")


def tree_of(tmp_path: Path, name: str = "qemu") -> Path:
    tree = tmp_path / name
    shutil.copytree(FIXTURES / "qemu-2012", tree, ignore=shutil.ignore_patterns(".kvmlint_cache"))
    return tree


def checkout(tmp_path: Path) -> Path:
    tree = tree_of(tmp_path)
    git(tmp_path, tree, "init", "-q", "-b", "master")
    git(tmp_path, tree, "add", "-A")
    git(tmp_path, tree, "commit", "-q", "-m", "Initial import")
    return tree


def one_line(result: subprocess.CompletedProcess, status: int = 2) -> str:
    """The line kvmlint ended with (`kvmlint: ...`), after checking that every line on stderr is one of
    kvmlint's own, none a traceback."""
    stderr = result.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr and "internal error" not in stderr and "Exception ignored" not in stderr, stderr
    assert result.returncode == status, (result.returncode, stderr)
    lines = stderr.splitlines()
    assert lines and all(line.startswith("kvmlint: ") for line in lines), stderr
    return lines[-1]


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink()}


# --- standard output --------------------------------------------------------------------------------

@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("arguments", [("check", "."), ("check", "--format", "sarif", "."), ("scope", "."),
                                       ("explain", "KVM001"), ("rules",), ("model",), ("fix", "--diff", "."),
                                       ("--help",), ("--version",), ("check", "--help")], ids=" ".join)
def test_a_full_standard_output_is_one_line(tmp_path, arguments):
    tree = tree_of(tmp_path)
    with open("/dev/full", "wb") as full:
        result = kvmlint(tmp_path, *arguments, cwd=tree, stdout=full)
    assert one_line(result) == "kvmlint: cannot write output: No space left on device"


def test_a_closed_standard_output_is_refused_in_one_line(tmp_path):
    tree = tree_of(tmp_path)

    def closed_stdout() -> None:
        _limit()
        os.close(1)

    result = kvmlint(tmp_path, "check", ".", cwd=tree, stdout=None, preexec_fn=closed_stdout)
    assert "standard output is closed" in one_line(result)


def test_closed_standard_input_and_error_are_no_internal_error(tmp_path):
    """`2>&- <&-`: the report still comes, with the findings' exit status."""
    tree = tree_of(tmp_path)

    def closed_stdin_and_stderr() -> None:
        _limit()
        os.close(0)
        os.close(2)

    result = subprocess.run([sys.executable, "-m", "kvmlint", "check", "--format", "json", "."], cwd=tree,
                            env=_environment(tmp_path), stdout=subprocess.PIPE, timeout=120,
                            preexec_fn=closed_stdin_and_stderr)
    assert result.returncode == 1 and json.loads(result.stdout)["findings"]


@pytest.mark.parametrize("arguments", [("check", "--format", "sarif", "."), ("rules",), ("explain", "KVM003"),
                                       ("--help",)], ids=" ".join)
def test_a_reader_that_went_away_ends_kvmlint_quietly_with_status_1(tmp_path, arguments):
    """`kvmlint ... | true`: status 1 and nothing on stderr, as other tools."""
    tree = tree_of(tmp_path)
    reader, writer = os.pipe()
    os.close(reader)
    with open(writer, "wb") as stdout:
        result = kvmlint(tmp_path, *arguments, cwd=tree, stdout=stdout)
    assert result.returncode == 1 and result.stderr == b"", result.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_standard_error_does_not_change_the_answer(tmp_path):
    tree = tree_of(tmp_path)
    with open("/dev/full", "wb") as full:
        result = kvmlint(tmp_path, "check", "--statistics", "--format", "json", ".", cwd=tree, stderr=full)
    assert result.returncode == 1 and json.loads(result.stdout)["findings"]


# --- the tree's output-file -------------------------------------------------------------------------

def test_the_trees_output_file_cannot_overwrite_the_repository(tmp_path):
    """A committed `output-file = ".git/refs/heads/master"`: refused, the branch kept."""
    tree = checkout(tmp_path)
    (tree / "kvmlint.toml").write_text('output-file = ".git/refs/heads/master"\nformat = "json"\n')
    git(tmp_path, tree, "add", "kvmlint.toml")
    git(tmp_path, tree, "commit", "-q", "-m", "Add kvmlint configuration")
    branch = (tree / ".git" / "refs" / "heads" / "master").read_bytes()
    result = kvmlint(tmp_path, "check", ".", cwd=tree)
    assert one_line(result) == "kvmlint: kvmlint.toml: 'output-file' must not name git's or kvmlint's own files"
    assert (tree / ".git" / "refs" / "heads" / "master").read_bytes() == branch


@pytest.mark.parametrize("output_file, problem", [
    (".git/config", "git's or kvmlint's own files"),
    (".Git/hooks/pre-commit", "git's or kvmlint's own files"),
    ("hw/../.git/HEAD", "git's or kvmlint's own files"),
    ("into-git/config", "git's or kvmlint's own files"),  # a link of the tree's to .git
    (".gitattributes", "git's or kvmlint's own files"),
    (".kvmlint-fix.lock", "git's or kvmlint's own files"),
    ("vendor/bare.git/refs/heads/main", "a file in a git repository's folder"),
    ("vendor/hidden/HEAD", "a file in a git repository's folder"),
    ("hw/new.c", "a source, build or configuration file"),
    ("include/new.h", "a source, build or configuration file"),
    ("hw/new.c.inc", "a source, build or configuration file"),
    ("scripts/new.py", "a source, build or configuration file"),
    ("hw/meson.build", "a source, build or configuration file"),
    ("Makefile.new", "a source, build or configuration file"),
    ("Kconfig.host", "a source, build or configuration file"),
    ("default-configs/new.mak", "a source, build or configuration file"),
    ("configure", "a source, build or configuration file"),
    ("kvmlint.toml", "a source, build or configuration file"),
    ("NOTES.txt", "a file git tracks (NOTES.txt)"),
    ("report-link.txt", "a symlink (report-link.txt)"),
    ("out\0x", "must not contain a NUL character"),
])
def test_the_trees_output_file_is_refused_where_the_report_would_replace_someone_elses_file(tmp_path, output_file, problem):
    tree = checkout(tmp_path)
    (tree / "NOTES.txt").write_text("the tree's notes\n")
    git(tmp_path, tree, "add", "NOTES.txt")
    git(tmp_path, tree, "commit", "-q", "-m", "Notes")
    for repository in (tree / "vendor" / "bare.git", tree / "vendor" / "hidden"):
        (repository / "objects").mkdir(parents=True)
        (repository / "refs" / "heads").mkdir(parents=True)
        (repository / "HEAD").write_text("ref: refs/heads/main\n")
    (tree / "into-git").symlink_to(".git")
    (tree / "report-link.txt").symlink_to("NOTES.txt")
    (tree / "kvmlint.toml").write_text(f'output-file = {json.dumps(output_file)}\n')
    before = files_of(tree)
    result = kvmlint(tmp_path, "check", ".", cwd=tree)
    assert problem in one_line(result) and "'output-file'" in one_line(result)
    assert files_of(tree) == before


def test_the_trees_output_file_of_its_own_name_is_still_written(tmp_path):
    """Untracked and named as a report, the file is written (and written again on the next run)."""
    tree = checkout(tmp_path)
    (tree / "reports").mkdir()
    (tree / "kvmlint.toml").write_text('output-file = "reports/kvmlint.json"\nformat = "json"\n')
    for _ in range(2):
        result = kvmlint(tmp_path, "check", ".", cwd=tree)
        assert result.returncode == 1 and result.stdout == b"", result.stderr
        assert json.loads((tree / "reports" / "kvmlint.json").read_text())["findings"]


def test_a_link_the_tree_planted_where_the_user_names_the_report_is_refused(tmp_path):
    """`kvmlint check -o report.json` in a tree that ships `report.json -> ../victim`: refused."""
    tree = tree_of(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's\n")
    (tree / "report.json").symlink_to(victim)
    result = kvmlint(tmp_path, "check", "-o", "report.json", ".", cwd=tree)
    assert "is a symlink" in one_line(result) and "nothing written" in one_line(result)
    assert victim.read_text() == "the user's\n" and (tree / "report.json").is_symlink()



# --- exact names in machine formats -----------------------------------------------------------------

ODD_NAMES = [b"hw/m\xffsi.c", b"hw/m\\xffsi.c", b"hw/back\\\\slash.c", b"hw/caf\xc3\xa9.c", b"hw/nl\nname.c"]


def name_bytes(path: str) -> bytes:
    """A JSON `path` back to the file name's bytes: `\\\\` is a backslash, `\\xNN` a byte, the rest UTF-8."""
    return re.sub(rb"\\(\\|x[0-9a-f]{2})", lambda m: b"\\" if m.group(1) == b"\\" else bytes.fromhex(m.group(1)[1:].decode()),
                  path.encode("utf-8"))


@pytest.fixture
def odd_names(tmp_path) -> Path:
    """A tree whose hw/msi.c (it has a finding) is also under names that are not UTF-8 or hold backslashes."""
    tree = tree_of(tmp_path)
    data = (tree / "hw" / "msi.c").read_bytes()
    for name in ODD_NAMES:
        (tree / os.fsdecode(name)).write_bytes(data)
    return tree


def test_json_paths_read_back_to_the_exact_file_names(tmp_path, odd_names):
    result = kvmlint(tmp_path, "check", "--format", "json", ".", cwd=odd_names)
    paths = {finding["path"] for finding in json.loads(result.stdout)["findings"]}
    assert set(ODD_NAMES) | {b"hw/msi.c"} <= {name_bytes(path) for path in paths}
    assert "hw/m\\xffsi.c" in paths and "hw/m\\\\xffsi.c" in paths  # the byte 0xff, and a backslash, x, f, f
    for path in paths:
        assert (odd_names / os.fsdecode(name_bytes(path))).is_file()


def test_gitlab_paths_read_back_to_the_exact_file_names(tmp_path, odd_names):
    result = kvmlint(tmp_path, "check", "--format", "gitlab", ".", cwd=odd_names)
    paths = {name_bytes(issue["location"]["path"]) for issue in json.loads(result.stdout)}
    assert set(ODD_NAMES) <= paths


def test_sarif_uris_percent_encode_the_exact_bytes(tmp_path, odd_names):
    result = kvmlint(tmp_path, "check", "--format", "sarif", ".", cwd=odd_names)
    uris = {location["physicalLocation"]["artifactLocation"]["uri"]
            for result in json.loads(result.stdout)["runs"][0]["results"] for location in result["locations"]}
    assert all(re.fullmatch(r"[A-Za-z0-9/\-._~!$&'()*+,;=:@%]+", uri) for uri in uris), uris
    assert set(ODD_NAMES) <= {unquote_to_bytes(uri) for uri in uris}


# --- a broken compile database ----------------------------------------------------------------------

PYTHON_TEXT = re.compile(r"codec|Error\b|'\w+' object|indices|not iterable|argument must be|embedded null|\('|\\x00")


@pytest.mark.parametrize("database, problem", [
    (b"[{]", "not valid JSON (Expecting property name enclosed in double quotes at line 1, column 3)"),
    (b'[\n  {"directory": "/b", "file": "a.c",\n   "command": "cc"\n  ]', "not valid JSON (Expecting ',' delimiter at line 4, column 3)"),
    (b"\xff\xfe[]", "not UTF-8 (byte 0)"),
    (b'[{"directory": "/b", "file": "caf\xe9.c", "command": "cc"}]', "not UTF-8 (byte 33)"),
    (b"[" * 200000, "not a compile database: nested too deeply"),
    (b"{}", "not a list of compile commands"),
    (b'"cc -c a.c"', "not a list of compile commands"),
    (b"[5]", 'entry 0 is not an object with "directory", "file" and "arguments" or "command"'),
    (b'[["cc", "-c", "a.c"]]', 'entry 0 is not an object'),
    (b'[{"directory": "/b", "command": "cc -c a.c"}]', 'entry 0 has no "file" string'),
    (b'[{"directory": "/b", "file": 5, "command": "cc -c a.c"}]', 'entry 0 has no "file" string'),
    (b'[{"file": "a.c", "command": "cc -c a.c"}]', 'entry 0 has no "directory" string'),
    (b'[{"directory": ["/b"], "file": "a.c", "command": "cc -c a.c"}]', 'entry 0 has no "directory" string'),
    (b'[{"directory": "build", "file": "a.c", "command": "cc -c a.c"}]', 'entry 0 has a "directory" that is not an absolute path'),
    (b'[{"directory": "/b", "file": "a\\u0000.c", "command": "cc -c a.c"}]', 'entry 0 has a NUL character in its "file"'),
    (b'[{"directory": "/b", "file": "a.c", "output": "a\\u0000.o", "command": "cc -c a.c"}]',
     'entry 0 has a NUL character in its "output"'),
    (b'[{"directory": "/b", "file": "a.c", "arguments": "cc -c a.c"}]', 'entry 0 has "arguments" that are not a list of strings'),
    (b'[{"directory": "/b", "file": "a.c", "arguments": ["cc", 5]}]', 'entry 0 has "arguments" that are not a list of strings'),
    (b'[{"directory": "/b", "file": "a.c", "arguments": []}]', 'entry 0 has "arguments" that are not a list of strings'),
    (b'[{"directory": "/b", "file": "a.c", "arguments": {"cc": 1}}]', 'entry 0 has "arguments" that are not a list of strings'),
    (b'[{"directory": "/b", "file": "a.c", "arguments": ["cc", "-c", "a\\u0000.c"]}]', "entry 0 has a NUL character in its command"),
    (b'[{"directory": "/b", "file": "a.c", "command": 5}]', 'entry 0 has neither "arguments" (a list of strings) nor a "command" string'),
    (b'[{"directory": "/b", "file": "a.c"}]', 'entry 0 has neither "arguments"'),
    (b'[{"directory": "/b", "file": "a.c", "command": "  "}]', 'entry 0 has neither "arguments"'),
], ids=lambda value: value[:40].decode("latin-1") if isinstance(value, bytes) else None)
@pytest.mark.parametrize("command", ["validate-build", "fix"])
def test_a_broken_compile_database_is_one_line_naming_the_file(tmp_path, database, problem, command):
    tree = tree_of(tmp_path)
    (tree / "build").mkdir()
    (tree / "build" / "compile_commands.json").write_bytes(database)
    before = files_of(tree)
    arguments = (("validate-build", "build", "hw/msi.c") if command == "validate-build"
                 else ("fix", "--build-check", "build", "."))
    line = one_line(kvmlint(tmp_path, *arguments, cwd=tree))
    assert line.startswith("kvmlint: ") and f"build/compile_commands.json: {problem}" in line, line
    assert not PYTHON_TEXT.search(line.replace(problem, "")), line
    assert files_of(tree) == before

