"""The build's compile database: each unit's recorded command, and which units a changed file reaches.

`compile_commands.json` gives the units; a changed header's units come from
the build's dependency records (`kvmlint.validation.dependencies`), or
from the include graph when the build records none.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from kvmlint.errors import UsageError
from kvmlint.files import UnreadableFile, read_regular_file
from kvmlint.source.discover import is_c_file
from kvmlint.validation.compile_command import CACHE_NAMES, read_build_file, within
from kvmlint.validation.dependencies import DEPFILE_MAX_BYTES, parse_depfile, read_ninja_deps, resolve_path

DATABASE = "compile_commands.json"
INCLUDE = re.compile(rb'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"\n]+)[>"]', re.MULTILINE)
OUTPUT_OPTIONS = ("-o", "-MF")
# Bounds on what the build directory holds (a full QEMU build's database is about 100 MiB) and on
# the programs run: a compiler that reads a FIFO, or a ninja that does, would wait forever.
DATABASE_MAX_BYTES = 256 * 1024 * 1024
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
        return resolve_path(self.directory, self.output) if self.output else None

    def with_source(self, source: Path) -> CompileUnit:
        """The same command compiling another file (for a new file beside this unit's source)."""
        old = {str(self.source), _recorded_source(self)}
        arguments = tuple(str(source) if a in old else a for a in self.arguments)
        return CompileUnit(source, self.directory, arguments, f"{self.output} (as {source.name})", self.build_dir)


def _recorded_source(unit: CompileUnit) -> str:
    return next((a for a in unit.arguments if resolve_path(unit.directory, a) == unit.source), str(unit.source))


def display_path(root: Path, path: Path) -> str:
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
        entries = _read_database(build_dir, path)
        inside = os.path.join(str(self.root), "")
        mine = []
        for number, entry in enumerate(entries):
            problem = _not_a_compile_command(entry)
            if problem:
                raise UsageError(f"{path}: entry {number} {problem}")
            directory = entry["directory"]
            source = os.path.normpath(os.path.join(directory, entry["file"]))
            command = tuple(entry["arguments"]) if "arguments" in entry else entry["command"]
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
        search = tuple(resolve_path(unit.directory, d) for d in _include_dirs(unit.arguments))
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
            path = resolve_path(unit.directory, candidate)
            if not any(within(os.path.realpath(path), d) for d in self.confines):
                continue  # a build's .d files are in the build (or, built in place, the tree)
            try:
                text = read_build_file(path, DEPFILE_MAX_BYTES).decode("utf-8", "surrogateescape")
            except (OSError, UnreadableFile):
                continue
            found = frozenset(resolve_path(unit.directory, name) for name in parse_depfile(text))
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
            self._ninja_deps = {build_dir: read_ninja_deps(build_dir, self.warnings) for build_dir in self.build_dirs}
        return self._ninja_deps

    def include_graph(self, unit: CompileUnit) -> frozenset[Path]:
        """Every file of the tree `unit` may include, following its -I/-iquote/-isystem path."""
        search = tuple(resolve_path(unit.directory, d) for d in _include_dirs(unit.arguments))
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
        search = tuple(resolve_path(unit.directory, d) for d in _include_dirs(unit.arguments))
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


def _read_database(build_dir: Path, path: Path) -> list:
    """The entries of `path`; UsageError naming the file and what is wrong with it, in one line."""
    try:
        data = read_build_file(path, DATABASE_MAX_BYTES)
    except FileNotFoundError:
        raise UsageError(f"{build_dir}: no {DATABASE} (configure the QEMU build first)") from None
    except UnreadableFile as why:
        raise UsageError(f"{path}: {why}") from None
    except OSError as error:
        raise UsageError(f"{path}: cannot be read ({error.strerror or error})") from None
    try:
        entries = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise UsageError(f"{path}: not UTF-8 (byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise UsageError(f"{path}: not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})") from None
    except RecursionError:
        raise UsageError(f"{path}: not a compile database: nested too deeply") from None
    if not isinstance(entries, list):
        raise UsageError(f"{path}: not a list of compile commands")
    return entries


def _not_a_compile_command(entry) -> str | None:
    """What makes a database entry no compile command (as the entry's problem), or None."""
    if not isinstance(entry, dict):
        return "is not an object with \"directory\", \"file\" and \"arguments\" or \"command\""
    for key in ("directory", "file"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            return f"has no \"{key}\" string"
    for key in ("directory", "file", "output"):
        if "\0" in str(entry.get(key, "")):
            return f"has a NUL character in its \"{key}\""
    if not os.path.isabs(entry["directory"]):
        return "has a \"directory\" that is not an absolute path"
    if "arguments" in entry:
        arguments = entry["arguments"]
        if not isinstance(arguments, list) or not arguments or not all(isinstance(a, str) for a in arguments):
            return "has \"arguments\" that are not a list of strings"
        command = "".join(arguments)
    elif isinstance(entry.get("command"), str) and entry["command"].strip():
        command = entry["command"]
    else:
        return "has neither \"arguments\" (a list of strings) nor a \"command\" string"
    return "has a NUL character in its command" if "\0" in command else None


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
