"""A cache of per-file facts and of the build-scope reading, so a second run parses nothing unchanged.

Where: `.kvmlint_cache/` at the checked tree's root (it holds its own
`.gitignore`, as pytest's and ruff's caches do), or `$KVMLINT_CACHE_DIR`.
`--no-cache` turns it off.

What is kept, and what a stored answer is keyed by:

- per file: its stat signature and the sha256 of its bytes (`FileRecord`, one
  index per tree), and the facts extracted from those bytes (one entry per
  path and content).  A file whose stat changed is read and hashed again; its
  facts are reused when the content is the same.  Keyed by kvmlint's version
  and the digest of the code that reads and extracts (kvmlint's own modules
  and the parser libraries), not by the model: facts do not depend on it.
- the scope resolver's answers (`Scope` per path, and the tree's families),
  keyed by the digest of the scope code and by what the resolver read: the
  bytes of every file it read (whatever its name: an `include`d or
  `source`d file counts) and the listing of every folder of the tree (its
  build files and subfolders), so a build file created, removed or renamed
  anywhere, a new target folder or device config, is noticed.

The bundled model is not cached: it is read on every run, so editing it
changes the findings at once while the facts stay valid.

Every entry is one file written under a temporary name and renamed into
place, so two runs at once never leave a half-written entry.  An entry is
trusted only when its header, key, length and sha256 match and it unpickles
into the expected types with a loader that knows no other classes; anything
else (truncated, corrupt, foreign version, written by another tree) is
ignored and rebuilt, never a traceback.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import pickle
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from kvmlint import __version__
from kvmlint.scope.build import observe_reads, read_build_file, stop_observing
from kvmlint.source import SKIPPED_DIR_NAMES, TreeListing, walk_folders

CACHE_DIR_NAME = ".kvmlint_cache"
ENV_CACHE_DIR = "KVMLINT_CACHE_DIR"
FORMAT = 1
MAGIC = b"kvmlint-cache %d\n" % FORMAT
GITIGNORE = "# Created by kvmlint automatically.\n*\n"
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by kvmlint.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)
# A file modified this close to the moment its stat was taken may change again
# within the same timestamp tick: its stat is not trusted next time (git calls
# this "racily clean"), so its bytes are hashed again.
RACY_NANOSECONDS = 2_000_000_000
# Leftovers of a run killed between writing and renaming an entry, and facts of
# file versions the index no longer names, are removed once this old (a run
# going on at the same time may still be using a younger one).
STALE_SECONDS = 3600
# Files whose names say they are build files: a folder listing names these (and every subfolder).
BUILD_FILE_NAMES = frozenset({"meson.build", "meson_options.txt", "meson.options", "configure"})
BUILD_FILE_PREFIXES = ("Kconfig", "Makefile")
BUILD_FILE_SUFFIXES = (".mak", ".mk")
BUILD_CONFIG_FOLDERS = ("configs/", "default-configs/")

# Outcome of reading one file, kept in its FileRecord.
PARSED = "parsed"  # facts entry stored
NOT_PARSED = "not-parsed"  # the prefilter found nothing to parse


class FileRecord(NamedTuple):
    """Stored as a plain tuple: seven thousand of them load in a few milliseconds."""

    signature: tuple[int, int, int, int]  # size, mtime_ns, ctime_ns, inode
    sha256: str
    outcome: str  # PARSED, NOT_PARSED, or why the file cannot be analysed
    trusted: bool  # the stat was taken long enough after the last change


def stat_signature(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def is_settled(signature: tuple[int, int, int, int], taken_ns: int) -> bool:
    """Whether a stat signature taken at `taken_ns` can vouch for the bytes read after it."""
    return max(signature[1], signature[2]) < taken_ns - RACY_NANOSECONDS


def _is_build_file_name(name: str) -> bool:
    return name in BUILD_FILE_NAMES or name.startswith(BUILD_FILE_PREFIXES) or name.endswith(BUILD_FILE_SUFFIXES)


def is_build_file(relpath: str) -> bool:
    """Whether a file (relative to the tree's root) is read by the build rather than compiled."""
    return _is_build_file_name(relpath.rsplit("/", 1)[-1]) or relpath.startswith(BUILD_CONFIG_FOLDERS)


def _hash(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogateescape") if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


def _code_digest(folder: Path, recursive: bool) -> str:
    """Digest of the Python sources under `folder`: any edit of kvmlint's code makes a new key."""
    pattern = "**/*.py" if recursive else "*.py"
    digest = hashlib.sha256()
    for path in sorted(folder.glob(pattern)):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _library_digest(*packages: str) -> str:
    """Names, sizes and times of the parser libraries' files: an upgrade makes a new key."""
    parts = []
    for package in packages:
        folder = next((os.path.join(entry, package) for entry in sys.path if os.path.isdir(os.path.join(entry or ".", package))), None)
        if folder is None:
            parts.append(f"{package}:absent")
            continue
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.is_file():
                    st = entry.stat()
                    parts.append(f"{package}/{entry.name}:{st.st_size}:{st.st_mtime_ns}")
    return _hash(*parts)


def facts_key() -> str:
    """What extracted facts depend on besides the file's bytes: kvmlint's reading code and parsers."""
    package = Path(__file__).resolve().parent
    return _hash(
        "facts", str(FORMAT), __version__, sys.version, _code_digest(package, recursive=False),
        _library_digest("tree_sitter", "tree_sitter_c", "libcst"),
    )


def scope_key() -> str:
    """What the scope resolver's answers depend on besides the build files: its code."""
    package = Path(__file__).resolve().parent
    return _hash(
        "scope", str(FORMAT), __version__, sys.version, _code_digest(package / "scope", recursive=True),
        _code_digest(package, recursive=False),
    )


class _FactsUnpickler(pickle.Unpickler):
    """Rebuilds only kvmlint's own record types: a crafted entry cannot run code."""

    allowed: dict[tuple[str, str], type] = {}

    def find_class(self, module: str, name: str):
        found = self.allowed.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"{module}.{name} is not a cache record type")
        return found


def _record_types() -> dict[tuple[str, str], type]:
    from kvmlint import facts
    from kvmlint.scope import Scope

    types = [obj for obj in vars(facts).values() if isinstance(obj, type) and dataclasses.is_dataclass(obj)]
    types += [Scope, frozenset, set]
    return {(cls.__module__, cls.__qualname__): cls for cls in types}


def _loads(payload: bytes):
    if not _FactsUnpickler.allowed:
        _FactsUnpickler.allowed = _record_types()
    return _FactsUnpickler(io.BytesIO(payload)).load()


class Cache:
    """One cache directory.  Picklable, so parser workers can read and write facts entries too."""

    def __init__(self, directory: Path, root: Path, own: bool = False):
        self.directory = directory
        self.root = root
        self.own = own  # the tree's own folder: no other tree's entries are in it
        self.facts_key = facts_key()
        self.scope_key = scope_key()
        tree = str(root.resolve())
        self.index_name = "index-" + _hash(self.facts_key, tree)[:32]
        self.scope_name = "scope-" + _hash(self.scope_key, tree)[:32]

    @classmethod
    def for_tree(cls, root: Path) -> Cache | None:
        """The tree's cache, or None when it cannot be used (a read-only tree, a symlinked cache folder)."""
        configured = os.environ.get(ENV_CACHE_DIR)
        directory = Path(configured) if configured else root / CACHE_DIR_NAME
        try:
            if not configured and directory.is_symlink():
                return None  # a tree must not send kvmlint's writes elsewhere
            if not directory.is_dir():
                directory.mkdir(parents=bool(configured))
                (directory / ".gitignore").write_text(GITIGNORE)
                (directory / "CACHEDIR.TAG").write_text(CACHEDIR_TAG)
            if not os.access(directory, os.W_OK | os.X_OK):
                return None
        except OSError:
            return None
        return cls(directory, root, own=not configured)

    # Entries: MAGIC, key line, sha256 line, payload (pickle).

    def read(self, name: str, key: str):
        """The entry's object, or None when it is missing or cannot be trusted."""
        try:
            with open(self.directory / name, "rb") as stream:
                blob = stream.read()
        except OSError:
            return None
        header = len(MAGIC) + 2 * 65
        if len(blob) < header or not blob.startswith(MAGIC):
            return None
        stored_key = blob[len(MAGIC):len(MAGIC) + 64]
        stored_sha = blob[len(MAGIC) + 65:len(MAGIC) + 129]
        payload = blob[header:]
        if stored_key != key.encode() or stored_sha != hashlib.sha256(payload).hexdigest().encode():
            return None
        try:
            return _loads(payload)
        except Exception:  # noqa: BLE001 -- any broken entry is rebuilt, whatever the unpickler says
            return None

    def write(self, name: str, key: str, value) -> None:
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        blob = b"".join(
            [MAGIC, key.encode(), b"\n", hashlib.sha256(payload).hexdigest().encode(), b"\n", payload]
        )
        try:
            handle, temporary = tempfile.mkstemp(prefix=".tmp-", dir=self.directory)
        except OSError:
            return  # the cache is an optimisation: a full disk costs speed, not the run
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(blob)
            os.replace(temporary, self.directory / name)
        except OSError:
            try:
                os.unlink(temporary)
            except OSError:
                pass

    # Per-file facts.

    def facts_name(self, relpath: str, sha256: str) -> str:
        return "facts-" + _hash(self.facts_key, relpath, sha256)[:40]

    def load_facts(self, relpath: str, sha256: str):
        from kvmlint.facts import FileFacts

        facts = self.read(self.facts_name(relpath, sha256), self.facts_key)
        return facts if isinstance(facts, FileFacts) and facts.path == relpath else None

    def store_facts(self, relpath: str, sha256: str, facts) -> None:
        self.write(self.facts_name(relpath, sha256), self.facts_key, facts)

    def load_index(self) -> dict[str, tuple]:
        """Path -> FileRecord fields; a malformed record is a miss where it is used (see parallel.py)."""
        index = self.read(self.index_name, self.facts_key)
        return index if isinstance(index, dict) else {}

    def store_index(self, index: dict[str, tuple]) -> None:
        self.write(self.index_name, self.facts_key, {path: tuple(record) for path, record in index.items()})
        in_use = {self.facts_name(path, record[1]) for path, record in index.items() if record[2] == PARSED}
        self._remove_stale(in_use)

    def _remove_stale(self, in_use: set[str]) -> None:
        """Temporary files of killed runs and, in the tree's own folder, entries of old file versions or kvmlints."""
        cutoff = time.time() - STALE_SECONDS
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    stale = entry.name.startswith(".tmp-") or (
                        self.own and entry.name.startswith(("facts-", "index-", "scope-"))
                        and entry.name not in in_use and entry.name not in (self.index_name, self.scope_name)
                    )
                    if stale and entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
        except OSError:
            pass

    # The scope resolver's answers.

    def load_scopes(self) -> ScopeAnswers | None:
        answers = self.read(self.scope_name, self.scope_key)
        if not isinstance(answers, dict) or answers.get("format") != FORMAT:
            return None
        try:
            loaded = ScopeAnswers(**{k: v for k, v in answers.items() if k != "format"})
        except TypeError:
            return None
        return loaded if loaded.still_valid(self.root) else None

    def store_scopes(self, answers: ScopeAnswers) -> None:
        fields = {f.name: getattr(answers, f.name) for f in dataclasses.fields(answers)}  # asdict would unpack the Scopes
        self.write(self.scope_name, self.scope_key, {"format": FORMAT, **fields})


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
            if _build_file_sha256(full) != sha256:
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


def _build_file_sha256(path: str) -> str | None:
    """The hash of what the scope reader reads from `path`; None where it reads nothing."""
    data = read_build_file(Path(path))
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

    def __init__(self, root: Path, make_resolver, cache: Cache | None = None, listing: TreeListing | None = None):
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
