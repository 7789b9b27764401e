"""All-or-nothing writes of a change set's files, the fix lock, and recovery after a crash.

Where the bookkeeping lives (kept out of `git status`): in the git directory
when the root is a git work tree (`.git/kvmlint-fix.lock`,
`.git/kvmlint-journal/`, as git keeps its own `index.lock` there), else in
dot-files at the root (`.kvmlint-fix.lock`, `.kvmlint-journal/`).  A `.git`
file (a linked worktree, a submodule) sends them to the git directory it
names only when that directory names this work tree back, as git checks it.

The lock is a file created with O_CREAT|O_EXCL that holds the owner's pid,
as git's `index.lock`; the owner also holds an flock on it, so a lock left
by a killed run is known stale (its flock died with it) and taken over.

A change set's files are written in three steps:

1. the journal is written (state "preparing": the temporary file of each
   target), then a backup of each file's old content, then every new
   content to a temporary file beside its target (mode and owner copied);
   a file that cannot be written stops the change set here, with the tree
   untouched;
2. the journal's state becomes "renaming"; each file is compared with the
   bytes it was planned against right before its own rename (a user's edit
   stops the change set and rolls it back);
3. the journal is deleted: the change set is complete.

A run killed in step 1 leaves temporary files that the next run deletes; a
run killed in step 2 is rolled back by the next run (or, when every file
had been renamed, kept), and the next run says which.

A tree can ship a lock and a journal of its own, so neither is trusted: the
lock is used only as a regular file of this user (never through a link) and
its content is read only as a pid; a journal is acted on only when it is a
real folder of this user holding only kvmlint's file names, its record is
sealed by this user's kvmlint (a first line `kvmlint-journal FORMAT HMAC`,
the HMAC-SHA256 of the record and of the journal folder's real path under
the user's key, the one that seals cache entries, kvmlint.store), and that
record has the fields kvmlint writes, every target, temporary file and
created folder inside the root (no symlink on the way), every backup a plain
name in the journal holding the old content its digest records.  Anything
else stops `fix` with one line, nothing touched.

Nothing is written into a folder, and no file replaced, whose mode says
read-only (kvmlint.files.read_only_refusal), also when root runs kvmlint: a
change set that would is not written, a lock or journal that would is
refused, and a journal whose roll-back would is left for the user.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import hmac
import json
import os
import re
import stat
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from kvmlint.codemods.tree import sha256
from kvmlint.errors import UsageError
from kvmlint.files import MAX_FILE_BYTES, read_only_refusal
from kvmlint.git.repository import linked_git_dir
from kvmlint.store import KeyUnavailable, user_key

LOCK_WAIT_SECONDS = 10.0
TEMPORARY_SUFFIX = ".kvmlint-tmp"
JOURNAL_RECORD = "journal.json"
JOURNAL_RECORD_TEMPORARY = "journal.json.tmp"
# The record's first line: its format and the seal of what follows.
JOURNAL_FORMAT = 1
JOURNAL_MAGIC = b"kvmlint-journal"
JOURNAL_MAX_BYTES = 16 << 20  # some 50,000 entries; a fix rewrites far fewer files
JOURNAL_MAX_NAMES = 100_000
LOCK_MAX_BYTES = 32
# A file a fix rewrote was read whole by the analysis; its new content is a few lines longer at most.
TARGET_MAX_BYTES = 2 * MAX_FILE_BYTES
KEPT_SUFFIX = ".kvmlint-orig"
KEPT_NAMES = 100  # `F.kvmlint-orig`, `F.kvmlint-orig.2`, ...: never over a file already there
# Opened as what the name itself is: no symlink followed, no FIFO waited on, no terminal taken.
NOT_FOLLOWED = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
NOT_A_REGULAR_FILE = "not a regular file"  # the digest of anything else: equal to none

_PID = re.compile(rb"([1-9][0-9]{0,9})\n?")
_SEAL_LINE = re.compile(rb"kvmlint-journal ([0-9]{1,9}) ([0-9a-f]{64})\n")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_BACKUP = re.compile(r"[0-9]{1,9}\.orig")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # a journal's names are printed: no terminal escapes


def state_dir(root: Path) -> tuple[Path, str]:
    """The directory holding the lock and journal, and the prefix of their names."""
    dot_git = root / ".git"
    status = _lstat(dot_git)
    if status is not None and stat.S_ISDIR(status.st_mode):
        return dot_git, ""
    if status is not None and stat.S_ISREG(status.st_mode):
        git_dir = linked_git_dir(root)  # a tree cannot send the lock, the journal and backups elsewhere
        if git_dir is not None:
            return git_dir, ""
    return root, "."


def lock_path(root: Path) -> Path:
    directory, prefix = state_dir(root)
    return directory / f"{prefix}kvmlint-fix.lock"


def journal_dir(root: Path) -> Path:
    directory, prefix = state_dir(root)
    return directory / f"{prefix}kvmlint-journal"


class FixLock:
    """Held for a whole `kvmlint fix` run; a second run waits, then says who holds it (exit 2)."""

    def __init__(self, root: Path, notify=print, wait_seconds: float | None = None):
        self.path = lock_path(root)
        self.notify = notify
        self.wait_seconds = LOCK_WAIT_SECONDS if wait_seconds is None else wait_seconds
        self._descriptor: int | None = None

    def __enter__(self) -> FixLock:
        refusal = read_only_refusal(self.path.parent)
        if refusal is not None:
            raise UsageError(f"{refusal}: `kvmlint fix` keeps its lock and journal there, so it writes nothing "
                             "(`kvmlint fix --diff` shows the fixes)")
        deadline = time.monotonic() + self.wait_seconds
        while True:
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | NOT_FOLLOWED, 0o644)
            except FileExistsError:
                holder = self._take_over_if_stale()
                if time.monotonic() >= deadline:  # on every path: a lock that comes back cannot keep us here
                    raise UsageError(
                        f"another kvmlint fix is running (pid {holder or 'unknown'}); {self.path} is its lock"
                    ) from None
                if holder is not None:
                    time.sleep(0.1)
                continue
            except OSError as error:
                raise UsageError(f"cannot create the fix lock {self.path} ({error.strerror or error})") from None
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
                _write_all(descriptor, f"{os.getpid()}\n".encode())
                os.fsync(descriptor)
            except OSError as error:  # a full disk: no lock is left behind
                os.close(descriptor)
                _unlink_if_there(self.path)
                raise UsageError(f"cannot write the fix lock {self.path} ({error.strerror or error})") from None
            self._descriptor = descriptor
            return self

    def _take_over_if_stale(self) -> str | None:
        """The holder's pid ("unknown" when the lock holds none) while the lock
        is live; None once a stale lock is removed (or gone).  A lock that is
        not a regular file of this user is refused: kvmlint did not make it."""
        status = _lstat(self.path)
        if status is None:
            return None
        _refuse_unless_own(self.path, status, stat.S_ISREG, "fix lock")
        try:
            descriptor = os.open(self.path, os.O_RDONLY | NOT_FOLLOWED)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise UsageError(f"cannot read the fix lock {self.path} ({error.strerror or error})") from None
        try:
            opened = os.fstat(descriptor)
            if (opened.st_dev, opened.st_ino) != (status.st_dev, status.st_ino):
                return None  # replaced since the lstat: look again
            holder = _pid(os.read(descriptor, LOCK_MAX_BYTES + 1)) or "unknown"
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return holder
            try:
                same_file = os.stat(self.path, follow_symlinks=False).st_ino == opened.st_ino
            except FileNotFoundError:
                return None
            if same_file:
                # Still ours to judge: its owner died (or is between create and flock: give it a moment).
                if holder == "unknown" and time.time() - opened.st_mtime < 2:
                    return holder
                os.unlink(self.path)
                self.notify(f"removed a stale fix lock of pid {holder} (no longer running)")
            return None
        finally:
            os.close(descriptor)

    def __exit__(self, *exc_info) -> None:
        if self._descriptor is not None:
            ours = os.fstat(self._descriptor)
            try:
                found = os.lstat(self.path)
                if (found.st_dev, found.st_ino) == (ours.st_dev, ours.st_ino):  # never a lock made since
                    os.unlink(self.path)
            except FileNotFoundError:
                pass
            os.close(self._descriptor)
            self._descriptor = None


def _pid(content: bytes) -> str | None:
    """A lock's content as the pid it holds; anything else (a tree's text) is never shown."""
    match = _PID.fullmatch(content)
    return match.group(1).decode() if match else None


@dataclass
class FileChange:
    path: str  # root-relative, as the change set names it
    old: bytes | None  # None: a new file
    new: bytes


@dataclass
class _Entry:
    path: str
    target: str  # absolute, symlinks resolved: the file really written
    temporary: str
    old_sha256: str | None
    new_sha256: str
    backup: str | None  # file name inside the journal directory


ENTRY_FIELDS = frozenset(field.name for field in fields(_Entry))


class NotWritten(Exception):
    """A change set was not written; the tree is as it was."""


def commit(root: Path, changes: list[FileChange]) -> None:
    """Write all of `changes` or none of them (NotWritten says why)."""
    journal = journal_dir(root)
    entries = _entries(root, changes)
    created_dirs = _missing_dirs(entries)
    refusal = read_only_refusal(journal)
    if refusal is not None:
        raise NotWritten(f"{refusal}: the fix's journal goes there")
    try:
        key = user_key()
    except KeyUnavailable as why:
        raise NotWritten(f"{why}: it seals the fix's journal") from None
    try:
        os.mkdir(journal, 0o700)
    except OSError as error:
        raise NotWritten(f"cannot create the journal {journal} ({error.strerror or error})") from None
    try:
        _save(journal, key, "preparing", entries, created_dirs)
        _prepare(journal, entries, created_dirs, changes)
        _save(journal, key, "renaming", entries, created_dirs)
    except OSError as error:  # the journal itself could not be written (a full disk)
        _discard(journal, entries, created_dirs)
        raise NotWritten(_cannot_write(str(journal), error)) from None
    except BaseException:
        _discard(journal, entries, created_dirs)
        raise
    renamed: list[_Entry] = []
    try:
        for entry in entries:
            _rename(entry)
            renamed.append(entry)
    except NotWritten as why:
        try:
            restored = _roll_back(renamed, journal)
        except OSError as error:  # the journal stays, for the next run to finish the roll-back
            raise NotWritten(
                f"{why}; the files already replaced could not be put back ({error.strerror or error}): "
                "the next `kvmlint fix` puts them back"
            ) from None
        _discard(journal, entries, created_dirs)
        if restored:
            raise NotWritten(f"{why}; restored {', '.join(sorted(restored))} as they were") from None
        raise
    try:
        _fsync_dirs({Path(e.target).parent for e in entries})
        _remove_journal(journal)
    except OSError:
        pass  # every file is written; the next run finds the journal complete, keeps it and says so


def _entries(root: Path, changes: list[FileChange]) -> list[_Entry]:
    """What to write where (each real file once), refusing what cannot be written."""
    real_root = os.path.realpath(root)

    def shown(place: Path) -> str:
        return str(root) if str(place) == real_root else os.path.relpath(place, real_root)

    entries, seen = [], {}
    for index, change in enumerate(changes):
        target = os.path.realpath(root / change.path)  # a symlink is written through, once
        if os.path.commonpath([real_root, target]) != real_root:
            raise NotWritten(f"{change.path} leads outside {root}")
        if target in seen:  # the engine plans a file reached through a link under its real path
            raise NotWritten(f"{change.path} and {seen[target]} are the same file")
        seen[target] = change.path
        if change.old is not None:
            _check_regular(change.path, target)
        elif os.path.lexists(target):
            raise NotWritten(f"{change.path} appeared on disk since the fix was planned")
        refusal = read_only_refusal(target, shown)  # the file replaced, the folder written into
        if refusal is not None:
            raise NotWritten(refusal)
        directory, name = os.path.split(target)
        entries.append(
            _Entry(
                path=change.path,
                target=target,
                temporary=os.path.join(directory, f".{name}.{os.getpid()}{TEMPORARY_SUFFIX}"),
                old_sha256=None if change.old is None else sha256(change.old),
                new_sha256=sha256(change.new),
                backup=None if change.old is None else f"{index}.orig",
            )
        )
    return entries


def _check_regular(path: str, target: str) -> None:
    try:
        status = os.stat(target)
    except OSError as error:
        raise NotWritten(f"{path} cannot be read ({error.strerror or error})") from None
    if not stat.S_ISREG(status.st_mode):
        raise NotWritten(f"{path} is not a regular file")


def _missing_dirs(entries: list[_Entry]) -> list[str]:
    missing: list[str] = []
    for entry in entries:
        directory = Path(entry.target).parent
        chain = []
        while not directory.exists():
            chain.append(str(directory))
            directory = directory.parent
        missing.extend(d for d in reversed(chain) if d not in missing)
    return missing


def _prepare(journal: Path, entries: list[_Entry], created_dirs: list[str], changes: list[FileChange]) -> None:
    for entry, change in zip(entries, changes):
        if change.old is not None:
            _write_file(journal / entry.backup, change.old)
    for directory in created_dirs:
        try:
            os.mkdir(directory)
        except OSError as error:
            raise NotWritten(_cannot_write(directory, error)) from None
    for entry, change in zip(entries, changes):
        try:
            _unlink_if_there(entry.temporary)  # our own name, from a killed run of a process with our pid
            _write_file(Path(entry.temporary), change.new)
            _copy_owner_and_mode(entry, Path(entry.temporary))
        except OSError as error:
            raise NotWritten(_cannot_write(entry.path, error)) from None


def _cannot_write(where: str, error: OSError) -> str:
    return f"cannot write {where} ({error.strerror or error})"


def _write_file(path: Path, data: bytes) -> None:
    """A new file holding `data`, on disk when this returns: never over a file or through a link,
    and on a failure (a full disk) not left half-written."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOT_FOLLOWED, 0o600)
    try:
        _write_all(descriptor, data)
        os.fsync(descriptor)
    except BaseException:
        os.close(descriptor)
        os.unlink(path)
        raise
    os.close(descriptor)


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]


def _unlink_if_there(path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _copy_owner_and_mode(entry: _Entry, path: Path) -> None:
    """`path` gets the old file's mode, owner and group (a new file: 0644, its directory's owner)."""
    if entry.old_sha256 is not None and os.path.exists(entry.target):
        like = os.stat(entry.target)
        mode = stat.S_IMODE(like.st_mode)
    else:
        like = os.stat(Path(entry.target).parent)
        mode = 0o644
    descriptor = os.open(path, os.O_RDONLY | NOT_FOLLOWED)  # the file itself, never a link's target
    try:
        os.fchmod(descriptor, mode)
        try:
            os.fchown(descriptor, like.st_uid, like.st_gid)
        except PermissionError:
            if os.geteuid() == 0:
                raise
            # A user cannot give a file away; git leaves it the writer's too.
    finally:
        os.close(descriptor)


def _rename(entry: _Entry) -> None:
    """Rename one temporary file onto its target, if the target still holds what was planned against."""
    try:
        current = _content_sha256(entry.target)
        if current != entry.old_sha256:
            raise NotWritten(f"{entry.path} changed on disk during the write")
        if entry.old_sha256 is None:
            os.link(entry.temporary, entry.target)  # never replaces a file that appeared meanwhile
            os.unlink(entry.temporary)
        else:
            os.replace(entry.temporary, entry.target)
    except OSError as error:
        raise NotWritten(f"cannot replace {entry.path} ({error.strerror or error})") from None


def _content_sha256(path: str) -> str | None:
    """The digest of the file at `path`, None when there is none; a link, a FIFO or a
    file larger than kvmlint writes are NOT_A_REGULAR_FILE (equal to no digest)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | NOT_FOLLOWED)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:
            return NOT_A_REGULAR_FILE
        raise
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode) or status.st_size > TARGET_MAX_BYTES:
            return NOT_A_REGULAR_FILE
        digest, size = hashlib.sha256(), 0
        while True:
            chunk = os.read(descriptor, 1 << 20)
            if not chunk:
                return digest.hexdigest()
            size += len(chunk)
            if size > TARGET_MAX_BYTES:
                return NOT_A_REGULAR_FILE
            digest.update(chunk)
    finally:
        os.close(descriptor)


def _roll_back(renamed: list[_Entry], journal: Path) -> list[str]:
    """Put back the old content of every renamed file still as written; the paths restored."""
    restored = []
    for entry in reversed(renamed):
        if _content_sha256(entry.target) != entry.new_sha256:
            continue
        if entry.backup is None:
            os.unlink(entry.target)
        else:
            _restore(entry, journal / entry.backup)
        restored.append(entry.path)
    _fsync_dirs({Path(e.target).parent for e in renamed})
    return restored


def _restore(entry: _Entry, backup: Path) -> None:
    """The backup takes the target's place: renamed, which a full disk cannot stop
    (copied when the journal is on another file system)."""
    _copy_owner_and_mode(entry, backup)
    try:
        os.rename(backup, entry.target)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        temporary = Path(entry.temporary)
        _unlink_if_there(temporary)
        _write_file(temporary, _read_backup(backup))
        _copy_owner_and_mode(entry, temporary)
        os.replace(temporary, entry.target)


def _read_backup(backup: Path) -> bytes:
    data = _read_own_file(backup, TARGET_MAX_BYTES)
    if data is None:
        raise OSError(errno.EINVAL, f"{backup.name} in the journal is not a backup kvmlint wrote")
    return data


def _discard(journal: Path, entries: list[_Entry], created_dirs: list[str]) -> None:
    for entry in entries:
        _unlink_if_there(entry.temporary)
    for directory in reversed(created_dirs):
        try:
            os.rmdir(directory)
        except OSError:
            pass  # not empty: a file the user put there
    try:
        _remove_journal(journal)
    except OSError:
        pass  # the next run finds it with nothing left to undo, and removes it


def _save(journal: Path, key: bytes, state: str, entries: list[_Entry], created_dirs: list[str]) -> None:
    record = {"state": state, "entries": [asdict(e) for e in entries], "created_dirs": created_dirs}
    body = json.dumps(record, indent=1).encode()
    seal = b"%s %d %s\n" % (JOURNAL_MAGIC, JOURNAL_FORMAT, _seal(key, journal, body).encode())
    temporary = journal / JOURNAL_RECORD_TEMPORARY
    _write_file(temporary, seal + body)
    os.replace(temporary, journal / JOURNAL_RECORD)
    _fsync_dirs({journal})


def _seal(key: bytes, journal: Path, body: bytes) -> str:
    """HMAC-SHA256, under the user's key, of a journal's record and of where it is: a record
    is good only in the journal folder it was written in."""
    mac = hmac.new(key, b"%s %d\0%s\0" % (JOURNAL_MAGIC, JOURNAL_FORMAT, os.fsencode(os.path.realpath(journal))),
                   hashlib.sha256)
    mac.update(body)
    return mac.hexdigest()


def _unsealed(data: bytes, journal: Path) -> bytes:
    """The record a journal's file holds after its seal line, once the seal is checked (else refused)."""
    line, newline, body = data.partition(b"\n")
    match = _SEAL_LINE.fullmatch(line + newline)
    if match is None or int(match.group(1)) != JOURNAL_FORMAT:
        raise _refused(journal, f"its {JOURNAL_RECORD} is not sealed by kvmlint")
    try:
        key = user_key(create=False)
    except KeyUnavailable as why:
        raise _refused(journal, f"its seal cannot be checked: {why}") from None
    if key is None:
        raise _refused(journal, "this user's kvmlint has no key, so it never wrote one")
    if not hmac.compare_digest(match.group(2).decode(), _seal(key, journal, body)):
        raise _refused(journal, f"its {JOURNAL_RECORD} is not sealed by this user's kvmlint, or not for this folder")
    return body


def _fsync_dirs(directories) -> None:
    for directory in directories:
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | NOT_FOLLOWED)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _remove_journal(journal: Path) -> None:
    """Remove a journal folder of kvmlint's (a real folder: recover checked a found one)."""
    record = journal / JOURNAL_RECORD
    if os.path.lexists(record):
        os.unlink(record)  # first: from here on, the change set is complete
        _fsync_dirs({journal})
    for name in os.listdir(journal):
        os.unlink(journal / name)
    os.rmdir(journal)


def pending_journal(root: Path) -> bool:
    return os.path.lexists(journal_dir(root))


def recover(root: Path) -> list[str]:
    """Finish what a killed run left: remove its temporary files, roll back (or keep) its renames.

    Returns one message per thing done, for the user.  A journal kvmlint did
    not write is refused (UsageError), with nothing touched.
    """
    journal = journal_dir(root)
    status = _lstat(journal)
    if status is None:
        return []
    _refuse_unless_own(journal, status, stat.S_ISDIR, "fix journal")
    names = _journal_names(journal)
    if JOURNAL_RECORD not in names:
        state, entries, created_dirs = "preparing", [], []  # killed before anything was written
    else:
        data = _read_own_file(journal / JOURNAL_RECORD, JOURNAL_MAX_BYTES)
        if data is None:
            too_large = f"larger than {JOURNAL_MAX_BYTES >> 20} MiB"
            raise _refused(journal, f"its {JOURNAL_RECORD} cannot be read or is {too_large}")
        state, entries, created_dirs = _parse_journal(_unsealed(data, journal), root, journal)
        if state == "renaming":  # the backups a roll-back would put in place
            _check_backups(journal, entries, names)
    _refuse_read_only(journal, entries, created_dirs)
    try:
        return _finish(journal, state, entries, created_dirs)
    except OSError as error:
        raise UsageError(
            f"cannot finish an interrupted fix ({error.strerror or error}); its journal stays in {journal}"
        ) from None


def _check_backups(journal: Path, entries: list[_Entry], names: set[str]) -> None:
    """Refuse the journal unless every backup it still holds has the old content its entry records."""
    for number, entry in enumerate(entries, 1):
        if entry.backup in names and _content_sha256(str(journal / entry.backup)) != entry.old_sha256:
            raise _refused(journal, f"entry {number}: its backup does not hold the old content the entry records")


def _refuse_read_only(journal: Path, entries: list[_Entry], created_dirs: list[str]) -> None:
    """Stop (exit 2), nothing touched, when finishing the journal would write where the mode says
    read-only: the journal folder and the one it is in, a file it puts back, a folder of its files."""
    places = [journal.parent, journal, *(e.target for e in entries), *(os.path.dirname(d) for d in created_dirs)]
    for place in places:
        refusal = read_only_refusal(place)
        if refusal is not None:
            raise UsageError(f"{refusal}: an interrupted fix cannot be finished there; its journal stays in {journal}")


def _finish(journal: Path, state: str, entries: list[_Entry], created_dirs: list[str]) -> list[str]:
    messages = []
    if state == "renaming":
        states = {e.path: _content_sha256(e.target) for e in entries}
        renamed = [e for e in entries if states[e.path] == e.new_sha256]
        foreign = [e for e in entries if states[e.path] not in (e.new_sha256, e.old_sha256)]
        for entry in foreign:  # edited by hand since: keep the user's file and the old content beside it
            kept = _keep_beside(entry, journal)
            old = f" (its old content: {kept})" if kept else ""
            messages.append(f"{entry.path} changed since an interrupted fix; left as it is{old}")
        if renamed and len(renamed) == len(entries):
            messages.append(f"an interrupted fix had written all of its {len(entries)} file(s); kept")
        elif renamed:
            restored = _roll_back(renamed, journal)
            messages.append(f"rolled back an interrupted fix: restored {', '.join(sorted(restored))}")
    leftovers = [e.temporary for e in entries if os.path.lexists(e.temporary)]
    if leftovers:
        messages.append(f"removed {len(leftovers)} temporary file(s) of an interrupted fix")
    _discard(journal, entries, created_dirs)
    return messages


def _keep_beside(entry: _Entry, journal: Path) -> str | None:
    """Copy an entry's old content next to its file, under the first of its kept
    names no file has (never over a file, nor through a link); the name, or None
    when the journal has no backup of it (a new file, or already put back)."""
    backup = journal / entry.backup if entry.backup else None
    if backup is None or not os.path.lexists(backup):
        return None
    data = _read_backup(backup)
    for number in range(1, KEPT_NAMES + 1):
        kept = entry.target + KEPT_SUFFIX + (f".{number}" if number > 1 else "")
        try:
            _write_file(Path(kept), data)
        except FileExistsError:
            continue
        os.unlink(backup)  # kept: a run that stops later does not copy it again
        return kept
    raise OSError(errno.EEXIST, f"{entry.path}{KEPT_SUFFIX} and its {KEPT_NAMES - 1} other names are taken")


def _journal_names(journal: Path) -> set[str]:
    """The files of a journal folder, refused unless each is one kvmlint writes
    there: a regular file of this user, with no other name (no hard link out)."""
    names = set()
    try:
        with os.scandir(journal) as listing:
            for item in listing:
                if len(names) >= JOURNAL_MAX_NAMES:
                    raise _refused(journal, f"it holds more than {JOURNAL_MAX_NAMES} files")
                if item.name not in (JOURNAL_RECORD, JOURNAL_RECORD_TEMPORARY) and not _BACKUP.fullmatch(item.name):
                    raise _refused(journal, "it holds a file kvmlint does not write")
                status = item.stat(follow_symlinks=False)
                if not stat.S_ISREG(status.st_mode) or status.st_uid != os.geteuid() or status.st_nlink != 1:
                    raise _refused(journal, f"its {item.name} is not a file kvmlint wrote")
                names.add(item.name)
    except OSError as error:
        raise UsageError(
            f"cannot read the journal of an interrupted fix, {journal} ({error.strerror or error})"
        ) from None
    return names


def _parse_journal(data: bytes, root: Path, journal: Path) -> tuple[str, list[_Entry], list[str]]:
    """A journal's record, each field checked against what kvmlint writes (else refused)."""
    try:
        record = json.loads(data)
    except (ValueError, RecursionError):
        raise _refused(journal, f"its {JOURNAL_RECORD} is not JSON") from None
    if not isinstance(record, dict) or set(record) != {"state", "entries", "created_dirs"}:
        raise _refused(journal, f"its {JOURNAL_RECORD} does not have the fields kvmlint writes")
    state, entries, created_dirs = record["state"], record["entries"], record["created_dirs"]
    if state not in ("preparing", "renaming") or not isinstance(entries, list) or not isinstance(created_dirs, list):
        raise _refused(journal, f"its {JOURNAL_RECORD} does not have the fields kvmlint writes")
    real_root, real_journal = os.path.realpath(root), os.path.realpath(journal)
    parsed, targets, backups = [], set(), set()
    for number, raw in enumerate(entries, 1):
        problem = _entry_problem(raw, real_root, real_journal)
        if problem is None and (raw["target"] in targets or raw["backup"] in backups):
            problem = "it names a file another entry names"
        if problem is not None:
            raise _refused(journal, f"entry {number}: {problem}")
        entry = _Entry(**raw)
        targets.add(entry.target)
        if entry.backup is not None:
            backups.add(entry.backup)
        parsed.append(entry)
    for number, directory in enumerate(created_dirs, 1):
        if not isinstance(directory, str) or not _inside_root(directory, real_root):
            raise _refused(journal, f"created folder {number} is not inside the tree")
    return state, parsed, created_dirs


def _entry_problem(entry, real_root: str, real_journal: str) -> str | None:
    """What makes a journal's entry one kvmlint did not write, or None."""
    if not isinstance(entry, dict) or set(entry) != ENTRY_FIELDS:
        return "not the fields kvmlint writes"
    path, target, temporary = entry["path"], entry["target"], entry["temporary"]
    old, new, backup = entry["old_sha256"], entry["new_sha256"], entry["backup"]
    if not isinstance(path, str) or _CONTROL.search(path) or os.path.isabs(path) or ".." in path.split("/"):
        return "its path is not a file name of the tree"
    if not isinstance(target, str) or not _inside_root(target, real_root) \
            or target.startswith(real_journal + os.sep):
        return "its file is not inside the tree"
    if not _is_regular_or_absent(target):
        return "its file is not a regular file"
    directory, name = os.path.split(target)
    pattern = re.escape(f".{name}.") + r"[0-9]{1,10}" + re.escape(TEMPORARY_SUFFIX)
    if not isinstance(temporary, str) or os.path.dirname(temporary) != directory \
            or not re.fullmatch(pattern, os.path.basename(temporary)):
        return "its temporary file is not the one kvmlint makes beside its file"
    if not (old is None or isinstance(old, str) and _DIGEST.fullmatch(old)) \
            or not (isinstance(new, str) and _DIGEST.fullmatch(new)):
        return "its digests are not sha256 digests"
    if (backup is None) != (old is None) \
            or backup is not None and not (isinstance(backup, str) and _BACKUP.fullmatch(backup)):
        return "its backup is not a file of the journal"
    return None


def _inside_root(path: str, real_root: str) -> bool:
    """Whether `path` is absolute, normalised, strictly below `real_root` and reached without a symlink."""
    return (
        os.path.isabs(path) and os.path.normpath(path) == path
        and path.startswith(real_root.rstrip(os.sep) + os.sep)
        and os.path.realpath(path) == path
    )


def _refused(journal: Path, why: str) -> UsageError:
    return UsageError(f"{journal} is not a fix journal kvmlint wrote ({why}); nothing done: remove it by hand")


def _refuse_unless_own(path: Path, status: os.stat_result, is_kind, what: str) -> None:
    """Stop (exit 2) at a lock or journal kvmlint did not make: not a regular file
    (a real folder) of this user, found where kvmlint keeps its own."""
    if not is_kind(status.st_mode):
        raise UsageError(
            f"{path} is not a {what} kvmlint made (it is {_kind(status)}); nothing done: remove it by hand"
        )
    if status.st_uid != os.geteuid():
        raise UsageError(f"{path} is not a {what} of yours (its owner is uid {status.st_uid}); nothing done")


def _kind(status: os.stat_result) -> str:
    mode = status.st_mode
    for test, name in ((stat.S_ISLNK, "a symlink"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISREG, "a regular file")):
        if test(mode):
            return name
    return "a device"


def _lstat(path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise UsageError(f"cannot look at {path} ({error.strerror or error})") from None


def _is_regular_or_absent(path: str) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return True
    except OSError:
        return False


def _is_own(path: str, is_kind) -> bool:
    try:
        status = os.lstat(path)
    except OSError:
        return False
    return is_kind(status.st_mode) and status.st_uid == os.geteuid()


def _read_own_file(path, max_bytes: int) -> bytes | None:
    """The bytes of the regular file of this user at `path` (not through a link),
    at most `max_bytes`; None when it is anything else, larger, or unreadable."""
    try:
        descriptor = os.open(path, os.O_RDONLY | NOT_FOLLOWED)
    except OSError:
        return None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode) or status.st_uid != os.geteuid() or status.st_size > max_bytes:
            return None
        chunks, size = [], 0
        while True:
            chunk = os.read(descriptor, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:  # it grew while being read
                return None
    except OSError:
        return None
    finally:
        os.close(descriptor)
