"""Stage 1, source tree: which files to look at, and their bytes.

Inside a git work tree git's own file list is used, so `.gitignore` holds;
elsewhere the tree is walked.  Build directories are skipped either way.
"""

from __future__ import annotations

import fnmatch
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kvmlint.errors import UsageError

C_SUFFIXES = (".c", ".h", ".c.inc", ".h.inc")
PYTHON_SUFFIXES = (".py",)
# Files larger than this are generated tables, not code anyone edits by hand.
MAX_FILE_BYTES = 8 * 1024 * 1024
# The cheap literal prefilter: a C file without any of these needs no parse.
PREFILTER_LITERALS = (b"kvm", b"KVM", b"kernel_irqchip", b"kernel-irqchip")
# A QEMU checkout's root: its configure script, its build files of either era, or git.
ROOT_MARKERS = ("configure", "Makefile.target", "configs/targets", ".git")
SKIPPED_DIR_NAMES = {".git", ".kvmlint_cache", "__pycache__", ".venv", "node_modules", ".tox"}
# A folder holding one of these is a build directory: generated files, not sources.
BUILD_DIR_MARKERS = frozenset({"build.ninja", "config-host.mak"})


@dataclass(frozen=True)
class SourceSet:
    root: Path  # the QEMU checkout root: scopes and build files are read from here
    display_base: Path  # finding paths are shown relative to this
    files: tuple[str, ...]  # root-relative, forward slashes, sorted


@dataclass(frozen=True)
class SourceBytes:
    data: bytes | None
    problem: str | None  # why the file cannot be analysed, when data is None


def is_c_file(relpath: str) -> bool:
    return relpath.endswith(C_SUFFIXES)


def is_python_file(relpath: str) -> bool:
    return relpath.endswith(PYTHON_SUFFIXES)


def find_root(start: Path) -> Path:
    """The nearest directory at or above `start` that looks like a checkout root."""
    start = start if start.is_dir() else start.parent
    for candidate in (start, *start.parents):
        if any((candidate / marker).exists() for marker in ROOT_MARKERS):
            return candidate
    return start


def _is_build_dir(path: Path | str) -> bool:
    return any(os.path.exists(os.path.join(path, marker)) for marker in BUILD_DIR_MARKERS)


def _git_files(root: Path) -> list[str] | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return [name for name in out.decode("utf-8", "surrogateescape").split("\0") if name]


def _walk_files(directory: Path, root: Path, suffixes: tuple[str, ...]) -> list[str]:
    found = []
    root_text = str(root)
    top = str(directory)
    for dirpath, dirnames, filenames in os.walk(directory):
        if dirpath != top and BUILD_DIR_MARKERS.intersection(filenames):
            dirnames[:] = []  # a build directory: its listing says so, no stat needed
            continue
        dirnames[:] = [d for d in dirnames if d not in SKIPPED_DIR_NAMES]
        rel = os.path.relpath(dirpath, root_text).replace(os.sep, "/")
        prefix = "" if rel == "." else rel + "/"
        found.extend(prefix + name for name in filenames if name.endswith(suffixes))
    return found


def _in_build_dir(relpath: str, root: Path, cache: dict[str, bool]) -> bool:
    folder = relpath.rpartition("/")[0]
    if not folder:
        return False
    known = cache.get(folder)
    if known is None:  # each folder is looked at once, whatever the number of files in it
        known = cache[folder] = _in_build_dir(folder, root, cache) or _is_build_dir(os.path.join(root, folder))
    return known


def discover(paths: list[str], excludes: tuple[str, ...] = (), suffixes=C_SUFFIXES) -> SourceSet:
    """Resolve command-line paths into the files to analyse."""
    resolved = []
    for raw in paths or ["."]:
        path = Path(raw)
        if not path.exists():
            raise UsageError(f"{raw}: no such file or directory")
        resolved.append(path.resolve())
    common = Path(os.path.commonpath([str(p) for p in resolved]))
    root = find_root(common)
    display_base = resolved[0] if len(resolved) == 1 and resolved[0].is_dir() else root

    # git's file list only when a folder is to be listed: a pre-commit run names its files
    in_git = any(path.is_dir() for path in resolved) and (root / ".git").exists() and _git_files(root)
    selected: set[str] = set()
    build_dir_cache: dict[str, bool] = {}
    for path in resolved:
        if path.is_file():
            selected.add(path.relative_to(root).as_posix())
            continue
        rel = path.relative_to(root).as_posix()
        if in_git:
            prefix = "" if rel == "." else rel + "/"
            candidates = [f for f in in_git if f.startswith(prefix) and f.endswith(suffixes)]
            folders = {f.rpartition("/")[0] for f in candidates}
            build_dirs = {folder for folder in folders if _in_build_dir(folder + "/", root, build_dir_cache)}
            if build_dirs:
                candidates = [f for f in candidates if f.rpartition("/")[0] not in build_dirs]
        else:
            candidates = _walk_files(path, root, suffixes)
        selected.update(f for f in candidates if f.endswith(suffixes))
    if excludes:
        selected = {f for f in selected if not _excluded(f, excludes)}
    return SourceSet(root=root, display_base=display_base, files=tuple(sorted(selected)))


def _excluded(relpath: str, patterns: tuple[str, ...]) -> bool:
    name = relpath.rsplit("/", 1)[-1]
    return any(
        fnmatch.fnmatch(relpath, pattern)
        or fnmatch.fnmatch(name, pattern)
        or relpath.startswith(pattern.rstrip("/") + "/")
        for pattern in patterns
    )


def read_source(path: Path) -> SourceBytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return SourceBytes(None, f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; skipped")
        data = path.read_bytes()
    except OSError as error:
        return SourceBytes(None, f"cannot be read ({error.strerror or error}); skipped")
    if b"\0" in data[:8192]:
        return SourceBytes(None, "binary file; skipped")
    return SourceBytes(data, None)


def needs_parse(data: bytes) -> bool:
    return any(literal in data for literal in PREFILTER_LITERALS)
