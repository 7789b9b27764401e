"""What the build-file readers hand to the resolver."""

from __future__ import annotations

import os
import posixpath
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from kvmlint.files import UnreadableFile, read_regular_file

from .families import Families, family_of_target_symbol, format_families

# Compile units.  A per-target unit is compiled once per target with the
# target's folder on the include path, so it can include a target header;
# a target-independent one is compiled once for all targets and cannot.
PER_TARGET = "per-target"
TARGET_INDEPENDENT = "target-independent"


def compiled_per_target(pulled_into: Mapping[str, set[str]], per_target_by_name: Callable[[str], bool]) -> set[str]:
    """The lists (or source sets) compiled per target because of where they are pulled in.

    `pulled_into` maps a list to the lists that pull it in.  Following those pulls up from
    a list ends at lists per target by name, or at lists pulled nowhere, which are compiled
    once for all targets; a list is per target when every way up ends at the former, and
    one does.  (A loop of lists that no way leaves is compiled nowhere: not per target.)
    Two walks down from the ends, so time is linear in the pulls, however long the chains.
    """
    pulled_in: dict[str, set[str]] = defaultdict(set)
    for name, parents in pulled_into.items():
        for parent in parents - {name}:
            pulled_in[parent].add(name)

    def below(ends: list[str]) -> set[str]:
        reached, pending = set(), ends
        while pending:
            for name in pulled_in.get(pending.pop(), ()):
                if name not in reached and not per_target_by_name(name):
                    reached.add(name)
                    pending.append(name)
        return reached

    names = set(pulled_into) | set(pulled_in)
    below_per_target = below([name for name in names if per_target_by_name(name)])
    below_once = below([name for name in names
                        if not per_target_by_name(name) and not pulled_into.get(name, set()) - {name}])
    return below_per_target - below_once


@dataclass(frozen=True)
class BuildRule:
    """One build-file statement that compiles a source file.

    `families` already combines everything that restricts the statement:
    the folder or source set it belongs to, its own condition and the
    conditions of enclosing blocks.  `symbols` are the CONFIG_/TARGET_
    symbols among those conditions, so a reason can explain them.
    `unit` is PER_TARGET, TARGET_INDEPENDENT or None (unknown), and
    `unit_reason` says which list or source set decided it.
    """

    build_file: str
    description: str
    symbols: tuple[str, ...]
    families: Families
    unit: str | None = None
    unit_reason: str = ""


class ConfigSpace:
    """Answers: for which architecture families can a build symbol be enabled?"""

    def __init__(self, known_families: frozenset[str]) -> None:
        self.known_families = known_families
        # asked once per build-file condition and per file: memoised
        self._families: dict[str, Families] = {}
        self._explanations: dict[str, str] = {}

    def families(self, symbol: str) -> Families:
        if symbol not in self._families:
            family = family_of_target_symbol(symbol, self.known_families)
            self._families[symbol] = frozenset({family}) if family is not None else self._config_families(symbol)
        return self._families[symbol]

    def explain(self, symbol: str) -> str:
        """One clause saying where the answer of families() comes from."""
        if symbol not in self._explanations:
            self._explanations[symbol] = self._explain(symbol)
        return self._explanations[symbol]

    def _explain(self, symbol: str) -> str:
        family = family_of_target_symbol(symbol, self.known_families)
        if family is not None:
            return f"{symbol} is defined only for {family} targets"
        families = self.families(symbol)
        if families is None:
            return f"{symbol} does not depend on the target's devices"
        if not families:
            return f"{symbol} is enabled by no target's default configuration"
        scope = "only for" if len(families) == 1 else "for"
        return f"{symbol} can be enabled {scope} {format_families(families)}{self._provenance(symbol)}"

    def _config_families(self, symbol: str) -> Families:
        return None

    def _provenance(self, symbol: str) -> str:
        return ""


class BoundWarnings:
    """Where a build-file reader stopped at one of its bounds: (build file, what was not read).

    The bounds (nesting depths, wildcards per pattern, loops through symlinked folders,
    the tree's root) keep a broken or hostile tree from hanging a run or reading beside it; a scope decided without the rest
    of the build files may be wrong, so the run names each one, once.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._hits: dict[tuple[str, str], None] = {}

    def add(self, build_file: Path | str, message: str) -> None:
        """`build_file`: relative to the root, or a path under it."""
        relpath = posixpath.normpath(os.path.relpath(self.root / build_file, self.root).replace(os.sep, "/"))
        self._hits.setdefault((relpath, message), None)

    def left_root(self, build_file: Path | str, path: Path, reference: str) -> bool:
        """Whether `reference` of `build_file` leads to `path` outside the tree; if so it is named, and not read."""
        if not leaves_root(self.root, path):
            return False
        self.add(build_file, f"{reference} leads out of the tree; not read")
        return True

    def items(self) -> tuple[tuple[str, str], ...]:
        return tuple(self._hits)


# Build files are small; a bigger one is not a build file anyone wrote.
MAX_BUILD_FILE_BYTES = 4 * 1024 * 1024


def read_text(root: Path, path: Path) -> str:
    """A build file's text.  Every build-file read goes through here: missing,
    unreadable, special (FIFO, device, symlink to one) and huge files, and files
    outside the tree `root`, read as empty."""
    data = read_build_file(root, path)
    for observer in _read_observers:
        observer(path, data)
    return "" if data is None else data.decode("utf-8", "replace")


def read_build_file(root: Path, path: Path) -> bytes | None:
    """A build file's bytes, None where read_text reads nothing."""
    real = os.path.realpath(path)
    if leaves_root(root, Path(real)):
        return None
    try:  # the real path: no symlink left to follow, so none can be swapped in to lead out
        return read_regular_file(Path(real), MAX_BUILD_FILE_BYTES, follow_symlinks=False)
    except UnreadableFile:
        return None


def leaves_root(root: Path, path: Path) -> bool:
    """Whether `path` is outside the tree: by `..`, as an absolute path, or through a symlink on the way.

    A build file that names one (meson's subdir(), a Makefile's folder or `include`,
    Kconfig's `source`) names something the tree's author put beside it, not its build.
    """
    real_root = os.path.realpath(root)
    return os.path.commonpath([real_root, os.path.realpath(path)]) != real_root


# Each is called with (path, bytes or None) on every build-file read: the
# cache records which files, with which bytes, a scope reading came from.
_read_observers: tuple[Callable[[Path, bytes | None], None], ...] = ()
_observers_lock = threading.Lock()


def observe_reads(observer: Callable[[Path, bytes | None], None]) -> None:
    global _read_observers
    with _observers_lock:
        _read_observers += (observer,)


def stop_observing(observer: Callable[[Path, bytes | None], None]) -> None:
    global _read_observers
    with _observers_lock:
        _read_observers = tuple(o for o in _read_observers if o is not observer)


def visit_key(path: Path) -> str:
    """The key of a visited build file: its real path, so symlinked-folder loops end."""
    return os.path.realpath(path)


def join_relpath(folder: str, name: str) -> str:
    """Normalise `folder/name` relative to the tree root ('' is the root)."""
    joined = posixpath.normpath(posixpath.join(folder, name))
    return "" if joined == "." else joined


def summarize_names(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} +{len(names) - limit} more"
