"""Discovery (source stage): which files to look at, and their bytes.

Inside a git work tree git's own file list is used, so `.gitignore` holds;
elsewhere the tree is walked.  Build directories are skipped either way.

An overlay gives some files' content instead of what is on disk: for
`--staged` the index's version (see kvmlint/git/diffs.py); an editor's unsaved buffers
or a patch under review would be others.  It is computed elsewhere, and only
consumed here, by extraction and by the reporters that quote a line.
"""

from __future__ import annotations

import fnmatch
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from kvmlint.errors import UsageError
from kvmlint.files import MAX_FILE_BYTES, Overlay, UnreadableFile, format_size, read_regular_file
from kvmlint.git.run import GitError, git_output

C_SUFFIXES = (".c", ".h", ".c.inc", ".h.inc")
PYTHON_SUFFIXES = (".py",)
# The cheap literal prefilter: a C file without any of these needs no parse.
PREFILTER_LITERALS = (b"kvm", b"KVM", b"kernel_irqchip", b"kernel-irqchip")
# A QEMU checkout's root: its configure script, its build files of either era, or git.
ROOT_MARKERS = ("configure", "Makefile.target", "configs/targets", ".git")
SKIPPED_DIR_NAMES = frozenset({".git", ".kvmlint_cache", "__pycache__", ".venv", "node_modules", ".tox"})
# A folder holding one of these is a build directory: generated files, not sources.
BUILD_DIR_MARKERS = frozenset({"build.ninja", "config-host.mak"})


# kvmlint's own files inside a tree (cache, fix journal and lock) start so: not the tree's text.
KVMLINT_STATE_PREFIX = ".kvmlint"
# A tree-wide scan (a rename's) reads at most this much, all files together.
MAX_SCAN_BYTES = 1024 * 1024 * 1024
BINARY_PROBE_BYTES = 8192  # a NUL in the first this many bytes: a binary file


# How deep below a checked directory to look for QEMU checkouts when it is not in one.
ROOT_SEARCH_DEPTH = 3


# A folder's subfolders and files, as a walk saw them; None when it could not be listed.
FolderEntries = Optional[tuple[list[str], list[str]]]


@dataclass(frozen=True)
class TreeListing:
    """Every folder a walk of the whole tree saw (root-relative, '' is the root), and when it began.

    The cache keys its build-scope reading by it, so discovery's walk serves both.
    """

    started_ns: int
    folders: dict[str, FolderEntries]


@dataclass(frozen=True)
class SourceSet:
    root: Path  # the QEMU checkout root: scopes and build files are read from here
    display_base: Path  # finding paths are shown relative to this
    files: tuple[str, ...]  # root-relative, forward slashes, sorted
    skipped: tuple[tuple[str, str], ...] = ()  # (path, why) for what discovery could not look into
    listing: TreeListing | None = field(default=None, compare=False, repr=False)  # when the whole tree was walked
    overlay: Overlay = field(default_factory=dict, compare=False, repr=False)  # what is analysed instead of the disk
    # The root-relative files and folders the command named ("" is the root): what is reported, when the
    # whole tree is analysed for context.
    named: tuple[str, ...] = ("",)
    # Whether `root` is a checkout's; else it is only the checked folder, which kvmlint leaves as it was.
    in_checkout: bool = True

    def names(self, relpath: str) -> bool:
        """Whether `relpath` is, or lies in, a path the command named."""
        return any(not name or relpath == name or relpath.startswith(name + "/") for name in self.named)


@dataclass(frozen=True)
class SourceBytes:
    data: bytes | None
    problem: str | None  # why the file cannot be analysed, when data is None


def is_c_file(relpath: str) -> bool:
    return relpath.endswith(C_SUFFIXES)


def is_python_file(relpath: str) -> bool:
    return relpath.endswith(PYTHON_SUFFIXES)


def _exists(path: Path) -> bool:
    """Path.exists(), but a path that cannot be looked at (EACCES, ENAMETOOLONG) does not exist."""
    try:
        return path.exists()
    except OSError:
        return False


def _is_root(directory: Path) -> bool:
    return any(_exists(directory / marker) for marker in ROOT_MARKERS)


def find_root(start: Path) -> Path:
    """The nearest directory at or above `start` that looks like a checkout root."""
    return _find_root(start) or (start if _is_dir(start) else start.parent)


def _find_root(start: Path) -> Path | None:
    start = start if _is_dir(start) else start.parent
    for candidate in (start, *start.parents):
        if _is_root(candidate):
            return candidate
    return None


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def roots_below(directory: Path, depth: int = ROOT_SEARCH_DEPTH) -> list[Path]:
    """QEMU checkouts in `directory`'s subdirectories, down to `depth` levels (symlinks not followed)."""
    found, level = [], [directory]
    for _ in range(depth):
        below = []
        for folder in level:
            try:
                entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
            except OSError:
                continue
            for entry in entries:
                if entry.name in SKIPPED_DIR_NAMES or not entry.is_dir(follow_symlinks=False):
                    continue
                candidate = Path(entry.path)
                (found if _is_root(candidate) else below).append(candidate)
        level = below
    return found


def _is_build_dir(path: Path | str) -> bool:
    return any(os.path.exists(os.path.join(path, marker)) for marker in BUILD_DIR_MARKERS)


def _git_files(root: Path) -> list[str] | None:
    try:
        out = git_output(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    except GitError:
        return None
    return [name for name in out.decode("utf-8", "surrogateescape").split("\0") if name]


def walk_folders(directory: Path, root: Path, skipped: list[tuple[str, str]]) -> dict[str, FolderEntries]:
    """Every folder under `directory` with its subfolders and files, root-relative.

    Build directories and SKIPPED_DIR_NAMES are named in their parent's listing
    but not entered.  A folder that cannot be listed is a warning, not the end
    of the run, and maps to None.
    """
    folders: dict[str, FolderEntries] = {}
    root_text = str(root)
    top = str(directory)

    def relative(path: str) -> str:
        rel = os.path.relpath(path, root_text).replace(os.sep, "/")
        return "" if rel == "." else rel

    def unreadable(error: OSError) -> None:
        where = relative(error.filename) if error.filename else relative(top)
        skipped.append((where or ".", f"directory cannot be read ({error.strerror or error}); skipped"))
        folders[where] = None

    for dirpath, dirnames, filenames in _walk(top, unreadable):
        if dirpath != top and BUILD_DIR_MARKERS.intersection(filenames):
            dirnames[:] = []  # a build directory: its listing says so, no stat needed
            continue
        dirnames[:] = [d for d in dirnames if d not in SKIPPED_DIR_NAMES]
        folders[relative(dirpath)] = (dirnames, filenames)
    return folders


def _walk(top: str, onerror: Callable[[OSError], None]):
    """os.walk(top, onerror=onerror) top-down, without following links, but with a stack of its own:
    os.walk recurses once per level before Python 3.12, and a tree can be thousands of folders deep."""
    pending = [top]
    while pending:
        dirpath = pending.pop()
        dirnames, filenames = [], []
        try:
            with os.scandir(dirpath) as entries:
                for entry in entries:
                    try:
                        is_dir = entry.is_dir()  # a link to a folder is listed as one, not entered
                    except OSError:
                        is_dir = False
                    (dirnames if is_dir else filenames).append(entry.name)
        except OSError as error:
            onerror(error)
            continue
        yield dirpath, dirnames, filenames  # the caller may prune dirnames, as with os.walk
        pending.extend(os.path.join(dirpath, name) for name in reversed(dirnames)
                       if not os.path.islink(os.path.join(dirpath, name)))


def _files_in(folders: dict[str, FolderEntries], suffixes: tuple[str, ...]) -> list[str]:
    return [
        (folder + "/" + name if folder else name)
        for folder, entries in folders.items() if entries is not None
        for name in entries[1] if name.endswith(suffixes)
    ]


def _in_build_dir(relpath: str, root: Path, cache: dict[str, bool]) -> bool:
    folder = relpath.rpartition("/")[0]
    if not folder:
        return False
    known = cache.get(folder)
    if known is None:  # each folder is looked at once, whatever the number of files in it
        known = cache[folder] = _in_build_dir(folder, root, cache) or _is_build_dir(os.path.join(root, folder))
    return known


def discover(
    paths: list[str], excludes: tuple[str, ...] = (), suffixes=C_SUFFIXES,
    overlay: Callable[[Path], Overlay] | None = None, whole_tree: bool = False,
) -> SourceSet:
    """Resolve command-line paths into the files to analyse.

    `overlay`, given the checkout's root, says which files to analyse with
    other content than the disk's, or as absent: a file it holds counts even
    when the disk has none, one it says is absent does not.

    With `whole_tree`, the paths found a checkout at, above or below them, and
    every file of that checkout is analysed: its callers, scopes and era are
    the context of the named files.  The named paths are then only what the
    command reports (`SourceSet.named`).  Without a checkout there is no tree
    to read, and only the named paths are analysed.
    """
    resolved, missing = [], []
    for raw in paths or ["."]:
        path = Path(raw)
        try:
            resolved.append(path.resolve())
            if not path.exists():
                missing.append((raw, resolved[-1]))
        except OSError as error:
            raise UsageError(f"{raw[:200]}: cannot be read ({error.strerror or error})") from None
    common = Path(os.path.commonpath([str(p) for p in resolved]))
    root = _find_root(common)
    skipped: list[tuple[str, str]] = []
    display_base = resolved[0] if len(resolved) == 1 and _is_dir(resolved[0]) else None
    if root is None:
        root, resolved = _root_below(common, resolved, skipped, paths)
    in_checkout = _is_root(root)
    display_base = display_base or root
    named = tuple(sorted({"" if path == root else path.relative_to(root).as_posix() for path in resolved}))
    contents: Overlay = overlay(root) if overlay is not None else {}
    for raw, path in missing:
        if contents.get(os.path.relpath(path, root).replace(os.sep, "/")) is None:
            raise UsageError(f"{raw}: no such file or directory")

    listed = resolved
    if whole_tree and in_checkout:
        listed = [root, *(path for path in resolved if not _is_dir(path))]  # a named file of any suffix counts
    # git's file list only when a folder is to be listed: a pre-commit run names its files
    in_git = any(_is_dir(path) for path in listed) and _exists(root / ".git") and _git_files(root)
    selected: set[str] = set()
    build_dir_cache: dict[str, bool] = {}
    listing = None
    for path in listed:
        if not _is_dir(path):
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
            started_ns = time.time_ns()
            folders = walk_folders(path, root, skipped)
            if path == root:
                listing = TreeListing(started_ns, folders)
            candidates = _files_in(folders, suffixes)
        selected.update(f for f in candidates if f.endswith(suffixes))
        selected.update(f for f, data in contents.items() if data is not None and f.endswith(suffixes)
                        and (rel == "." or f.startswith(rel + "/")) and not _in_build_dir(f, root, build_dir_cache))
    selected = {f for f in selected if contents.get(f, b"") is not None}
    if excludes:
        selected = {f for f in selected if not is_excluded(f, excludes)}
    return SourceSet(root=root, display_base=display_base, files=tuple(sorted(selected)), skipped=tuple(skipped),
                     listing=listing, overlay=contents, named=named, in_checkout=in_checkout)


def tree_files(root: Path, listing: TreeListing | None = None) -> tuple[list[str], list[tuple[str, str]]]:
    """Every file of the tree, whatever its suffix, and (path, why) for folders that could not be listed.

    git's file list inside a work tree, else a walk (`listing`, when discovery
    already walked the whole tree).  Build directories and kvmlint's own state
    are left out; no configured exclusion applies.
    """
    skipped: list[tuple[str, str]] = []
    listed = _exists(root / ".git") and _git_files(root)
    if listed:
        build_dir_cache: dict[str, bool] = {}
        files = [f for f in listed if not _in_build_dir(f, root, build_dir_cache)]
    else:
        folders = listing.folders if listing is not None else walk_folders(root, root, skipped)
        files = _files_in(folders, ("",))
        skipped = skipped if listing is None else [(f or ".", "directory cannot be read; skipped")
                                                   for f, entries in folders.items() if entries is None]
    kept = [f for f in files if not any(part.startswith(KVMLINT_STATE_PREFIX) for part in f.split("/"))]
    return sorted(kept), skipped


@dataclass
class TextScan:
    found: dict[str, bytes]  # the text files `wanted` chose, with their bytes
    unread: list[tuple[str, str]]  # (path, why) for files that may be text but could not be read


def scan_text(root: Path, files: list[str], wanted: Callable[[str, bytes], bool],
              max_total: int = MAX_SCAN_BYTES) -> TextScan:
    """Read the text files among `files` (each bounded as any source, `max_total` in all), keeping
    those `wanted` chooses.  A symlink is not followed: its target, when in the tree, is listed
    itself; one that leads outside the tree is named as not read.  Special files and files gone
    since the listing are not the tree's text; binary files are passed over."""
    scan = TextScan({}, [])
    total = 0
    real_root = os.path.realpath(root)
    for path in files:
        try:
            info = os.lstat(root / path)
        except FileNotFoundError:
            continue
        except OSError as error:
            scan.unread.append((path, f"cannot be looked at ({error.strerror or error})"))
            continue
        if stat.S_ISLNK(info.st_mode):
            target = os.path.realpath(root / path)
            if os.path.commonpath([real_root, target]) != real_root and _exists(Path(target)):
                scan.unread.append((path, "a symlink that leads outside the tree: not read"))
            continue
        if not stat.S_ISREG(info.st_mode):
            continue
        total += info.st_size
        if total > max_total:
            scan.unread.append((path, f"the tree holds more than {format_size(max_total)} of files: not read from here on"))
            break
        try:
            data = read_regular_file(root / path, follow_symlinks=False)
        except UnreadableFile as problem:
            scan.unread.append((path, str(problem).removesuffix("; skipped")))
            continue
        if b"\0" not in data[:BINARY_PROBE_BYTES] and wanted(path, data):
            scan.found[path] = data
    return scan


def _root_below(common: Path, resolved: list[Path], skipped: list, given: list[str]) -> tuple[Path, list[Path]]:
    """No checkout at or above the checked paths (`given` as the command line spelled them): the one below
    a checked directory, if any.

    Checking the parent of a checkout would otherwise read its files without
    its build files, and call everything common code.
    """
    directory = common if _is_dir(common) else common.parent
    found = roots_below(directory) if len(resolved) == 1 and _is_dir(resolved[0]) else []
    if len(found) == 1:
        return found[0], found
    if len(found) > 1:
        names = ", ".join(os.path.relpath(path) for path in found[:5]) + (", ..." if len(found) > 5 else "")
        raise UsageError(f"{os.path.relpath(directory)} holds {len(found)} QEMU checkouts ({names}): check them one at a time")
    if _is_dir(common):
        skipped.append((
            given[0] if len(given) == 1 else os.path.relpath(common),
            "no QEMU checkout found here or above (no configure, Makefile.target, configs/targets "
            "or .git): scopes follow path conventions only",
        ))
    return directory, resolved


def is_excluded(relpath: str, patterns: tuple[str, ...]) -> bool:
    """Whether a configured or given exclusion pattern (a glob, or a folder prefix) names `relpath`."""
    name = relpath.rsplit("/", 1)[-1]
    return any(
        fnmatch.fnmatch(relpath, pattern)
        or fnmatch.fnmatch(name, pattern)
        or relpath.startswith(pattern.rstrip("/") + "/")
        for pattern in patterns
    )


def read_source(path: Path) -> SourceBytes:
    try:
        return source_bytes(read_regular_file(path))
    except UnreadableFile as problem:
        return SourceBytes(None, str(problem))


def source_bytes(data: bytes) -> SourceBytes:
    """`data` as a source file's content: refused as read_source refuses a file on disk."""
    if len(data) > MAX_FILE_BYTES:
        return SourceBytes(None, f"larger than {format_size(MAX_FILE_BYTES)}; skipped")
    if b"\0" in data[:8192]:
        return SourceBytes(None, "binary file; skipped")
    return SourceBytes(data, None)


def needs_parse(data: bytes) -> bool:
    return any(literal in data for literal in PREFILTER_LITERALS)
