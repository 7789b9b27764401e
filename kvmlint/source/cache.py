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
place, so two runs at once never leave a half-written entry.

A cache folder may come with the tree (a tarball, a colleague's branch), so
nothing in it is believed because of where it is:

- an entry is used only if this user's kvmlint wrote it: each one is sealed
  with an HMAC-SHA256, under a secret key of the user's (made once, in
  `$XDG_CACHE_HOME/kvmlint/` or `~/.cache/kvmlint/`, readable by the user
  alone), over its name, header and payload, checked before anything is
  unpickled; and it unpickles only into kvmlint's own record types.  Any
  other entry (planted, truncated, of another version or tree) is ignored,
  rebuilt and overwritten, never a traceback;
- the folder must be a real folder of the user's, never a symlink: it is
  opened once and every entry is opened, written, renamed and removed
  relative to that open folder, with O_NOFOLLOW, so nothing renamed in the
  tree meanwhile sends kvmlint elsewhere; an entry is read only when it is a
  regular file of at most MAX_ENTRY_BYTES;
- the sweep of stale entries removes only entries and temporaries whose
  seal says this user's kvmlint made them.

When the key cannot be had (a read-only home) or the folder is not the
user's, the run goes without the cache and says so once.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import hmac
import io
import os
import pickle
import secrets
import stat
import sys
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from kvmlint import __version__
from kvmlint.scope.build import observe_reads, read_build_file, stop_observing
from kvmlint.source.discover import SKIPPED_DIR_NAMES, TreeListing, walk_folders

CACHE_DIR_NAME = ".kvmlint_cache"
ENV_CACHE_DIR = "KVMLINT_CACHE_DIR"
FORMAT = 2
MAGIC = b"kvmlint-cache %d\n" % FORMAT
# The key's folder in the user's cache home, and the key: random bytes that only this user can read.
KEY_FOLDER_NAME = "kvmlint"
KEY_FILE_NAME = "key"
KEY_BYTES = 32
# An entry larger than this is not read (an index of a hundred thousand files is a few megabytes).
MAX_ENTRY_BYTES = 64 << 20
ENTRY_PREFIXES = ("facts-", "index-", "scope-")
TEMPORARY_PREFIX = ".tmp-"
_OPEN_ENTRY = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)  # a FIFO does not block
_CREATE_PRIVATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_OPEN_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
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
    package = Path(__file__).resolve().parent.parent
    return _hash(
        "facts", str(FORMAT), __version__, sys.version, _code_digest(package, recursive=False),
        _code_digest(package / "source", recursive=True),
        _library_digest("tree_sitter", "tree_sitter_c", "libcst"),
    )


def scope_key() -> str:
    """What the scope resolver's answers depend on besides the build files: its code."""
    package = Path(__file__).resolve().parent.parent
    return _hash(
        "scope", str(FORMAT), __version__, sys.version, _code_digest(package / "scope", recursive=True),
        _code_digest(package, recursive=False), _code_digest(package / "source", recursive=True),
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
    from kvmlint.scope import Scope
    from kvmlint.source import facts

    types = [obj for obj in vars(facts).values() if isinstance(obj, type) and dataclasses.is_dataclass(obj)]
    types += [Scope, frozenset, set]
    return {(cls.__module__, cls.__qualname__): cls for cls in types}


def _loads(blob: bytes, offset: int):
    """The object pickled in `blob` from `offset` on (not copied: an index is megabytes)."""
    if not _FactsUnpickler.allowed:
        _FactsUnpickler.allowed = _record_types()
    stream = io.BytesIO(blob)
    stream.seek(offset)
    return _FactsUnpickler(stream).load()


class CacheUnavailable(Exception):
    """Why a run goes without the cache: a sentence naming the file or folder, said once as a warning."""


def key_folder() -> Path:
    """`$XDG_CACHE_HOME/kvmlint`, else `~/.cache/kvmlint` (as the XDG rule says, a relative value is ignored)."""
    configured = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(configured):
        return Path(configured) / KEY_FOLDER_NAME
    try:
        return Path.home() / ".cache" / KEY_FOLDER_NAME
    except RuntimeError:  # no HOME and no password entry
        raise CacheUnavailable("no home folder to keep the cache key in; running without the cache") from None


def user_secret() -> bytes:
    """This user's key for sealing cache entries, made on the first run: no one else can seal an entry."""
    folder = key_folder()
    path = folder / KEY_FILE_NAME
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.stat(folder)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
            raise CacheUnavailable(f"{folder}: not a folder only this user can write; running without the cache")
        secret = _read_secret(path)
        if secret is None:
            _make_secret(folder, path)
            secret = _read_secret(path)
    except OSError as error:
        raise CacheUnavailable(f"{path}: cannot make the cache key ({_reason(error)}); running without the cache") from None
    if secret is None:
        raise CacheUnavailable(f"{path}: the cache key vanished as it was made; running without the cache")
    return secret


def _reason(error: OSError) -> str:
    return "a symlink" if error.errno == errno.ELOOP else error.strerror or str(error)


def _read_secret(path: Path) -> bytes | None:
    """The key, or None when there is none yet; refused unless it is a private file of this user's."""
    try:
        handle = os.open(path, _OPEN_ENTRY)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise CacheUnavailable(f"{path}: cannot read the cache key ({_reason(error)}); running without the cache") from None
    try:
        st = os.fstat(handle)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077 or st.st_size != KEY_BYTES:
            raise CacheUnavailable(f"{path}: not a {KEY_BYTES}-byte file that only this user can read; running "
                                   "without the cache (remove it and the next run makes a new key)")
        secret = os.read(handle, KEY_BYTES)
    finally:
        os.close(handle)
    return secret if len(secret) == KEY_BYTES else None


def _make_secret(folder: Path, path: Path) -> None:
    """Written whole under a name of its own, then linked into place: a run at the same time
    sees no key or the whole key, and the first one linked is everyone's."""
    temporary = folder / f".{KEY_FILE_NAME}-{secrets.token_hex(8)}"
    handle = os.open(temporary, _CREATE_PRIVATE, 0o600)
    try:
        try:
            os.write(handle, secrets.token_bytes(KEY_BYTES))
            os.fsync(handle)
        finally:
            os.close(handle)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(temporary)


def _write_new(folder_fd: int, name: str, data: bytes) -> None:
    try:
        with os.fdopen(os.open(name, _CREATE_PRIVATE, 0o644, dir_fd=folder_fd), "wb") as stream:
            stream.write(data)
    except OSError:
        pass  # a marker for other tools: the cache works without it


# Entries: MAGIC, key line, seal line, payload (pickle).
HEADER_BYTES = len(MAGIC) + 2 * 65


class Cache:
    """One cache folder.  Picklable, so parser workers can read and write facts entries too."""

    def __init__(self, directory: Path, root: Path, own: bool = False, secret: bytes | None = None):
        self.directory = directory
        self.root = root
        self.own = own  # the tree's own folder: no other tree's entries are in it
        self.secret = user_secret() if secret is None else secret
        self.facts_key = facts_key()
        self.scope_key = scope_key()
        tree = str(root.resolve())
        self.index_name = "index-" + _hash(self.facts_key, tree)[:32]
        self.scope_name = "scope-" + _hash(self.scope_key, tree)[:32]
        self._folder_fd: int | None = None  # the folder, once opened and checked: entries are opened relative to it
        self._identity: tuple[int, int] | None = None  # its device and inode: a process opening it again gets the same one
        self._unusable = False  # it could not be made, or is not the user's: this process goes without

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_folder_fd": None}  # another process opens the folder itself

    @classmethod
    def for_tree(cls, root: Path, warn: Callable[[str], None] | None = None) -> Cache | None:
        """The tree's cache, or None when it cannot be used: no key, or a folder that is not a real
        folder of the user's (`warn` is told why), or one that cannot be opened."""
        configured = os.environ.get(ENV_CACHE_DIR)
        directory = Path(configured) if configured else root / CACHE_DIR_NAME
        try:
            cache = cls(directory, root, own=not configured)
            cache._folder_fd = cache._open_folder(create=False)  # made by the first write: nothing to parse, no folder
        except CacheUnavailable as refusal:
            if warn is not None:
                warn(str(refusal))
            return None
        except OSError:
            return None
        return cache

    def _folder(self, create: bool) -> int | None:
        if self._folder_fd is None and not self._unusable:
            try:
                self._folder_fd = self._open_folder(create)
            except (CacheUnavailable, OSError):
                self._unusable = True  # a read-only tree, or a folder swapped since it was checked
        return self._folder_fd

    def _open_folder(self, create: bool) -> int | None:
        """The folder opened (made first when `create`), or None when it does not exist.  Raises
        CacheUnavailable when it is a symlink, not a folder, or not the user's."""
        made = False
        try:
            fd = os.open(self.directory, _OPEN_FOLDER)
        except FileNotFoundError:
            if not create:
                return None
            made = self._make_folder()
            fd = os.open(self.directory, _OPEN_FOLDER)
        except NotADirectoryError:
            what = "a symlink" if os.path.islink(self.directory) else "not a folder"
            raise CacheUnavailable(f"{self.directory}: {what}; running without the cache") from None
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or self._identity not in (None, (st.st_dev, st.st_ino)):
            os.close(fd)
            raise CacheUnavailable(f"{self.directory}: not this user's folder; running without the cache")
        self._identity = (st.st_dev, st.st_ino)
        weakref.finalize(self, os.close, fd)
        if made:
            for name, text in ((".gitignore", GITIGNORE), ("CACHEDIR.TAG", CACHEDIR_TAG)):
                _write_new(fd, name, text.encode())
        return fd

    def _make_folder(self) -> bool:
        """Whether this run made it (a run at the same time may make it first)."""
        try:
            self.directory.mkdir(parents=not self.own)
        except FileExistsError:
            return False
        return True

    def _seal(self, name: str, key: bytes, payload) -> bytes:
        """HMAC-SHA256, under the user's secret, of an entry's name, header and payload."""
        mac = hmac.new(self.secret, b"%s\0%s%s\n" % (name.encode(), MAGIC, key), hashlib.sha256)
        mac.update(payload)
        return mac.hexdigest().encode()

    def _read_sealed(self, name: str) -> tuple[bytes, bytes] | None:
        """(its key, the whole entry) when `name` is a regular file that this user's kvmlint sealed."""
        fd = self._folder(create=False)
        if fd is None:
            return None
        try:
            if not stat.S_ISREG(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                return None  # not even opened: opening a device can do things
            handle = os.open(name, _OPEN_ENTRY, dir_fd=fd)
        except OSError:
            return None
        try:
            st = os.fstat(handle)
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_ENTRY_BYTES:
                return None
            blob = os.read(handle, st.st_size + 1)
        except OSError:
            return None
        finally:
            os.close(handle)
        if len(blob) < HEADER_BYTES or not blob.startswith(MAGIC):
            return None
        key = blob[len(MAGIC):len(MAGIC) + 64]
        seal = blob[len(MAGIC) + 65:HEADER_BYTES - 1]
        if not hmac.compare_digest(seal, self._seal(name, key, memoryview(blob)[HEADER_BYTES:])):
            return None
        return key, blob

    def read(self, name: str, key: str):
        """The entry's object, or None when it is missing or cannot be trusted."""
        sealed = self._read_sealed(name)
        if sealed is None or sealed[0] != key.encode():
            return None
        try:
            return _loads(sealed[1], HEADER_BYTES)
        except Exception:  # noqa: BLE001 -- any broken entry is rebuilt, whatever the unpickler says
            return None

    def write(self, name: str, key: str, value) -> None:
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        if HEADER_BYTES + len(payload) > MAX_ENTRY_BYTES:
            return  # it would not be read
        fd = self._folder(create=True)
        if fd is None:
            return
        header = b"".join([MAGIC, key.encode(), b"\n", self._seal(name, key.encode(), payload), b"\n"])
        temporary = self._temporary_name()
        try:
            handle = os.open(temporary, _CREATE_PRIVATE, 0o600, dir_fd=fd)
        except OSError:
            return  # the cache is an optimisation: a full disk costs speed, not the run
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(header)
                stream.write(payload)
            os.replace(temporary, name, src_dir_fd=fd, dst_dir_fd=fd)
        except OSError:
            try:
                os.unlink(temporary, dir_fd=fd)
            except OSError:
                pass

    def _temporary_name(self) -> str:
        """Unpredictable, and signed: the sweep tells a killed run's leftover from a planted file by its name."""
        nonce = secrets.token_hex(8)
        return f"{TEMPORARY_PREFIX}{nonce}-{self._temporary_tag(nonce)}"

    def _temporary_tag(self, nonce: str) -> str:
        return hmac.new(self.secret, b"temporary\0" + nonce.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()[:16]

    def _is_own_temporary(self, name: str) -> bool:
        nonce, _, tag = name[len(TEMPORARY_PREFIX):].partition("-")
        return hmac.compare_digest(tag.encode("utf-8", "surrogateescape"), self._temporary_tag(nonce).encode())

    # Per-file facts.

    def facts_name(self, relpath: str, sha256: str) -> str:
        return "facts-" + _hash(self.facts_key, relpath, sha256)[:40]

    def load_facts(self, relpath: str, sha256: str):
        from kvmlint.source.facts import FileFacts

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
        """Temporaries of killed runs and, in the tree's own folder, entries of old file versions or
        kvmlints: only regular files whose name or seal says this user's kvmlint made them."""
        fd = self._folder(create=False)
        if fd is None:
            return
        cutoff = time.time() - STALE_SECONDS
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    name = entry.name
                    if name.startswith(TEMPORARY_PREFIX):
                        ours = self._is_own_temporary
                    elif (self.own and name.startswith(ENTRY_PREFIXES) and name not in in_use
                          and name not in (self.index_name, self.scope_name)):
                        ours = self._is_sealed
                    else:
                        continue
                    st = entry.stat(follow_symlinks=False)
                    if stat.S_ISREG(st.st_mode) and st.st_mtime < cutoff and ours(name):
                        os.unlink(name, dir_fd=fd)
        except OSError:
            pass

    def _is_sealed(self, name: str) -> bool:
        return self._read_sealed(name) is not None

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
