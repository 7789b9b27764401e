"""Prove fixes with the real compiler: recompile what a change touches, as the build does.

A configured QEMU build directory holds `compile_commands.json` (meson writes
it; for a make build `bear -- make` does): one entry per translation unit and
per target, with the exact compiler command.  A change to a file recompiles
every unit whose source it is or that includes it.  Which units include a
header comes from the build's dependency information: ninja's log of them
(`.ninja_deps`, read once for the whole build: ninja deletes the `.d` files
once it has read them) or the `.d` file beside each object (make).  A build that records no
dependencies at all (configured, never built) is read through the include
graph instead, with each command's own include path (a superset: `#if`
branches are not evaluated); in a build that does record them, a unit with
no object was never built, and only a change to its own source compiles it.

Units whose own source changed start compiling at once, while the header
lookup still runs.

Each command runs unchanged except for its outputs, which go to a temporary
directory in every spelling gcc and clang accept, so the build directory's
objects and dependency records stay those of the build, and for debug
information, which it switches off (`-g0`): the object is thrown away, debug
information never decides whether a unit compiles, and producing it costs a
fifth of the compile.  A command whose outputs kvmlint cannot all send there,
or whose program is not a C compiler, is not run (`kvmlint.validation.compile_command`
says what is run); each run has a timeout.  A new C file has no entry of its
own: it is compiled with the commands of the units in its own directory, with
the source swapped.

The build directory is written by whoever configured it: its files are read
only as regular files, not through a symbolic link, and bounded in size.

A unit that reads a changed header but whose own source is unchanged is
often one of hundreds.  When the header's change is declarations (and macros
the unit neither expands nor tests, which `-E -dU` shows), the unit gets the
compiler's front end alone (`-fsyntax-only`), which finds every error such a
change can cause; `kvmlint.validation.change_kind` says why.  Every other unit runs its
whole command.  What changed is read against the text the fix started from,
or, for `validate-build`, against git's HEAD; `--full-compile` turns this off.

For `kvmlint fix --build-check`, every change set is written, the affected
units are compiled in parallel, and change sets whose units fail are rolled
back one by one (with any change set built on top of them), each with the
compiler's first error lines.  A unit that fails without the fixes too, or
that is not run, proves nothing: the change sets it reads are rolled back as
not proven.  A roll-back rewrites a file only while it holds what kvmlint
wrote there: an edit made meanwhile is kept, and the check stops.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

from kvmlint.codemods import transaction
from kvmlint.codemods.engine import ChangeSet, Plan
from kvmlint.errors import UsageError
from kvmlint.files import UnreadableFile, read_regular_file
from kvmlint.git.run import SAFE_STATUS_OPTIONS, GitError, git_output, run_git
from kvmlint.source.discover import is_c_file
from kvmlint.terminal import for_terminal, lines_for_terminal
from kvmlint.validation.change_kind import CODE_CHANGE, ChangeKind, classify
from kvmlint.validation.compile_command import (
    CACHE_NAMES,
    CheckCommand,
    UnsafeCommand,
    check_command,
    read_build_file,
    within,
)

DATABASE = "compile_commands.json"
NINJA_DEPS_LOG = ".ninja_deps"
ERROR_LINES = 4
INCLUDE = re.compile(rb'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"\n]+)[>"]', re.MULTILINE)
OUTPUT_OPTIONS = ("-o", "-MF")
# Bounds on what the build directory holds (a full QEMU build's database is about 100 MiB) and on
# the programs run: a compiler that reads a FIFO, or a ninja that does, would wait forever.
DATABASE_MAX_BYTES = 256 * 1024 * 1024
NINJA_DEPS_MAX_BYTES = 256 * 1024 * 1024
NINJA_DEPS_TEXT_MAX_BYTES = 1024 * 1024 * 1024
DEPFILE_MAX_BYTES = 8 * 1024 * 1024
COMPILER_MESSAGES_MAX_BYTES = 1024 * 1024
COMPILE_TIMEOUT_SECONDS = 600.0
NINJA_TIMEOUT_SECONDS = 120.0
INCLUDE_OPTIONS = ("-I", "-iquote", "-isystem", "-idirafter")


@dataclass(frozen=True)
class CompileUnit:
    source: Path  # resolved
    directory: Path
    command: str | tuple[str, ...]  # as recorded: a shell command, or its arguments
    output: str  # as recorded, relative to `directory` (or absolute)
    build_dir: Path | None = None

    @cached_property
    def arguments(self) -> tuple[str, ...]:
        """The command's arguments, split when first needed (most units are never compiled)."""
        return self.command if isinstance(self.command, tuple) else _split_command(self.command)

    @property
    def label(self) -> str:
        return self.output or self.source.name

    @property
    def object_path(self) -> Path | None:
        return _resolve(self.directory, self.output) if self.output else None

    def with_source(self, source: Path) -> CompileUnit:
        """The same command compiling another file (for a new file beside this unit's source)."""
        old = {str(self.source), _recorded_source(self)}
        arguments = tuple(str(source) if a in old else a for a in self.arguments)
        return CompileUnit(source, self.directory, arguments, f"{self.output} (as {source.name})", self.build_dir)


def _recorded_source(unit: CompileUnit) -> str:
    return next((a for a in unit.arguments if _resolve(unit.directory, a) == unit.source), str(unit.source))


@dataclass(frozen=True)
class Failure:
    unit: CompileUnit
    errors: str  # the compiler's first error lines, or why its command was not run
    refused: bool = False  # not run: kvmlint cannot run its command safely (see kvmlint.validation.compile_command)

    def format(self, root: Path) -> str:
        """For a terminal: the unit on one line, then the compiler's lines (names from the tree escaped)."""
        unit = f"{for_terminal(_display(root, self.unit.source))} ({for_terminal(self.unit.label)})"
        if self.refused:
            return f"{unit}: not run: {for_terminal(self.errors)}"
        return f"{unit}:\n{lines_for_terminal(self.errors)}"

    def unproven(self, root: Path) -> str:
        """Why this unit, failing whatever the fixes, proves nothing about a fix it reads."""
        if self.refused:
            return f"not proven: {self.format(root)}"
        return f"not proven: {_display(root, self.unit.source)} ({self.unit.label}) fails without the fixes too:\n{self.errors}"


@dataclass
class Compilation:
    units: int = 0  # compiler runs (a unit that is not run is a refused failure)
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    front_end_only: int = 0  # of `units`: checked with -fsyntax-only

    @property
    def refused(self) -> int:
        return sum(f.refused for f in self.failures)


def _resolve(directory: Path, name: str) -> Path:
    return Path(os.path.normpath(os.path.join(directory, name)))


def _display(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


class CompileDatabase:
    """The units of one or more build directories (say, with KVM and without), and which of
    them a set of changed files affects."""

    def __init__(self, build_dirs: list[Path], root: Path) -> None:
        self.build_dirs = [Path(d).resolve() for d in build_dirs]
        self.root = root.resolve()
        self.warnings: list[str] = []  # "FILE: problem", for the user
        self.units = [unit for build_dir in self.build_dirs for unit in self._load(build_dir)]
        self.never_built: set[CompileUnit] = set()  # units a header lookup passed over: see _never_built
        self._depfile_deps: dict[CompileUnit, frozenset[Path] | None] = {}
        self._ninja_deps: dict[Path, dict[Path, frozenset[Path]]] | None = None  # build dir -> object -> deps
        self._ninja_reader: threading.Thread | None = None
        self._records_in: dict[Path, bool] = {}
        self._include_names: dict[Path, list[tuple[bytes, str]]] = {}
        self._resolved: dict[tuple[str, tuple[Path, ...]], Path | None] = {}
        self._files: dict[str, bool] = {}

    @property
    def label(self) -> str:
        return ", ".join(str(d) for d in self.build_dirs)

    @property
    def confines(self) -> tuple[Path, ...]:
        """Where a recorded command may run and read response files, and its compiler may not be."""
        return (self.root, *self.build_dirs)

    def _load(self, build_dir: Path) -> list[CompileUnit]:
        path = build_dir / DATABASE
        try:
            entries = json.loads(read_build_file(path, DATABASE_MAX_BYTES).decode("utf-8"))
        except FileNotFoundError:
            raise UsageError(f"{build_dir}: no {DATABASE} (configure the QEMU build first)") from None
        except UnreadableFile as why:
            raise UsageError(f"{path}: {why}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            raise UsageError(f"{path}: cannot read it ({error})") from None
        if not isinstance(entries, list):
            raise UsageError(f"{path}: not a list of compile commands")
        inside = os.path.join(str(self.root), "")
        mine = []
        for number, entry in enumerate(entries):
            try:
                directory = entry["directory"]
                source = os.path.normpath(os.path.join(directory, entry["file"]))
                if not isinstance(directory, str) or not os.path.isabs(directory):
                    raise TypeError("its directory is not an absolute path")
                command = tuple(entry["arguments"]) if "arguments" in entry else entry["command"]
                if not isinstance(command, str) and not all(isinstance(a, str) for a in command):
                    raise TypeError("the command is neither a string nor a list of strings")
            except (KeyError, TypeError, ValueError) as error:
                raise UsageError(f"{path}: entry {number} is not a compile command ({error})") from None
            if not source.startswith(inside):
                continue  # a unit of another tree (a subproject built from elsewhere)
            output = entry.get("output")
            unit = CompileUnit(Path(source), Path(directory), command, output if isinstance(output, str) else "", build_dir)
            if not unit.output:
                unit = replace(unit, output=_option_value(unit.arguments, "-o") or "")
            mine.append(unit)
        if not mine:
            raise UsageError(f"{path}: compiles no file of the tree at {self.root}")
        compiler = next((a for a in mine[0].arguments if os.path.basename(a) not in CACHE_NAMES), "")
        if shutil.which(compiler, path=os.environ.get("PATH")) is None and not Path(mine[0].directory, compiler).exists():
            raise UsageError(f"{path}: its compiler {compiler} is not installed")
        return mine

    # --- which units a change affects -------------------------------------------------------

    def affected(self, changed: Iterable[Path], new: Iterable[Path] = ()) -> list[CompileUnit]:
        """Every unit that compiles or includes one of `changed` (C files; others are ignored),
        and, for each `new` C source, the commands of its directory's units applied to it."""
        return list(self.each_affected(changed, new))

    def each_affected(self, changed: Iterable[Path], new: Iterable[Path] = ()) -> Iterator[CompileUnit]:
        """`affected`, the units of changed sources first: they can compile while the
        units that read a changed header are still being looked up."""
        changed = {Path(p).resolve() for p in changed if is_c_file(str(p))}
        if not changed:
            return
        direct = [u for u in self.units if u.source in changed]
        yield from direct
        known_sources = {u.source for u in self.units}
        new = {Path(p).resolve() for p in new}
        for new_source in sorted(p for p in changed & new if p.suffix == ".c" and p not in known_sources):
            siblings = [u for u in self.units if u.source.parent == new_source.parent]
            yield from {_configuration(u): u.with_source(new_source) for u in siblings}.values()
        included = {p for p in changed if p.suffix != ".c"}  # headers and .c.inc: read through #include
        if included:
            reaching: dict[tuple[Path, tuple[Path, ...]], bool] = {}
            yielded = set(direct)
            yield from (u for u in self.units if u not in yielded and self._reads_any(u, included, reaching))

    def not_compiled(self, changed: set[Path], new: set[Path]) -> set[Path]:
        """The changed files no unit reads: build files, files of targets not configured, and
        new headers that no changed source includes."""
        left = {p for p in changed if not self.affected([p], new)}
        if left:
            changed_units = [u for u in self.units if u.source in changed]
            left -= {p for u in changed_units for p in self.include_graph(u)}
        return left

    def _reads_any(self, unit: CompileUnit, wanted: set[Path], reaching: dict) -> bool:
        """Whether `unit` reads one of `wanted`: by the build's record, else by the include
        graph (memoised per file and include path across units, in `reaching`)."""
        recorded = self.recorded(unit)
        if recorded is not None:
            return bool(recorded & wanted)
        if self._never_built(unit):
            self.never_built.add(unit)
            return False
        search = tuple(_resolve(unit.directory, d) for d in _include_dirs(unit.arguments))
        active: set[Path] = set()
        cut = False  # whether the current answer passed through a file still being explored

        def reaches(path: Path) -> bool:
            nonlocal cut
            key = (path, search)
            if key in reaching:
                return reaching[key]
            if path in active:
                cut = True
                return False
            active.add(path)
            outer, cut = cut, False
            result = any(p in wanted or reaches(p) for p in self._includes_of(path, search))
            if result or not cut:  # a "no" found through an include cycle may be incomplete
                reaching[key] = result
            active.discard(path)
            cut = cut or outer
            return result

        try:
            return reaches(unit.source)
        except RecursionError:
            return bool(self.include_graph(unit) & wanted)

    def dependencies(self, unit: CompileUnit) -> frozenset[Path]:
        """The files `unit` reads: the build's record, else its include graph."""
        recorded = self.recorded(unit)
        if recorded is None:
            recorded = self.include_graph(unit)
        return recorded

    def recorded(self, unit: CompileUnit) -> frozenset[Path] | None:
        """The files the build recorded `unit` reading when it last compiled it (before any
        change since), if it did."""
        if unit.build_dir is not None and (ninja := self._ninja_records().get(unit.build_dir)):
            recorded = ninja.get(unit.object_path)
            if recorded is not None:
                return recorded
        return self._from_depfile(unit)

    def _never_built(self, unit: CompileUnit) -> bool:
        """Whether `unit` has no object in a build that records its units' dependencies:
        the build never compiled it (tests, tools or subprojects left out of the build).
        A build that records none, configured but not built, is read through the include graph."""
        if unit.build_dir is None or unit.object_path is None or unit.object_path.exists():
            return False
        if unit.build_dir not in self._records_in:
            self._records_in[unit.build_dir] = bool(self._ninja_records().get(unit.build_dir)) or any(
                self._from_depfile(u) is not None for u in self.units if u.build_dir == unit.build_dir
            )
        return self._records_in[unit.build_dir]

    def _from_depfile(self, unit: CompileUnit) -> frozenset[Path] | None:
        if unit in self._depfile_deps:
            return self._depfile_deps[unit]
        candidates = []
        if (depfile := _option_value(unit.arguments, "-MF")) is not None:
            candidates.append(depfile)
        if unit.output:
            candidates += [unit.output + ".d", str(Path(unit.output).with_suffix(".d"))]
        found = None
        for candidate in candidates:
            path = _resolve(unit.directory, candidate)
            if not any(within(os.path.realpath(path), d) for d in self.confines):
                continue  # a build's .d files are in the build (or, built in place, the tree)
            try:
                text = read_build_file(path, DEPFILE_MAX_BYTES).decode("utf-8", "surrogateescape")
            except (OSError, UnreadableFile):
                continue
            found = frozenset(_resolve(unit.directory, name) for name in parse_depfile(text))
            break
        self._depfile_deps[unit] = found
        return found

    def read_dependencies_early(self) -> None:
        """Start reading ninja's dependency records in the background (for a run that
        analyses the tree first: the records are ready when its fixes are compiled)."""
        if self._ninja_deps is None and self._ninja_reader is None:
            self._ninja_reader = threading.Thread(target=self._ninja_records, daemon=True)
            self._ninja_reader.start()

    def _ninja_records(self) -> dict[Path, dict[Path, frozenset[Path]]]:
        if self._ninja_reader is not None and self._ninja_reader is not threading.current_thread():
            self._ninja_reader.join()
        if self._ninja_deps is None:
            self._ninja_deps = {build_dir: _read_ninja_deps(build_dir, self.warnings) for build_dir in self.build_dirs}
        return self._ninja_deps

    def include_graph(self, unit: CompileUnit) -> frozenset[Path]:
        """Every file of the tree `unit` may include, following its -I/-iquote/-isystem path."""
        search = tuple(_resolve(unit.directory, d) for d in _include_dirs(unit.arguments))
        seen: set[Path] = set()
        pending = [unit.source]
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            pending.extend(self._includes_of(current, search))
        seen.discard(unit.source)
        return frozenset(seen)

    def _includes_of(self, path: Path, search: tuple[Path, ...]) -> set[Path]:
        """The tree's files that `path` includes, resolved as the compiler would (every file is
        read once; a name is resolved once per search path)."""
        if path not in self._include_names:
            try:
                data = read_regular_file(path)
            except UnreadableFile:  # a FIFO or device named like a header includes nothing
                data = b""
            self._include_names[path] = [(k, n.decode("utf-8", "surrogateescape")) for k, n in INCLUDE.findall(data)]
        found = {self._resolve_include(kind == b'"', name, path, search) for kind, name in self._include_names[path]}
        found.discard(None)
        return found

    def resolve_include(self, quoted: bool, name: str, including: Path, unit: CompileUnit) -> Path | None:
        """The tree's file that `#include "name"` (or `<name>`) in `including` reads when `unit`
        compiles it; None for a system header or a name that does not resolve."""
        search = tuple(_resolve(unit.directory, d) for d in _include_dirs(unit.arguments))
        return self._resolve_include(quoted, name, including, search)

    def _resolve_include(self, quoted: bool, name: str, including: Path, search: tuple[Path, ...]) -> Path | None:
        beside = os.path.join(including.parent, name)
        if quoted and self._is_file(beside):  # a quoted include looks beside the file first
            return self._inside(beside)
        key = (name, search)
        if key not in self._resolved:
            first = next((os.path.join(f, name) for f in search if self._is_file(os.path.join(f, name))), None)
            self._resolved[key] = self._inside(first) if first else None
        return self._resolved[key]

    def _is_file(self, name: str) -> bool:
        if name not in self._files:
            self._files[name] = os.path.isfile(name)
        return self._files[name]

    def _inside(self, name: str) -> Path | None:
        """The tree's file at `name`, or None for a system header."""
        path = Path(os.path.normpath(name))
        return path if self.root in path.parents else None


def _read_ninja_deps(build_dir: Path, warnings: list[str]) -> dict[Path, frozenset[Path]]:
    """Every object's dependencies as ninja recorded them, or nothing for a build that ninja
    does not drive (or never ran): read from ninja's log directly when its format is one we know
    (several times faster than parsing the tool's text for a two-target QEMU), else from
    `ninja -n -t deps` (a dry run: ninja then never compacts its logs), bounded in time and size.
    A log kvmlint cannot read is a warning: the include graph stands in for it."""
    if not os.path.lexists(build_dir / "build.ninja"):
        return {}
    log = build_dir / NINJA_DEPS_LOG
    try:
        recorded = parse_ninja_deps_log(read_build_file(log, NINJA_DEPS_MAX_BYTES), build_dir)
    except FileNotFoundError:
        return {}
    except (OSError, UnreadableFile) as why:
        warnings.append(f"{log}: {why}; the include graph says which units read a changed header")
        return {}
    if recorded is not None:
        return recorded
    ninja = shutil.which("ninja")
    if ninja is None:
        return {}
    unreadable = next(_unreadable_ninja_files(build_dir), None)
    if unreadable is not None:
        warnings.append(f"{unreadable[0]}: {unreadable[1]}; the include graph says which units read a changed header")
        return {}
    try:
        with tempfile.TemporaryDirectory(prefix="kvmlint-ninja-") as scratch:
            result = run_bounded([ninja, "-n", "-C", str(build_dir), "-t", "deps"], build_dir, NINJA_TIMEOUT_SECONDS,
                                 Path(scratch), NINJA_DEPS_TEXT_MAX_BYTES)
    except OSError as error:  # no room for ninja's output
        warnings.append(f"{log}: `ninja -t deps` cannot be run ({error.strerror or error}); "
                        f"the include graph says which units read a changed header")
        return {}
    if result.returncode is None or result.truncated:
        what = "did not finish" if result.returncode is None else "wrote more than it may"
        warnings.append(f"{log}: `ninja -t deps` {what}; the include graph says which units read a changed header")
        return {}
    return parse_ninja_deps(result.stdout.decode("utf-8", "surrogateescape"), build_dir) if result.returncode == 0 else {}


def _unreadable_ninja_files(build_dir: Path) -> Iterator[tuple[Path, str]]:
    """The files `ninja -t deps` reads that ninja would wait on, or follow elsewhere."""
    for path in (build_dir / "build.ninja", build_dir / NINJA_DEPS_LOG, build_dir / ".ninja_log"):
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(info.st_mode):
            yield path, "not a regular file"


@dataclass(frozen=True)
class Ran:
    returncode: int | None  # None: killed at its timeout
    stdout: bytes
    stderr: bytes
    truncated: bool  # stdout was longer than it may be


def run_bounded(arguments: list[str], cwd: Path, timeout: float, scratch: Path, max_stdout: int,
                executable: str | None = None, live: set[subprocess.Popen] | None = None) -> Ran:
    """Run a program with no input, its output in files under `scratch` (read back bounded), and
    kill it when it outlives `timeout`.  With `live` (a compiler: its driver starts cc1 and as),
    it runs in a session of its own, to be killed with its children, which the terminal's
    Ctrl-C does not reach: it is in `live` while it runs, for the caller to stop."""
    with tempfile.TemporaryFile(dir=scratch) as out, tempfile.TemporaryFile(dir=scratch) as err:
        process = subprocess.Popen(arguments, executable=executable, cwd=cwd, stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=err, start_new_session=live is not None)
        if live is not None:
            live.add(process)
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            returncode = None
        except BaseException:
            _kill(process, live is not None)
            raise
        finally:
            if live is not None:
                live.discard(process)
        if returncode is None:
            _kill(process, live is not None)
        out.seek(0)
        err.seek(0)
        stdout = out.read(max_stdout + 1)
        return Ran(returncode, stdout[:max_stdout], err.read(COMPILER_MESSAGES_MAX_BYTES), len(stdout) > max_stdout)


def _kill(process: subprocess.Popen, with_its_session: bool) -> None:
    try:
        if with_its_session:
            os.killpg(process.pid, signal.SIGKILL)  # the compiler's cc1 too
        else:
            process.kill()
    except ProcessLookupError:
        pass
    process.wait()


def _split_command(command: str) -> tuple[str, ...]:
    """A recorded command as the shell splits it (a plain split when nothing is quoted); nothing
    when the shell could not split it (an unclosed quote): such a command is never run."""
    if any(c in command for c in "'\"\\$`"):
        try:
            return tuple(shlex.split(command))
        except ValueError:
            return ()
    return tuple(command.split())


def _configuration(unit: CompileUnit) -> tuple[str, ...]:
    """A unit's command without its source and outputs: units of one directory that share it
    are one configuration (one target), so a new file there is compiled once per target."""
    recorded = _recorded_source(unit)
    kept, skip = [], False
    for argument in unit.arguments:
        if skip:
            skip = False
            continue
        if argument in OUTPUT_OPTIONS or argument in ("-MQ", "-MT"):
            skip = True
            continue
        if argument != recorded:
            kept.append(argument)
    return (str(unit.directory), *kept)


def _option_value(arguments: tuple[str, ...], option: str) -> str | None:
    for index, argument in enumerate(arguments):
        if argument == option and index + 1 < len(arguments):
            return arguments[index + 1]
        if argument.startswith(option) and len(argument) > len(option):
            return argument[len(option):]
    return None


def _include_dirs(arguments: tuple[str, ...]) -> list[str]:
    found = []
    for index, argument in enumerate(arguments):
        for option in INCLUDE_OPTIONS:
            if argument == option and index + 1 < len(arguments):
                found.append(arguments[index + 1])
            elif argument.startswith(option) and len(argument) > len(option):
                found.append(argument[len(option):])
    return found


def parse_depfile(text: str) -> list[str]:
    """The prerequisites of a make-format dependency file's first rule (`-MP` phony rules
    and escaped spaces understood)."""
    joined = text.replace("\\\r\n", " ").replace("\\\n", " ")
    for line in joined.splitlines():
        target, colon, prerequisites = line.partition(": ")
        if not colon:
            continue
        words = re.findall(r"(?:\\ |[^\s])+", prerequisites)
        return [word.replace("\\ ", " ").replace("$$", "$") for word in words]
    return []


def parse_ninja_deps_log(data: bytes, build_dir: Path) -> dict[Path, frozenset[Path]] | None:
    """ninja's binary dependency log (`.ninja_deps`, format versions 3 and 4; ninja 1.11 writes 4):
    records of a path (its text, NUL-padded to 4 bytes, then the bitwise NOT of its number)
    and of an output's dependencies (a size with the top bit set, the output's number, its
    mtime, then the numbers of its inputs); a later record of an output replaces an earlier
    one.  Numbers are in the byte order of the machine that wrote it.  None when the log is
    not in a version read here."""
    header = b"# ninjadeps\n"
    if not data.startswith(header) or len(data) < len(header) + 4:
        return None
    version = int.from_bytes(data[len(header) : len(header) + 4], sys.byteorder)
    if version not in (3, 4):
        return None
    mtime_words = 2 if version == 4 else 1
    names: list[str] = []
    deps_of: dict[int, tuple[int, ...]] = {}
    words = memoryview(data)
    offset = len(header) + 4
    while offset + 4 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], sys.byteorder)
        is_deps, size = size & 0x80000000, size & 0x7FFFFFFF
        start, offset = offset + 4, offset + 4 + size
        if offset > len(data) or size % 4 or size < 4:
            break  # a record cut short by an interrupted build: ninja ignores it too
        if is_deps:
            numbers = words[start:offset].cast("i")
            if len(numbers) < 1 + mtime_words:
                break
            deps_of[numbers[0]] = tuple(numbers[1 + mtime_words :])
        else:
            if int.from_bytes(data[offset - 4 : offset], sys.byteorder) != ~len(names) & 0xFFFFFFFF:
                break  # not the checksum ninja writes: the rest is not trusted
            names.append(data[start : offset - 4].rstrip(b"\0").decode("utf-8", "surrogateescape"))
    paths = [_resolve(build_dir, name) for name in names]
    try:
        return {paths[output]: frozenset(map(paths.__getitem__, inputs)) for output, inputs in deps_of.items()}
    except IndexError:  # a number no path record gave
        return None


def parse_ninja_deps(text: str, build_dir: Path) -> dict[Path, frozenset[Path]]:
    """`ninja -t deps` output: `target: #deps N, ...` then one indented path per line.
    Hundreds of thousands of lines name a few thousand files: each name is resolved once."""
    result: dict[Path, frozenset[Path]] = {}
    resolved: dict[str, Path] = {}

    def path(name: str) -> Path:
        found = resolved.get(name)
        if found is None:
            found = resolved[name] = _resolve(build_dir, name)
        return found

    target, deps = None, []
    for line in text.splitlines() + [""]:
        if line.startswith((" ", "\t")) and target is not None:
            deps.append(path(line.strip()))
            continue
        if target is not None:
            result[target] = frozenset(deps)
            target, deps = None, []
        if ": #deps" in line:
            target = _resolve(build_dir, line.split(": #deps", 1)[0])
    return result


# --- how deep each unit is checked ----------------------------------------------------------

class FrontEndChooser:
    """Which units the compiler's front end alone checks (`-fsyntax-only`): those whose own
    source is unchanged and that read only changed files whose changes are declarations, with
    `#include`s of headers the unit read before, and macros the unit neither expands nor tests.
    The reasons are in `kvmlint.validation.change_kind`."""

    def __init__(self, database: CompileDatabase, changed: Iterable[Path], before: dict[Path, bytes | None]) -> None:
        self.database = database
        self.changed = {Path(p).resolve() for p in changed}
        self.before = before  # each changed file's text before the change (None: new); absent: unknown
        self._kinds: dict[Path, ChangeKind] = {}

    def macros_to_rule_out(self, unit: CompileUnit) -> frozenset[str] | None:
        """None: `unit` needs its whole command.  Otherwise the front end suffices once the
        preprocessor shows that the unit neither expands nor tests these macros (none: at once)."""
        if unit.source in self.changed:
            return None
        recorded = self.database.recorded(unit)
        reads = (recorded if recorded is not None else self.database.dependencies(unit)) & self.changed
        if not reads:
            return None  # affected some other way: compile it as the build would
        macros: set[str] = set()
        for path in reads:
            kind = self._kind(path)
            if not kind.no_code:
                return None
            if kind.added_includes and not self._recorded_before_change(unit, path, recorded):
                return None
            for include in kind.added_includes:  # it must bring in nothing the unit did not read before
                if self.database.resolve_include(include.quoted, include.name, path, unit) not in recorded:
                    return None
            macros |= kind.macros
        return frozenset(macros)

    @staticmethod
    def _recorded_before_change(unit: CompileUnit, path: Path, recorded: frozenset[Path] | None) -> bool:
        """Whether the build's record of what `unit` reads predates `path`'s change: an object
        built after it (the user ran the build) may already list the newly included headers."""
        if recorded is None or unit.object_path is None:
            return False
        try:
            return unit.object_path.stat().st_mtime < path.stat().st_mtime
        except OSError:
            return False

    def _kind(self, path: Path) -> ChangeKind:
        if path not in self._kinds:
            try:
                after = read_regular_file(path)
            except UnreadableFile:
                after = None
            self._kinds[path] = (classify(self.before[path], after)
                                 if path in self.before and after is not None else CODE_CHANGE)
        return self._kinds[path]


# --- compiling -------------------------------------------------------------------------------

def compile_units(units: Iterable[CompileUnit], jobs: int, confined_to: tuple[Path, ...],
                  front_end: FrontEndChooser | None = None) -> Compilation:
    """Run every unit's recorded command (outputs sent to a temporary directory), in parallel,
    each as soon as `units` yields it; with -fsyntax-only where `front_end` says it suffices.
    A command kvmlint cannot run safely (`kvmlint.validation.compile_command`, with `confined_to`: the tree
    and the build directories) is not run: its unit is a refused failure."""
    started = time.perf_counter()
    live: set[subprocess.Popen] = set()  # the compilers running now
    try:
        scratch_directory = tempfile.TemporaryDirectory(prefix="kvmlint-build-")
    except OSError as error:  # a full or read-only temporary folder: no unit can be checked, so none proves a fix
        why = f"no temporary folder for its outputs ({error.strerror or error})"
        return Compilation(0, time.perf_counter() - started, [Failure(unit, why, refused=True) for unit in units])
    with scratch_directory as scratch:
        def run(number: int, unit: CompileUnit, macros: frozenset[str] | None) -> tuple[Failure | None, bool, bool]:
            """(the failure, if any; whether the compiler ran; whether the front end alone checked it)"""
            prefix = Path(scratch) / str(number)
            try:
                command = check_command(unit.arguments, unit.directory, unit.source, prefix, confined_to)
            except UnsafeCommand as why:
                return Failure(unit, str(why), refused=True), False, False
            arguments = list(command.arguments)
            syntax_only = macros is not None and (
                not macros or _neither_expands_nor_tests(command, unit.directory, macros, prefix.with_suffix(".i"), Path(scratch), live))
            if syntax_only:
                arguments.append("-fsyntax-only")
            try:
                result = run_bounded(arguments, unit.directory, COMPILE_TIMEOUT_SECONDS, Path(scratch), 0, command.executable, live)
            except OSError as error:
                return Failure(unit, f"cannot run {arguments[0]}: {error.strerror or error}"), True, syntax_only
            if result.returncode is None:
                return Failure(unit, f"the compiler did not finish within {COMPILE_TIMEOUT_SECONDS:.0f} s; stopped"), True, syntax_only
            stderr = result.stderr.decode("utf-8", "replace")
            return (None if result.returncode == 0 else Failure(unit, first_errors(stderr))), True, syntax_only

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            try:
                running = [pool.submit(run, number, unit, front_end.macros_to_rule_out(unit) if front_end else None)
                           for number, unit in enumerate(units)]
                results = [r.result() for r in running]
            except BaseException:  # interrupted (Ctrl-C): no unit starts any more, and those running stop
                pool.shutdown(wait=False, cancel_futures=True)
                for process in list(live):
                    _kill(process, with_its_session=True)
                raise
    failures = [failure for failure, _, _ in results if failure is not None]
    return Compilation(sum(ran for _, ran, _ in results), time.perf_counter() - started, failures,
                       sum(alone for _, _, alone in results))


def _neither_expands_nor_tests(command: CheckCommand, directory: Path, macros: frozenset[str], output: Path,
                               scratch: Path, live: set[subprocess.Popen]) -> bool:
    """Whether the unit that `command` compiles, preprocessed into `output`, neither expands
    nor tests any of `macros` (gcc's -dU lists each macro a unit expands or tests) nor names one
    as a plain identifier (a removed macro)."""
    arguments = [str(output) if a == command.object_file else a for a in command.arguments if a != "-c"]
    try:
        result = run_bounded([*arguments, "-E", "-dU"], directory, COMPILE_TIMEOUT_SECONDS, scratch, 0, command.executable, live)
        text = output.read_bytes() if result.returncode == 0 else None
    except OSError:
        text = None
    if text is None:
        return False  # a compiler without -dU, or a unit that does not preprocess: compile it whole
    names = re.compile(rb"\b(?:" + b"|".join(re.escape(m.encode()) for m in sorted(macros)) + rb")\b")
    return names.search(text) is None


def first_errors(stderr: str) -> str:
    """The compiler's first error and the lines right after it (its context)."""
    lines = stderr.splitlines()
    first = next((i for i, line in enumerate(lines) if "error" in line), 0)
    return "\n".join(lines[first : first + ERROR_LINES]) or "(the compiler failed without a message)"


# --- fix --build-check: apply, compile, roll back ------------------------------------------

@dataclass
class RolledBack:
    change_set: ChangeSet
    why: str  # the compiler's errors, why its units prove nothing, or the change set it depended on


@dataclass
class BuildCheck:
    kept: list[ChangeSet]
    rolled_back: list[RolledBack]
    compiled: int  # compiler runs
    front_end_only: int  # of them: -fsyntax-only (see FrontEndChooser)
    seconds: float
    unchecked: list[tuple[str, list[ChangeSet]]]  # files no unit compiles (build files, ...), and who changed them
    still_failing: list[Failure]  # failures no change set explains: the tree failed before, or the unit is not run
    stopped: str | None = None  # why the check stopped before it finished: a file edited while it compiled
    left: list[RolledBack] = field(default_factory=list)  # on disk when it stopped, not proven


class EditedMeanwhile(Exception):
    """Files changed by someone else while the build check compiled: kvmlint writes none of them."""


def check_fixes(plan: Plan, written: list[ChangeSet], database: CompileDatabase, jobs: int,
                full_compile: bool = False) -> BuildCheck:
    """Compile the units `written` affects; roll back the change sets that break them, and
    those that no unit can prove.

    All change sets are compiled together first.  When units fail, the change
    sets that touch their files are suspects: they are rolled back, and the
    failing units compiled without them.  A unit that fails then too, or whose
    command kvmlint will not run, proves nothing: a suspect that it reads is
    rolled back as not proven.  The other suspects are put back one at a time
    and kept only when the failing units compile with them.  A change set that
    edits what a rolled-back one created or rewrote goes too.

    Every roll-back goes through the fix's journal, and rewrites a file only while it holds
    what kvmlint last wrote there: a file edited meanwhile stops the check with the edit kept
    (`stopped`), and the change sets then on disk but not proven are `left`.
    """
    started = time.perf_counter()
    root = plan.root.resolve()
    touched = {id(s): {root / p for p in s.paths()} for s in written}
    created = {root / n.path for s in written for n in s.new_files}
    originals = {root / p: plan.originals.get(p) for s in written for p in s.paths()}  # None: created
    compiled = front_end_only = 0

    def compile_for(change_sets: list[ChangeSet], only: list[CompileUnit] | None = None) -> list[Failure]:
        nonlocal compiled, front_end_only
        changed = [p for s in change_sets for p in touched[id(s)]]
        units = database.each_affected(changed, created)
        if only is not None:
            wanted = {(u.directory, u.output) for u in only}
            units = (u for u in units if (u.directory, u.output) in wanted)
        # Every file written so far may differ from what the build compiled, not only these change sets'.
        chooser = None if full_compile else FrontEndChooser(database, originals.keys(), originals)
        result = compile_units(units, jobs, database.confines, chooser)
        compiled += result.units
        front_end_only += result.front_end_only
        return result.failures

    failures = compile_for(written)
    kept, rolled_back, still_failing, stopped, left = list(written), [], [], None, []
    if failures:
        suspects = [s for s in written if any(_reads(database, f.unit, touched[id(s)]) for f in failures)]
        kept = [s for s in written if s not in suspects]
        disk = _OnDisk(plan, written)
        try:
            disk.hold(kept)
            # A unit that fails without the suspects, or that is not run at all, judges none of them.
            before = compile_units([f.unit for f in failures if not f.refused], jobs, database.confines)
            compiled += before.units
            still_failing = [f for f in failures if f.refused] + before.failures
            broken_before = {(f.unit.directory, f.unit.output) for f in still_failing}
            judges = [f.unit for f in failures if (f.unit.directory, f.unit.output) not in broken_before]
            for change_set in suspects:
                blocker = next((r for r in rolled_back if _depends_on(change_set, r.change_set)), None)
                if blocker is not None:
                    rolled_back.append(RolledBack(change_set, f"it builds on '{for_terminal(blocker.change_set.title)}', rolled back"))
                    continue
                unproven = next((f for f in _own_first(still_failing, touched[id(change_set)])
                                 if _reads(database, f.unit, touched[id(change_set)])), None)
                if unproven is not None:
                    rolled_back.append(RolledBack(change_set, unproven.unproven(root)))
                    continue
                disk.hold(kept + [change_set])
                errors = compile_for([change_set], only=judges) if judges else []
                if errors:
                    rolled_back.append(RolledBack(change_set, "does not compile:\n" + "\n".join(e.format(root) for e in errors)))
                    disk.hold(kept)
                else:
                    kept.append(change_set)
            for change_set in [s for s in kept if s not in suspects]:
                blocker = next((r for r in rolled_back if _depends_on(change_set, r.change_set)), None)
                if blocker is not None:
                    kept.remove(change_set)
                    rolled_back.append(RolledBack(change_set, f"it builds on '{for_terminal(blocker.change_set.title)}', rolled back"))
            kept = [s for s in written if s in kept]  # the series' own order
            disk.hold(kept)
        except EditedMeanwhile as edited:
            stopped = str(edited)
            why = {id(r.change_set): r.why for r in rolled_back}
            left = [RolledBack(s, why.get(id(s), "not proven: the check stopped before judging it"))
                    for s in disk.change_sets if s not in kept]
            for change_set in [s for s in written if s in kept and s in disk.change_sets]:
                base = next((r for r in left if _depends_on(change_set, r.change_set)), None)
                if base is not None:
                    left.append(RolledBack(change_set, f"it builds on '{for_terminal(base.change_set.title)}', left unproven"))
            rolled_back = [r for r in rolled_back if r.change_set not in disk.change_sets] + [
                RolledBack(s, "not checked: the check stopped before judging it")
                for s in suspects if s not in disk.change_sets and id(s) not in why]
            kept = [s for s in written if s in kept and s in disk.change_sets and all(s is not r.change_set for r in left)]
    not_compiled = database.not_compiled({p for s in kept for p in touched[id(s)]}, created)
    unchecked = [(_display(root, p), [s for s in kept if p in touched[id(s)]]) for p in sorted(not_compiled)]
    return BuildCheck(kept, rolled_back, compiled, front_end_only, time.perf_counter() - started, unchecked,
                      still_failing, stopped, left)


def _own_first(failures: list[Failure], paths: set[Path]) -> list[Failure]:
    """`failures`, those of units whose own source is one of `paths` first (the likeliest to name)."""
    return sorted(failures, key=lambda f: f.unit.source not in paths)


def _reads(database: CompileDatabase, unit: CompileUnit, paths: set[Path]) -> bool:
    return unit.source in paths or bool(paths & database.dependencies(unit)) or bool(paths & database.include_graph(unit))


def _depends_on(change_set: ChangeSet, earlier: ChangeSet) -> bool:
    """Whether `change_set` edits a file `earlier` creates, or rewrites text in a file it changes."""
    created = {n.path for n in earlier.new_files}
    if {e.path for e in change_set.edits} & created:
        return True
    return bool({r.path for r in change_set.replacements} & earlier.paths())


class _OnDisk:
    """The files the fix wrote: what kvmlint last wrote to each, and which change sets that is."""

    def __init__(self, plan: Plan, written: list[ChangeSet]) -> None:
        self.plan = plan
        self.paths = sorted({p for s in written for p in s.paths()})
        self.change_sets = list(written)
        self.contents = self._contents_after(written)

    def _contents_after(self, change_sets: list[ChangeSet]) -> dict[str, bytes | None]:
        after = self.plan.contents_after(change_sets)
        return {path: after.get(path, self.plan.originals.get(path)) for path in self.paths}

    def hold(self, change_sets: list[ChangeSet]) -> None:
        """Make the files hold exactly what `change_sets` (a subset) produce, all or nothing,
        through the same journal as the fix itself, each file only while it holds what kvmlint
        last wrote there (else EditedMeanwhile, and nothing is written)."""
        wanted = self._contents_after(change_sets)
        moving = [path for path in self.paths if wanted[path] != self.contents[path]]
        self._refuse_edited(moving)
        changes = [transaction.FileChange(path, self.contents[path], wanted[path])
                   for path in moving if wanted[path] is not None]
        if changes:
            try:
                transaction.commit(self.plan.root, changes)
            except transaction.NotWritten as why:
                self._refuse_edited([change.path for change in changes])  # edited between the look and the write
                raise UsageError(f"cannot roll back a fix that does not build: {why}") from None
        self.contents.update((change.path, change.new) for change in changes)
        self.change_sets = list(change_sets)
        for path in moving:
            if wanted[path] is None:  # a new file of a change set rolled back
                self._refuse_edited([path])
                (self.plan.root / path).unlink()
                self.contents[path] = None

    def _refuse_edited(self, paths: list[str]) -> None:
        edited = [path for path in paths if not _holds(self.plan.root / path, self.contents[path])]
        if edited:
            raise EditedMeanwhile(f"{', '.join(edited)} changed while the build check compiled: kept as "
                                  f"{'it is' if len(edited) == 1 else 'they are'}, and the check stopped there")


def _holds(path: Path, expected: bytes | None) -> bool:
    """Whether `path` holds `expected` (None: no file is there)."""
    if expected is None:
        return not os.path.lexists(path)
    try:
        return read_regular_file(path) == expected
    except UnreadableFile:
        return False


# --- validate-build: a tree already changed ------------------------------------------------

def changed_files(root: Path) -> tuple[list[Path], list[Path]]:
    """(changed, new): files git sees as changed against HEAD (staged or not) or new, in the
    work tree at `root`; new ones are also in the first list."""
    out = _git_status(root)
    if out is None:
        raise UsageError(f"{root} is not a git work tree (or git is missing): name the changed files")
    changed, new, skip_next = [], [], False
    for entry in out.decode("utf-8", "surrogateescape").split("\0"):
        if skip_next or len(entry) < 4:
            skip_next = False
            continue
        status, name = entry[:2], entry[3:]
        if "R" in status or "C" in status:
            skip_next = True  # the rename's old name follows
        if "D" in status:
            continue
        changed.append(root / name)
        if status in ("??", "A ", "AM"):
            new.append(root / name)
    return changed, new


def uncommitted_changes(root: Path, paths: Iterable[Path]) -> dict[Path, bytes | None]:
    """What each of `paths` was before its uncommitted change: HEAD's text, or None for a file
    HEAD does not have.  Left out: a file that matches HEAD (what the build compiled is then
    unknown), a name git cannot take on a line, and everything outside a git work tree."""
    versions = _committed_versions(root, paths)
    for path, text in list(versions.items()):
        try:
            if text is not None and text == read_regular_file(path):
                del versions[path]
        except UnreadableFile:
            del versions[path]
    return versions


def _committed_versions(root: Path, paths: Iterable[Path]) -> dict[Path, bytes | None]:
    names = {}
    for path in paths:
        try:
            name = path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            continue
        if "\n" not in name:
            names[name] = path
    if not names:
        return {}
    try:
        result = run_git(root, "cat-file", "--batch", input="".join(f"HEAD:{n}\n" for n in names).encode("utf-8", "surrogateescape"))
    except GitError:
        return {}
    if result.returncode != 0:
        return {}
    versions, out, position = {}, result.stdout, 0
    for name, path in names.items():
        end = out.find(b"\n", position)
        if end < 0:
            break
        header = out[position:end].split()
        position = end + 1
        if header[-1:] == [b"missing"]:
            versions[path] = None
        elif len(header) == 3 and header[1] == b"blob":
            size = int(header[2])
            versions[path] = out[position : position + size]
            position += size + 1
        else:
            break  # an answer we do not know how to read: the rest stays unknown
    return versions


def untracked(root: Path, paths: list[Path]) -> list[Path]:
    """Those of `paths` that git does not track (new files); none outside a git work tree."""
    out = _git_status(root)
    if out is None:
        return []
    fresh = {root / entry[3:] for entry in out.decode("utf-8", "surrogateescape").split("\0") if entry[:2] in ("??", "A ", "AM")}
    return [p for p in paths if p in fresh]


def _git_status(root: Path) -> bytes | None:
    try:
        return git_output(root, "status", *SAFE_STATUS_OPTIONS, "--porcelain", "-z", "--untracked-files=all")
    except GitError:
        return None
