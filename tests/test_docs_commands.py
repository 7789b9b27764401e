"""Every command example of the README and docs/*.md runs as shown, on the bundled sample tree.

The convention the documents follow:
- a ```sh block is a list of commands, one a line (a `# comment` may follow); each runs on its own, in a
  fresh copy of the sample tree;
- a ```console block is a session: `$ command` lines, run in order in one copy, each followed by what it
  prints (standard output and standard error), which must be what the command prints;
- a synopsis, with placeholders (`[PATH...]`, `FILE|-`), is a ```text block, and is not run.
The copy is a git repository with one commit, on `master`, with `origin/master` at that commit.  Commands of
programs other than kvmlint are not run; NOT_RUN lists each with the reason, and a command of any other
program fails the test, so a new example either runs or is listed here.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent.parent
DOCUMENTS = [HERE / "README.md", *sorted((HERE / "docs").glob("*.md"))]
SAMPLE = HERE / "fixtures" / "qemu-snippets" / "qemu-2012"
NOT_RUN = {
    "./run.sh": "sets up .venv with pip (network), then checks the sample: what this suite's set-up already did",
    "./run-tests.sh": "sets up .venv with pip (network) and runs this suite",
    "pip": "installs from a package index (network)",
    "pre-commit": "installs hooks and environments (network)",
    "apt-get": "installs system packages (network, root)",
    "mkdir": "the first step of configuring a QEMU build (`../configure`), which needs a real QEMU tree",
    "ninja": "builds a configured QEMU tree",
}
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Q. Developer", "GIT_AUTHOR_EMAIL": "dev@example.org",
    "GIT_COMMITTER_NAME": "Q. Developer", "GIT_COMMITTER_EMAIL": "dev@example.org",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}


def blocks(language: str):
    for document in DOCUMENTS:
        text = document.read_text()
        for match in re.finditer(rf"^```{language}\n(.*?)^```", text, re.S | re.M):
            yield document, text.count("\n", 0, match.start()) + 1, match.group(1)


def sh_commands():
    for document, line, block in blocks("sh"):
        for offset, command in enumerate(block.splitlines(), 1):
            command = re.sub(r"\s+#.*$", "", command).strip()
            if command:
                yield pytest.param(command, id=f"{document.name}:{line + offset}:{command[:40]}")


def console_sessions():
    for document, line, block in blocks("console"):
        session: list[tuple[str, list[str]]] = []
        for text in block.splitlines():
            if text.startswith("$ "):
                session.append((text[2:], []))
            else:
                assert session, f"{document.name}:{line}: a console block starts with a `$ ` command"
                session[-1][1].append(text)
        yield pytest.param(session, id=f"{document.name}:{line}")


def sample_repository(directory: Path) -> Path:
    tree = directory / "qemu"
    shutil.copytree(SAMPLE, tree)
    for args in (["init", "-q", "-b", "master"], ["add", "-A"], ["commit", "-q", "-m", "sample"],
                 ["update-ref", "refs/remotes/origin/master", "HEAD"]):
        subprocess.run(["git", *args], cwd=tree, env={**os.environ, **GIT_ENV}, check=True, capture_output=True)
    return tree


def run(tree: Path, command: str, cache: Path) -> subprocess.CompletedProcess:
    """`command` as a user types it, with this suite's kvmlint first on PATH; output in the order printed."""
    words = shlex.split(command)
    assert words[0] == "kvmlint", command
    environment = {**os.environ, **GIT_ENV, "PYTHONUNBUFFERED": "1", "KVMLINT_CACHE_DIR": str(cache),
                   "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([sys.executable, "-m", "kvmlint", *words[1:]], cwd=tree, env=environment,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.mark.parametrize("command", list(sh_commands()))
def test_a_command_example_runs_as_shown(tmp_path, cache, command):
    program = shlex.split(command)[0]
    if program != "kvmlint":
        assert program in NOT_RUN, f"{command!r}: runs neither here nor is listed in NOT_RUN with why"
        pytest.skip(f"not run: {NOT_RUN[program]}")
    done = run(sample_repository(tmp_path), command, cache)
    assert done.returncode in (0, 1), done.stdout
    assert "Traceback" not in done.stdout


@pytest.mark.parametrize("session", list(console_sessions()))
def test_a_console_example_prints_what_it_shows(tmp_path, cache, session):
    tree = sample_repository(tmp_path)
    for command, shown in session:
        done = run(tree, command, cache)
        assert done.returncode in (0, 1), done.stdout
        assert done.stdout.splitlines() == shown, command


def test_the_documents_hold_command_examples_of_each_kind():
    commands = [param.values[0] for param in sh_commands()]
    assert sum(command.startswith("kvmlint ") for command in commands) >= 8
    assert list(console_sessions())
