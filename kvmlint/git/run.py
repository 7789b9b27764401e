"""Every git command kvmlint runs, with the checked repository's power to run programs taken away.

A checked tree may be anyone's, and its git configuration (`.git/config`, the
files it includes, a submodule's own) can name programs that git runs on a
plain `git status`, `git log` or `git commit`: fsmonitor, hooks, clean
filters, textconv and external diff drivers, signing programs, pagers,
editors, and the transports of a lazy fetch from a promisor remote.  kvmlint
needs file lists, diffs, blobs and, for `fix --commit`, commits of its own:
every command runs with all of those switched off by command-line
configuration (which outranks every file), submodules left alone, no network
transport allowed, and a bound on how long git may take.  A signed commit
uses signing programs from the user's own (global or system) configuration
only (`signing_options`).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

# A git that has not answered by then is stuck (a FIFO as .git/index, a dead network mount).
GIT_TIMEOUT_SECONDS = 120
# The programs git signs (and verifies) with; gpg.program is the older name of gpg.openpgp.program.
SIGNING_PROGRAMS = {
    "gpg.program": "gpg",
    "gpg.openpgp.program": "gpg",
    "gpg.x509.program": "gpgsm",
    "gpg.ssh.program": "ssh-keygen",
    "gpg.ssh.defaultkeycommand": "",
}
# Values for `--config-env`, which names the setting whole where `-c` would split it at an "=" in its name.
CONFIG_VALUES = {"": "KVMLINT_GIT_EMPTY", "false": "KVMLINT_GIT_FALSE"}
SAFE_OPTIONS = (
    "--no-pager",
    "-c", "core.fsmonitor=false",
    "-c", "core.hooksPath=" + os.devnull,
    "-c", "diff.external=",
    "-c", "core.quotePath=false",
    # no signature made or checked, and no signing program of the repository's, should one be asked for
    "-c", "commit.gpgSign=false",
    "-c", "tag.gpgSign=false",
    "-c", "log.showSignature=false",
    *(option for key in SIGNING_PROGRAMS for option in ("-c", f"{key}=")),
    # a submodule is another repository, with its own configuration: never entered
    "-c", "submodule.recurse=false",
    "-c", "diff.ignoreSubmodules=all",
    "-c", "status.submoduleSummary=false",
    # no network: a lazy fetch of a missing blob fails instead of running a transport
    "-c", "protocol.allow=never",
    "-c", "credential.helper=",
    "-c", "core.askPass=",
    "-c", "core.alternateRefsCommand=",
    # no `git gc --auto` (nor its pre-auto-gc hook) after an object is written
    "-c", "gc.auto=0",
    "-c", "maintenance.auto=false",
)
ENVIRONMENT = {
    "GIT_OPTIONAL_LOCKS": "0",  # no index refresh written by a read-only command
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_EDITOR": ":",  # these outrank core.editor and sequence.editor
    "GIT_SEQUENCE_EDITOR": ":",
    "GIT_ALLOW_PROTOCOL": "",  # outranks every protocol.<name>.allow the repository sets
    "GIT_NO_LAZY_FETCH": "1",  # git 2.44 and later: not even tried
    **{variable: value for value, variable in CONFIG_VALUES.items()},
}
# Options for `git diff`: no external diff program, no textconv filter, no submodule.
SAFE_DIFF_OPTIONS = ("--no-ext-diff", "--no-textconv", "--no-color", "--ignore-submodules=all")
# Options for `git status`: a submodule's own configuration and filters stay out of it.
SAFE_STATUS_OPTIONS = ("--ignore-submodules=all",)


class GitError(Exception):
    """git is missing, stuck or failed; the message says which, in one line."""


@dataclass(frozen=True)
class PrivateIndex:
    """An index and an object directory of kvmlint's own, in a temporary folder.

    git run with them (`run_git(..., private=)`) reads and writes that index
    instead of the repository's, and writes every new object (an applied
    patch's blobs, a tree) into that directory, reading the repository's
    objects through its `info/alternates`: neither the repository's index nor
    its object store changes.
    """

    index_file: Path
    object_directory: Path

    @classmethod
    def create(cls, folder: Path, repository_objects: Path) -> PrivateIndex:
        objects = folder / "objects"
        (objects / "info").mkdir(parents=True)
        (objects / "info" / "alternates").write_text(f"{repository_objects.resolve()}\n")
        return cls(folder / "index", objects)


def run_git(root: Path, *args: str, input: bytes | None = None,
            index_file: Path | None = None, private: PrivateIndex | None = None) -> subprocess.CompletedProcess:
    """`git ARGS` run in `root`, whatever its exit status; GitError when git cannot run.
    With `index_file`, git reads and writes that index instead of the repository's; with `private`,
    that index and object directory."""
    if private is not None:
        index_file = private.index_file
        # a split index would write its shared part into the repository's git directory
        args = ("-c", "core.splitIndex=false", *args)
    return _run(["git", *SAFE_OPTIONS, *_filter_overrides(root), *args], root, input, index_file,
                private.object_directory if private is not None else None)


def git_output(root: Path, *args: str) -> bytes:
    """`git ARGS` run in `root`, its standard output; GitError when it fails."""
    result = run_git(root, *args)
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(message[0] if message else f"exit status {result.returncode}")
    return result.stdout


def user_settings(root: Path, pattern: str, kind: str | None = None) -> list[tuple[str, str]]:
    """(name, value) of each setting matching `pattern` that the user's own configuration makes,
    in the order git reads them (the later wins).

    Only the system and global files (and what they include) count; the
    repository's own files are not read.  Names come lower-cased, as git
    prints them; `kind` ("bool", ...) has git normalise the values.
    """
    typed = [f"--type={kind}"] if kind else []
    result = _run(["git", *SAFE_OPTIONS, "config", "--show-scope", "--null", *typed, "--get-regexp", pattern], root)
    records = result.stdout.decode("utf-8", "surrogateescape").split("\0") if result.returncode == 0 else []
    settings = []
    for scope, setting in zip(records[::2], records[1::2]):
        name, _, value = setting.partition("\n")
        if scope in ("system", "global"):
            settings.append((name, value))
    return settings


def signing_options(root: Path) -> list[str]:
    """Options giving git back its signing programs, as the user's own configuration names them.

    For `commit-tree -S`, after SAFE_OPTIONS: each program is the one the
    user's system or global configuration sets, else git's default.
    """
    programs = dict(SIGNING_PROGRAMS)
    for name, value in user_settings(root, r"^gpg\."):
        if name in ("gpg.program", "gpg.openpgp.program"):  # one setting by two names
            programs["gpg.program"] = programs["gpg.openpgp.program"] = value
        elif name in programs:
            programs[name] = value
    return [option for name, value in programs.items() for option in ("-c", f"{name}={value}")]


def _filter_overrides(root: Path) -> list[str]:
    """`-c filter.NAME.clean=` (and smudge, process, required) for every filter the configuration defines.

    A clean filter runs whenever git reads a work-tree file for a diff, and
    only configuration naming it can switch it off; a filter marked required
    would then stop git instead.  Reading configuration runs nothing.
    """
    result = _run(["git", *SAFE_OPTIONS, "config", "--null", "--name-only", "--get-regexp", r"^filter\."], root)
    names = result.stdout.decode("utf-8", "surrogateescape").split("\0") if result.returncode == 0 else []
    drivers = {name.rsplit(".", 1)[0] for name in names if name.count(".") >= 2}
    options = []
    for driver in sorted(drivers):
        for key, value in (("clean", ""), ("smudge", ""), ("process", ""), ("required", "false")):
            setting = f"{driver}.{key}"
            # git 2.31 and later; an older git stops at the option, running nothing
            options += [f"--config-env={setting}={CONFIG_VALUES[value]}"] if "=" in setting else ["-c", f"{setting}={value}"]
    return options


def _run(command: list[str], root: Path, input: bytes | None = None,
         index_file: Path | None = None, object_directory: Path | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, **ENVIRONMENT}
    if index_file is not None:
        environment["GIT_INDEX_FILE"] = str(index_file)
    if object_directory is not None:
        environment["GIT_OBJECT_DIRECTORY"] = str(object_directory)
    try:
        return subprocess.run(
            command,
            cwd=root,
            capture_output=True,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            timeout=GIT_TIMEOUT_SECONDS,
            env=environment,
        )
    except FileNotFoundError:
        raise GitError("git was not found") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git did not answer within {GIT_TIMEOUT_SECONDS} s") from None
    except OSError as error:
        raise GitError(f"git cannot be run ({error.strerror or error})") from None
