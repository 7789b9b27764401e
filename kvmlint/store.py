"""Shared cache storage: one folder of sealed entries, used by the source stage (facts) and scope (answers).

Where: `.kvmlint_cache/` at the checked tree's root (it holds its own
`.gitignore`, as pytest's and ruff's caches do), or `$KVMLINT_CACHE_DIR`; a
folder that is no checkout's gets none.
`--no-cache` turns it off.  What is stored, and what each entry is keyed by,
its owner says: `kvmlint.source.cache` (per-file facts) and
`kvmlint.scope.cache` (the scope resolver's answers).

Every entry is one file written under a temporary name and renamed into
place, so two runs at once never leave a half-written entry.

A cache folder may come with the tree (a tarball, a colleague's branch), so
nothing in it is believed because of where it is:

- an entry is used only if this user's kvmlint wrote it: each one is sealed
  with an HMAC-SHA256, under a secret key of the user's (made once, in
  `$XDG_CACHE_HOME/kvmlint/` or `~/.cache/kvmlint/`, readable by the user
  alone), over its name, header and payload, checked before anything is
  unpickled; and it unpickles only into the record types its owner names.
  Any other entry (planted, truncated, of another version or tree) is
  ignored, rebuilt and overwritten, never a traceback;
- the folder must be a real folder of the user's, never a symlink: it is
  opened once and every entry is opened, written, renamed and removed
  relative to that open folder, with O_NOFOLLOW, so nothing renamed in the
  tree meanwhile sends kvmlint elsewhere; an entry is read only when it is a
  regular file of at most MAX_ENTRY_BYTES;
- the sweep of stale entries removes only entries and temporaries whose
  seal says this user's kvmlint made them.

When the key cannot be had (a read-only home) or the folder is not the
user's, the run goes without the cache and says so once.  A read-only tree
(its root, or the cache folder, read-only by its mode: also when root runs
kvmlint) is checked without writing a cache, as for any user the system
refuses.

The same key seals the fix journal (kvmlint.codemods.transaction): one key
per user says what this user's kvmlint wrote.
"""

from __future__ import annotations

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
from collections.abc import Callable
from pathlib import Path

from kvmlint.files import read_only_refusal

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
# Leftovers of a run killed between writing and renaming an entry, and facts of
# file versions the index no longer names, are removed once this old (a run
# going on at the same time may still be using a younger one).
STALE_SECONDS = 3600

def hash_parts(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogateescape") if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


def code_digest(folder: Path, recursive: bool) -> str:
    """Digest of the Python sources under `folder`: any edit of kvmlint's code makes a new key."""
    pattern = "**/*.py" if recursive else "*.py"
    digest = hashlib.sha256()
    for path in sorted(folder.glob(pattern)):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def library_digest(*packages: str) -> str:
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
    return hash_parts(*parts)


class _RecordUnpickler(pickle.Unpickler):
    """Rebuilds only the record types the entry's owner names: a crafted entry cannot run code."""

    def __init__(self, stream, allowed: dict[tuple[str, str], type]):
        super().__init__(stream)
        self.allowed = allowed

    def find_class(self, module: str, name: str):
        found = self.allowed.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"{module}.{name} is not a cache record type")
        return found


def record_types(types) -> dict[tuple[str, str], type]:
    """The (module, name) -> type table an owner gives `Store.read`: its record types and the sets they hold."""
    return {(cls.__module__, cls.__qualname__): cls for cls in [*types, frozenset, set]}


def _loads(blob: bytes, offset: int, allowed: dict[tuple[str, str], type]):
    """The object pickled in `blob` from `offset` on (not copied: an index is megabytes)."""
    stream = io.BytesIO(blob)
    stream.seek(offset)
    return _RecordUnpickler(stream, allowed).load()


class CacheUnavailable(Exception):
    """Why a run goes without the cache: a sentence naming the file or folder, said once as a warning."""


class KeyUnavailable(Exception):
    """Why this user's key cannot be had: a sentence naming its file or folder."""


def key_folder() -> Path:
    """`$XDG_CACHE_HOME/kvmlint`, else `~/.cache/kvmlint` (as the XDG rule says, a relative value is ignored)."""
    configured = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(configured):
        return Path(configured) / KEY_FOLDER_NAME
    try:
        return Path.home() / ".cache" / KEY_FOLDER_NAME
    except RuntimeError:  # no HOME and no password entry
        raise KeyUnavailable("no home folder to keep kvmlint's key in") from None


def user_key(create: bool = True) -> bytes | None:
    """This user's secret key, made on the first run (with `create`; else None while there is none).

    It seals what kvmlint writes where someone else could write too (cache
    entries, the fix journal): no one else can seal one.  KeyUnavailable when
    it cannot be made or read, or is not private to this user.
    """
    folder = key_folder()
    path = folder / KEY_FILE_NAME
    try:
        if not create and not os.path.lexists(folder):
            return None
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.stat(folder)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
            raise KeyUnavailable(f"{folder}: not a folder only this user can write")
        secret = _read_secret(path)
        if secret is None and create:
            _make_secret(folder, path)
            secret = _read_secret(path)
            if secret is None:
                raise KeyUnavailable(f"{path}: the key vanished as it was made")
    except OSError as error:
        raise KeyUnavailable(f"{path}: cannot make kvmlint's key ({_reason(error)})") from None
    return secret


def user_secret() -> bytes:
    """This user's key for sealing cache entries (see `user_key`)."""
    try:
        return user_key()
    except KeyUnavailable as why:
        raise CacheUnavailable(f"{why}; running without the cache") from None


def _reason(error: OSError) -> str:
    return "a symlink" if error.errno == errno.ELOOP else error.strerror or str(error)


def _read_secret(path: Path) -> bytes | None:
    """The key, or None when there is none yet; refused unless it is a private file of this user's."""
    try:
        handle = os.open(path, _OPEN_ENTRY)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise KeyUnavailable(f"{path}: cannot read kvmlint's key ({_reason(error)})") from None
    try:
        st = os.fstat(handle)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077 or st.st_size != KEY_BYTES:
            raise KeyUnavailable(f"{path}: not a {KEY_BYTES}-byte file that only this user can read "
                                 "(remove it and the next run makes a new key)")
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


class Store:
    """One cache folder.  Picklable, so parser workers can read and write facts entries too."""

    def __init__(self, directory: Path, root: Path, own: bool = False, secret: bytes | None = None):
        self.directory = directory
        self.root = root
        self.own = own  # the tree's own folder: no other tree's entries are in it
        self.secret = user_secret() if secret is None else secret
        self.tree = str(root.resolve())
        self.current: set[str] = set()  # the entries of fixed name this run's owners use: never stale
        self._folder_fd: int | None = None  # the folder, once opened and checked: entries are opened relative to it
        self._identity: tuple[int, int] | None = None  # its device and inode: a process opening it again gets the same one
        self._unusable = False  # it could not be made, or is not the user's: this process goes without
        self._writable: bool | None = None  # known once asked: a read-only folder (or tree) is only read

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_folder_fd": None}  # another process opens the folder itself

    @classmethod
    def for_tree(cls, root: Path, warn: Callable[[str], None] | None = None, checkout: bool = True) -> Store | None:
        """The tree's cache, or None when it cannot be used: no key, or a folder that is not a real
        folder of the user's (`warn` is told why), or one that cannot be opened.  A `root` that is no
        checkout's (loose files, an empty folder) gets no cache folder: only $KVMLINT_CACHE_DIR serves."""
        configured = os.environ.get(ENV_CACHE_DIR)
        if not configured and not checkout:
            return None
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

    def _may_write(self) -> bool:
        """Whether entries may be written (and removed): the folder, or before it is made the
        folder it goes in, is not read-only."""
        if self._writable is None:
            self._writable = read_only_refusal(self.directory) is None
        return self._writable

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

    def read(self, name: str, key: str, allowed: dict[tuple[str, str], type]):
        """The entry's object, built only of the `allowed` types (see `record_types`), or None when
        it is missing or cannot be trusted."""
        sealed = self._read_sealed(name)
        if sealed is None or sealed[0] != key.encode():
            return None
        try:
            return _loads(sealed[1], HEADER_BYTES, allowed)
        except Exception:  # noqa: BLE001 -- any broken entry is rebuilt, whatever the unpickler says
            return None

    def write(self, name: str, key: str, value) -> None:
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        if HEADER_BYTES + len(payload) > MAX_ENTRY_BYTES or not self._may_write():
            return  # it would not be read, or the tree is not to be written
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

    def remove_stale(self, in_use: set[str]) -> None:
        """Temporaries of killed runs and, in the tree's own folder, entries neither `in_use` nor
        `current` (of old file versions or kvmlints): only regular files whose name or seal says this
        user's kvmlint made them."""
        fd = self._folder(create=False)
        if fd is None or not self._may_write():
            return
        cutoff = time.time() - STALE_SECONDS
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    name = entry.name
                    if name.startswith(TEMPORARY_PREFIX):
                        ours = self._is_own_temporary
                    elif (self.own and name.startswith(ENTRY_PREFIXES) and name not in in_use
                          and name not in self.current):
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
