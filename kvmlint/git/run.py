"""Every git command kvmlint runs, with the checked repository's power to run programs taken away.

A checked tree may be anyone's, and its git configuration (`.git/config`, the
files it includes, a submodule's own) can name programs that git runs on a
plain `git status`, `git log` or `git commit`: fsmonitor, hooks, clean
filters, textconv and external diff drivers, signing programs, pagers,
editors, and the transports of a lazy fetch from a promisor remote.  kvmlint
needs file lists, diffs, blobs and, for `fix --commit`, commits of its own:
every command runs with all of those switched off by command-line
configuration (which outranks every file), submodules left alone, no network
transport allowed, and bounds on how long git may take and how much it may
print.  Before the first command in a tree, the configuration files git will
read for it are checked (`repository.require_readable_configuration`): none
may be a FIFO or a device git would wait on or read without end.  A signed commit
uses signing programs from the user's own (global or system) configuration
only (`signing_options`).
"""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from kvmlint.errors import UsageError
from kvmlint.git.repository import require_readable_configuration

# A git that has not answered by then is stuck (a FIFO as .git/index, a dead network mount);
# KVMLINT_GIT_TIMEOUT_SECONDS gives a slow file system more.
GIT_TIMEOUT_SECONDS = 120
# More than any diff or set of blobs kvmlint reads (a source file is at most 8 MiB): git is
# reading something without end.
MAX_OUTPUT_BYTES = 512 << 20
MAX_ERROR_BYTES = 64 << 10
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
    # no file of the configuration's choosing read for what does not change kvmlint's answer
    "-c", "diff.orderFile=" + os.devnull,
    "-c", "log.mailmap=false",
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
    """git is missing or cannot run; the message says which, in one line.  A git that is stuck,
    or prints without end, is a UsageError: no caller goes on without it."""


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
    return _run(["git", *SAFE_OPTIONS, *_repository_options(root), *args], root, input, index_file,
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
    _repository_options(root)  # git reads the repository's configuration too: checked first
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


@lru_cache(maxsize=16)
def _repository_options(root: Path) -> tuple[str, ...]:
    """The options every git command in `root` gets after SAFE_OPTIONS, once the files git
    reads for its configuration are checked (require_readable_configuration)."""
    checked = require_readable_configuration(root)
    return (*checked, *_filter_overrides(root, checked))


def _filter_overrides(root: Path, checked: list[str]) -> list[str]:
    """`-c filter.NAME.clean=` (and smudge, process, required) for every filter the configuration defines.

    A clean filter runs whenever git reads a work-tree file for a diff, and
    only configuration naming it can switch it off; a filter marked required
    would then stop git instead.  Reading configuration runs nothing.
    """
    result = _run(["git", *SAFE_OPTIONS, *checked, "config", "--null", "--name-only", "--get-regexp", r"^filter\."], root)
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
    """`command`, its output read as it comes, at most MAX_OUTPUT_BYTES of it, within the timeout:
    a git stuck or reading without end stops kvmlint with one line (UsageError)."""
    environment = {**os.environ, **ENVIRONMENT}
    if index_file is not None:
        environment["GIT_INDEX_FILE"] = str(index_file)
    if object_directory is not None:
        environment["GIT_OBJECT_DIRECTORY"] = str(object_directory)
    timeout = _timeout()
    try:
        process = subprocess.Popen(
            command,
            cwd=root,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
        )
    except FileNotFoundError:
        raise GitError("git was not found") from None
    except OSError as error:
        raise GitError(f"git cannot be run ({error.strerror or error})") from None
    with process:
        try:
            stdout, stderr = _communicate(process, input, time.monotonic() + timeout)
        except _Unbounded as why:
            process.kill()
            process.wait()
            raise UsageError(f"git {_subcommand(command)} in {root}: {why}") from None
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


class _Unbounded(Exception):
    """git took too long, or printed too much."""


def _communicate(process: subprocess.Popen, input: bytes | None, deadline: float) -> tuple[bytes, bytes]:
    """What `process` prints, with `input` written to it, by `deadline`."""
    output = {process.stdout: [], process.stderr: []}
    sizes = dict.fromkeys(output, 0)
    pending = memoryview(input or b"")
    with selectors.DefaultSelector() as selector:
        if process.stdin is not None:
            os.set_blocking(process.stdin.fileno(), False)
            selector.register(process.stdin, selectors.EVENT_WRITE)
        for stream in output:
            selector.register(stream, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Unbounded(f"did not answer within {_timeout():g} s")
            for key, _ in selector.select(remaining):
                stream = key.fileobj
                if stream is process.stdin:
                    try:
                        pending = pending[os.write(stream.fileno(), pending[:1 << 16]):]
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:
                        pending = pending[:0]  # git stopped reading; its exit status says why
                    if not pending:
                        selector.unregister(stream)
                        stream.close()
                    continue
                chunk = os.read(stream.fileno(), 1 << 16)
                if not chunk:
                    selector.unregister(stream)
                    continue
                sizes[stream] += len(chunk)
                if stream is process.stdout:
                    if sizes[stream] > MAX_OUTPUT_BYTES:
                        raise _Unbounded(f"printed more than {MAX_OUTPUT_BYTES >> 20} MiB")
                    output[stream].append(chunk)
                elif sizes[stream] <= MAX_ERROR_BYTES:
                    output[stream].append(chunk)
    try:
        process.wait(max(deadline - time.monotonic(), 0))
    except subprocess.TimeoutExpired:
        raise _Unbounded(f"did not answer within {_timeout():g} s") from None
    return b"".join(output[process.stdout]), b"".join(output[process.stderr])


def _timeout() -> float:
    try:
        return max(float(os.environ.get("KVMLINT_GIT_TIMEOUT_SECONDS", GIT_TIMEOUT_SECONDS)), 1.0)
    except ValueError:
        return GIT_TIMEOUT_SECONDS


def _subcommand(command: list[str]) -> str:
    """The git command's name, after its options (`-c NAME=VALUE` takes two words)."""
    words = iter(command[1:])
    for word in words:
        if word == "-c":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return "command"
