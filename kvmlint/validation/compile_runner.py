"""Compiling units: each with its recorded command (outputs sent to a temporary folder), or its front end alone.

`FrontEndChooser` decides which units the front end alone can check (see
`kvmlint.validation.change_kind`); `compile_units` runs them in parallel.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from kvmlint.files import UnreadableFile, read_regular_file
from kvmlint.terminal import for_terminal, lines_for_terminal
from kvmlint.validation.change_kind import CODE_CHANGE, ChangeKind, classify
from kvmlint.validation.compile_command import CheckCommand, UnsafeCommand, check_command
from kvmlint.validation.compile_database import CompileDatabase, CompileUnit, display_path
from kvmlint.validation.running import kill, run_bounded

ERROR_LINES = 4
# Bounds on what the build directory holds (a full QEMU build's database is about 100 MiB) and on
# the programs run: a compiler that reads a FIFO, or a ninja that does, would wait forever.
COMPILE_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class Failure:
    unit: CompileUnit
    errors: str  # the compiler's first error lines, or why its command was not run
    refused: bool = False  # not run: kvmlint cannot run its command safely (see kvmlint.validation.compile_command)

    def format(self, root: Path) -> str:
        """For a terminal: the unit on one line, then the compiler's lines (names from the tree escaped)."""
        unit = f"{for_terminal(display_path(root, self.unit.source))} ({for_terminal(self.unit.label)})"
        if self.refused:
            return f"{unit}: not run: {for_terminal(self.errors)}"
        return f"{unit}:\n{lines_for_terminal(self.errors)}"

    def unproven(self, root: Path) -> str:
        """Why this unit, failing whatever the fixes, proves nothing about a fix it reads."""
        if self.refused:
            return f"not proven: {self.format(root)}"
        return f"not proven: {display_path(root, self.unit.source)} ({self.unit.label}) fails without the fixes too:\n{self.errors}"


@dataclass
class Compilation:
    units: int = 0  # compiler runs (a unit that is not run is a refused failure)
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    front_end_only: int = 0  # of `units`: checked with -fsyntax-only

    @property
    def refused(self) -> int:
        return sum(f.refused for f in self.failures)


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
                    kill(process, with_its_session=True)
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
