"""All-or-nothing writes of a change set's files, the fix lock, and recovery after a crash.

Where the bookkeeping lives (kept out of `git status`): in the git directory
when the root is a git work tree (`.git/kvmlint-fix.lock`,
`.git/kvmlint-journal/`, as git keeps its own `index.lock` there), else in
dot-files at the root (`.kvmlint-fix.lock`, `.kvmlint-journal/`).

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
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from kvmlint.codemods.tree import sha256
from kvmlint.errors import UsageError

LOCK_WAIT_SECONDS = 10.0
TEMPORARY_SUFFIX = ".kvmlint-tmp"


def state_dir(root: Path) -> tuple[Path, str]:
    """The directory holding the lock and journal, and the prefix of their names."""
    dot_git = root / ".git"
    if dot_git.is_dir():
        return dot_git, ""
    if dot_git.is_file():  # a linked worktree or submodule: "gitdir: <path>"
        text = dot_git.read_text(errors="replace").strip()
        if text.startswith("gitdir:"):
            git_dir = Path(text[len("gitdir:") :].strip())
            git_dir = git_dir if git_dir.is_absolute() else root / git_dir
            if git_dir.is_dir():
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
        deadline = time.monotonic() + self.wait_seconds
        while True:
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._take_over_if_stale()
                if holder is None:
                    continue
                if time.monotonic() >= deadline:
                    raise UsageError(f"another kvmlint fix is running (pid {holder}); {self.path} is its lock")
                time.sleep(0.1)
                continue
            except OSError as error:
                raise UsageError(f"cannot create the fix lock {self.path} ({error.strerror or error})") from None
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            os.write(descriptor, f"{os.getpid()}\n".encode())
            os.fsync(descriptor)
            self._descriptor = descriptor
            return self

    def _take_over_if_stale(self) -> str | None:
        """The holder's pid while the lock is live; None once a stale lock is removed (or gone)."""
        try:
            descriptor = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            holder = os.read(descriptor, 64).decode(errors="replace").strip() or "unknown"
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return holder
            try:
                same_file = os.stat(self.path).st_ino == os.fstat(descriptor).st_ino
            except FileNotFoundError:
                return None
            if same_file:
                # Still ours to judge: its owner died (or is between create and flock: give it a moment).
                if holder == "unknown" and time.time() - os.fstat(descriptor).st_mtime < 2:
                    return holder
                os.unlink(self.path)
                self.notify(f"removed a stale fix lock of pid {holder} (no longer running)")
            return None
        finally:
            os.close(descriptor)

    def __exit__(self, *exc_info) -> None:
        if self._descriptor is not None:
            os.unlink(self.path)
            os.close(self._descriptor)
            self._descriptor = None


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


class NotWritten(Exception):
    """A change set was not written; the tree is as it was."""


def commit(root: Path, changes: list[FileChange]) -> None:
    """Write all of `changes` or none of them (NotWritten says why)."""
    journal = journal_dir(root)
    entries = _entries(root, changes)
    created_dirs = _missing_dirs(entries)
    try:
        journal.mkdir()
    except OSError as error:
        raise NotWritten(f"cannot create the journal {journal} ({error.strerror or error})") from None
    try:
        _save(journal, "preparing", entries, created_dirs)
        _prepare(journal, entries, created_dirs, changes)
        _save(journal, "renaming", entries, created_dirs)
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
        restored = _roll_back(renamed, journal)  # should this fail, the journal stays for the next run to finish
        _discard(journal, entries, created_dirs)
        if restored:
            raise NotWritten(f"{why}; restored {', '.join(sorted(restored))} as they were") from None
        raise
    _fsync_dirs({Path(e.target).parent for e in entries})
    _remove_journal(journal)


def _entries(root: Path, changes: list[FileChange]) -> list[_Entry]:
    """What to write where (each real file once), refusing what cannot be written."""
    real_root = os.path.realpath(root)
    entries, seen = [], {}
    for index, change in enumerate(changes):
        target = os.path.realpath(root / change.path)  # a symlink is written through, once
        if os.path.commonpath([real_root, target]) != real_root:
            raise NotWritten(f"{change.path} leads outside {root}")
        if target in seen:  # the engine plans a file reached through a link under its real path
            raise NotWritten(f"{change.path} and {seen[target]} are the same file")
        seen[target] = change.path
        if change.old is not None:
            _check_writable(change.path, target)
        elif os.path.lexists(target):
            raise NotWritten(f"{change.path} appeared on disk since the fix was planned")
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


def _check_writable(path: str, target: str) -> None:
    try:
        status = os.stat(target)
    except OSError as error:
        raise NotWritten(f"{path} cannot be read ({error.strerror or error})") from None
    if not stat.S_ISREG(status.st_mode):
        raise NotWritten(f"{path} is not a regular file")
    # Root may write anything: the mode bits still say what the user wants kept.
    if not status.st_mode & 0o222 or not os.access(target, os.W_OK):
        raise NotWritten(f"{path} is read-only")


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
            _write_file(journal / entry.backup, change.old, exclusive=False)
    for directory in created_dirs:
        try:
            os.mkdir(directory)
        except OSError as error:
            raise NotWritten(_cannot_write(directory, error)) from None
    for entry, change in zip(entries, changes):
        try:
            _write_file(Path(entry.temporary), change.new, exclusive=True)
            _copy_owner_and_mode(entry, Path(entry.temporary))
        except OSError as error:
            raise NotWritten(_cannot_write(entry.path, error)) from None


def _cannot_write(where: str, error: OSError) -> str:
    return f"cannot write {where} ({error.strerror or error})"


def _write_file(path: Path, data: bytes, exclusive: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    if exclusive and os.path.lexists(path):
        os.unlink(path)  # our own name from a killed run of a process with our pid
    descriptor = os.open(path, flags, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())


def _copy_owner_and_mode(entry: _Entry, temporary: Path) -> None:
    """The new file gets the old one's mode, owner and group (a new file: 0644, its directory's owner)."""
    if entry.old_sha256 is not None and os.path.exists(entry.target):
        like = os.stat(entry.target)
        mode = stat.S_IMODE(like.st_mode)
    else:
        like = os.stat(Path(entry.target).parent)
        mode = 0o644
    os.chmod(temporary, mode)
    try:
        os.chown(temporary, like.st_uid, like.st_gid)
    except PermissionError:
        if os.geteuid() == 0:
            raise
        # A user cannot give a file away; git leaves it the writer's too.


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
    try:
        with open(path, "rb") as stream:
            return sha256(stream.read())
    except FileNotFoundError:
        return None


def _roll_back(renamed: list[_Entry], journal: Path) -> list[str]:
    """Put back the old content of every renamed file still as written; the paths restored."""
    restored = []
    for entry in reversed(renamed):
        if _content_sha256(entry.target) != entry.new_sha256:
            continue
        if entry.backup is None:
            os.unlink(entry.target)
        else:
            temporary = Path(entry.temporary)
            _write_file(temporary, (journal / entry.backup).read_bytes(), exclusive=True)
            _copy_owner_and_mode(entry, temporary)
            os.replace(temporary, entry.target)
        restored.append(entry.path)
    _fsync_dirs({Path(e.target).parent for e in renamed})
    return restored


def _discard(journal: Path, entries: list[_Entry], created_dirs: list[str]) -> None:
    for entry in entries:
        if os.path.lexists(entry.temporary):
            os.unlink(entry.temporary)
    for directory in reversed(created_dirs):
        try:
            os.rmdir(directory)
        except OSError:
            pass  # not empty: a file the user put there
    _remove_journal(journal)


def _save(journal: Path, state: str, entries: list[_Entry], created_dirs: list[str]) -> None:
    record = {"state": state, "entries": [asdict(e) for e in entries], "created_dirs": created_dirs}
    temporary = journal / "journal.json.tmp"
    _write_file(temporary, json.dumps(record, indent=1).encode(), exclusive=False)
    os.replace(temporary, journal / "journal.json")
    _fsync_dirs({journal})


def _fsync_dirs(directories) -> None:
    for directory in directories:
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _remove_journal(journal: Path) -> None:
    record = journal / "journal.json"
    if record.exists():
        os.unlink(record)  # first: from here on, the change set is complete
        _fsync_dirs({journal})
    for leftover in journal.iterdir():
        leftover.unlink()
    journal.rmdir()


def pending_journal(root: Path) -> bool:
    return (journal_dir(root) / "journal.json").exists()


def recover(root: Path) -> list[str]:
    """Finish what a killed run left: remove its temporary files, roll back (or keep) its renames.

    Returns one message per thing done, for the user.
    """
    journal = journal_dir(root)
    if not journal.is_dir():
        return []
    try:
        record = json.loads((journal / "journal.json").read_bytes())
    except FileNotFoundError:
        _remove_journal(journal)  # killed before anything was written
        return []
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read the journal of an interrupted fix, {journal} ({error}); remove it by hand") from None
    entries = [_Entry(**entry) for entry in record["entries"]]
    created_dirs = record["created_dirs"]
    messages = []
    if record["state"] == "renaming":
        states = {e.path: _content_sha256(e.target) for e in entries}
        renamed = [e for e in entries if states[e.path] == e.new_sha256]
        foreign = [e for e in entries if states[e.path] not in (e.new_sha256, e.old_sha256)]
        for entry in foreign:  # edited by hand since: keep the user's file and the old content beside it
            kept = Path(entry.target + ".kvmlint-orig")
            if entry.backup is not None:
                os.replace(journal / entry.backup, kept)
            messages.append(f"{entry.path} changed since an interrupted fix; left as it is (its old content: {kept})")
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
