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

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from kvmlint.codemods import transaction
from kvmlint.codemods.engine import ChangeSet, Plan
from kvmlint.errors import UsageError
from kvmlint.files import UnreadableFile, read_regular_file
from kvmlint.terminal import for_terminal
from kvmlint.validation.compile_database import CompileDatabase, CompileUnit, display_path
from kvmlint.validation.compile_runner import Failure, FrontEndChooser, compile_units


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
    unchecked = [(display_path(root, p), [s for s in kept if p in touched[id(s)]]) for p in sorted(not_compiled)]
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
