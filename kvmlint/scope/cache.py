"""The scope stage's cache: the resolver's answers, reused while the build files stay the same.

The answers (`Scope` per path, and the tree's families) are keyed by the
digest of the scope code (and the source stage's, which lists and reads the
tree) and by what the resolver read: the bytes of every file it read
(whatever its name: an `include`d or `source`d file counts) and the listing
of every folder of the tree (its build files and subfolders), so a build file
created, removed or renamed anywhere, a new target folder or device config,
is noticed.

The entry lives in the shared storage (`kvmlint.store`: sealing, folder
checks, atomic writes).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from kvmlint import __version__
from kvmlint.scope.build import observe_reads, read_build_file, stop_observing
from kvmlint.source.cache import RACY_NANOSECONDS, is_settled, stat_signature
from kvmlint.source.discover import SKIPPED_DIR_NAMES, TreeListing, walk_folders
from kvmlint.store import FORMAT, Store, code_digest, hash_parts, record_types

# Files whose names say they are build files: a folder listing names these (and every subfolder).
BUILD_FILE_NAMES = frozenset({"meson.build", "meson_options.txt", "meson.options", "configure"})
BUILD_FILE_PREFIXES = ("Kconfig", "Makefile")
BUILD_FILE_SUFFIXES = (".mak", ".mk")
BUILD_CONFIG_FOLDERS = ("configs/", "default-configs/")


def _is_build_file_name(name: str) -> bool:
    return name in BUILD_FILE_NAMES or name.startswith(BUILD_FILE_PREFIXES) or name.endswith(BUILD_FILE_SUFFIXES)


def is_build_file(relpath: str) -> bool:
    """Whether a file (relative to the tree's root) is read by the build rather than compiled."""
    return _is_build_file_name(relpath.rsplit("/", 1)[-1]) or relpath.startswith(BUILD_CONFIG_FOLDERS)


def scope_key() -> str:
    """What the scope resolver's answers depend on besides the build files: its code."""
    package = Path(__file__).resolve().parent.parent
    return hash_parts(
        "scope", str(FORMAT), __version__, sys.version, code_digest(package / "scope", recursive=True),
        code_digest(package, recursive=False), code_digest(package / "source", recursive=True),
    )


@lru_cache(maxsize=1)
def _scope_types() -> dict[tuple[str, str], type]:
    """All that a stored reading may unpickle into."""
    from kvmlint.scope.resolver import Scope

    return record_types([Scope])


class ScopeCache:
    """The resolver's answers for one tree in a store."""

    def __init__(self, store: Store):
        self.store = store
        self.root = store.root
        self.scope_key = scope_key()
        self.scope_name = "scope-" + hash_parts(self.scope_key, store.tree)[:32]
        store.current.add(self.scope_name)

    def load_scopes(self) -> ScopeAnswers | None:
        answers = self.store.read(self.scope_name, self.scope_key, _scope_types())
        if not isinstance(answers, dict) or answers.get("format") != FORMAT:
            return None
        try:
            loaded = ScopeAnswers(**{k: v for k, v in answers.items() if k != "format"})
        except TypeError:
            return None
        return loaded if loaded.still_valid(self.root) else None

    def store_scopes(self, answers: ScopeAnswers) -> None:
        fields = {f.name: getattr(answers, f.name) for f in dataclasses.fields(answers)}  # asdict would unpack the Scopes
        self.store.write(self.scope_name, self.scope_key, {"format": FORMAT, **fields})


@dataclass
class ScopeAnswers:
    """The resolver's answers and everything they were read from."""

    # each file read -> (its stat, the sha256 of the bytes read); None where it was missing or unreadable
    reads: dict[str, tuple[tuple[int, int, int, int] | None, str | None]]
    # every folder of the tree -> ((mtime_ns, ctime_ns), its build files and subfolders)
    folders: dict[str, tuple[tuple[int, int], tuple[str, ...]]]
    taken_ns: int  # before the tree was listed and its build files read
    scopes: dict  # relpath -> Scope
    known_families: frozenset
    warnings: tuple = ()  # (build file, what was not read): the bounds the reading hit

    def still_valid(self, root: Path) -> bool:
        """Whether every folder lists the same build files and subfolders, and every file read has the same bytes.

        A folder gains or loses an entry only by changing its mtime, so an
        unchanged, settled folder is not listed again; likewise a file's stat
        vouches for its bytes.  One stat per folder and per file read.
        """
        root_text = str(root)
        for folder, (signature, listing) in self.folders.items():
            try:
                st = os.stat(os.path.join(root_text, folder))
            except OSError:
                return False
            if (st.st_mtime_ns, st.st_ctime_ns) == signature and max(signature) < self.taken_ns - RACY_NANOSECONDS:
                continue
            if _list_folder(root_text, folder) != listing:
                return False
        for path, (signature, sha256) in self.reads.items():
            full = os.path.join(root_text, path)
            if signature is not None:
                try:
                    st = os.stat(full)
                except OSError:
                    return False
                if stat_signature(st) == signature and is_settled(signature, self.taken_ns):
                    continue
            if _build_file_sha256(root, full) != sha256:
                return False
        return True


# The listing of a folder that cannot be listed.
UNLISTABLE = ("<unreadable>",)


def _folder_listing(folder: str, subfolders: Iterable[str], files: Iterable[str]) -> tuple[str, ...]:
    """What in a folder can change the scope reading: its subfolders (with a slash) and build files."""
    if (folder + "/").startswith(BUILD_CONFIG_FOLDERS):
        build_files = list(files)
    else:
        build_files = [name for name in files if _is_build_file_name(name)]
    return tuple(sorted([name + "/" for name in subfolders] + build_files))


def _list_folder(root_text: str, folder: str) -> tuple[str, ...]:
    """The folder's listing now, told apart as discovery's walk does (a symlink to a folder is a subfolder)."""
    subfolders, files = [], []
    try:
        with os.scandir(os.path.join(root_text, folder)) as entries:
            for entry in entries:
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                if not is_dir:
                    files.append(entry.name)
                elif entry.name not in SKIPPED_DIR_NAMES:
                    subfolders.append(entry.name)
    except OSError:
        return UNLISTABLE
    return _folder_listing(folder, subfolders, files)


def _folder_records(root: Path, listing: TreeListing) -> dict[str, tuple[tuple[int, int], tuple[str, ...]]]:
    """Each walked folder's listing, with its times taken now: a change since the walk began is
    younger than `listing.started_ns`, so the next run lists that folder again."""
    root_text = str(root)
    records = {}
    for folder, entries in listing.folders.items():
        try:
            st = os.stat(os.path.join(root_text, folder))
        except OSError:
            continue  # gone since: its parent's listing no longer matches
        listing = UNLISTABLE if entries is None else _folder_listing(folder, *entries)
        records[folder] = ((st.st_mtime_ns, st.st_ctime_ns), listing)
    return records


def _build_file_sha256(root: Path, path: str) -> str | None:
    """The hash of what the scope reader reads from `path`; None where it reads nothing."""
    data = read_build_file(root, Path(path))
    return None if data is None else hashlib.sha256(data).hexdigest()


class _ReadRecorder:
    """Every file the scope reader reads: its stat, taken after the read (a change after the tree's
    listing began is unsettled, so its bytes are hashed again), and the sha256 of the bytes read."""

    def __init__(self, root: Path):
        self.prefix = str(root) + os.sep
        self.reads: dict[str, tuple[tuple[int, int, int, int] | None, str | None]] = {}

    def __call__(self, path: Path, data: bytes | None) -> None:
        text = os.fspath(path)
        relpath = text[len(self.prefix):] if text.startswith(self.prefix) else text
        if relpath in self.reads:
            return  # the first read is what the answers came from
        try:
            signature = stat_signature(os.stat(text))
        except OSError:
            signature = None
        self.reads[relpath] = (signature, None if data is None else hashlib.sha256(data).hexdigest())


class CachedScopes:
    """The scope resolver's answers, reused across runs while the build files stay the same.

    Wraps the resolver from outside: a question it has no stored answer for
    goes to the real resolver, which reads the build files then; anything
    else the resolver offers is passed through to it.  With a cache, every
    build file the resolver reads and the listing of every folder are
    recorded, so the next run can tell whether the answers still hold.
    """

    def __init__(self, root: Path, make_resolver, cache: ScopeCache | None = None, listing: TreeListing | None = None):
        self.root = root
        self._make_resolver = make_resolver
        self._resolver = None
        self.cache = cache
        self.listing = listing  # discovery's walk of the tree, when it made one
        self.stored = cache.load_scopes() if cache is not None else None
        self.answers: dict = dict(self.stored.scopes) if self.stored else {}
        self.changed = False
        self._recorder: _ReadRecorder | None = None
        self._folders: dict = {}
        self._taken_ns = 0

    @property
    def resolver(self):
        if self._resolver is None:
            if self.cache is not None:
                self._start_recording()
            self._resolver = self._make_resolver(self.root)
        return self._resolver

    def _start_recording(self) -> None:
        """List the tree (or take discovery's listing) before the resolver reads anything."""
        if self.stored is not None:  # still valid: its listing holds, the new answers add their reads
            self._taken_ns, self._folders = self.stored.taken_ns, self.stored.folders
        else:
            listing = self.listing or TreeListing(time.time_ns(), walk_folders(self.root, self.root, []))
            self._taken_ns, self._folders = listing.started_ns, _folder_records(self.root, listing)
        self._recorder = _ReadRecorder(self.root)
        observe_reads(self._recorder)

    def scope_of(self, relpath: str):
        answer = self.answers.get(relpath)
        if answer is None:
            answer = self.answers[relpath] = self.resolver.scope_of(relpath)
            self.changed = True
        return answer

    @property
    def known_families(self) -> frozenset:
        if self.stored is not None:
            return self.stored.known_families
        return self.resolver.known_families

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.resolver, name)

    @property
    def warnings(self) -> tuple[tuple[str, str], ...]:
        """The bounds the build-file reading hit: stored with the answers, so a warm run names them too."""
        found = dict.fromkeys(self.stored.warnings if self.stored is not None else ())
        if self._resolver is not None:
            found.update(dict.fromkeys(self._resolver.warnings))
        return tuple(found)

    def prepare(self, paths: Iterable[str]) -> None:
        for relpath in paths:
            self.scope_of(relpath)

    def save(self) -> None:
        """Store the answers with what they were read from; the reads of later questions are not recorded."""
        if self._recorder is None:
            return
        stop_observing(self._recorder)
        if not self.changed:
            return
        reads = dict(self._recorder.reads)
        if self.stored is not None:
            reads.update(self.stored.reads)  # what the stored answers came from
        known_families = self.stored.known_families if self.stored is not None else self.resolver.known_families
        self.cache.store_scopes(ScopeAnswers(reads, self._folders, self._taken_ns, self.answers, known_families,
                                             self.warnings))
