"""Reading a file of a tree kvmlint did not write: regular files only, bounded in size; and
whether a folder or file of it may be written at all.

Every stage and git's layer read the tree's files, build files and
configuration through here, so a FIFO, a device or a symlink to one, or a file
that grows without end, is one refusal everywhere.  Every writer (the fix's
files, journal and lock, the cache, reports and patch series) asks
`read_only_refusal` first, so a folder or file whose mode says read-only is
kept as it is also when root runs kvmlint, for whom the system checks no
permission.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Optional

# Files larger than this are generated tables, not code anyone edits by hand.
MAX_FILE_BYTES = 8 * 1024 * 1024
# Content to analyse instead of the file on disk: root-relative path -> its bytes, None for a file
# to be taken as absent (whatever is on disk).
Overlay = Mapping[str, Optional[bytes]]


class UnreadableFile(Exception):
    """A file kvmlint will not read; the message says why."""


def read_regular_file(path: Path, max_bytes: int = MAX_FILE_BYTES, follow_symlinks: bool = True) -> bytes:
    """The bytes of a regular file of at most `max_bytes`, else UnreadableFile.

    FIFOs, devices and sockets (also behind symlinks) are refused before they
    are opened, and again on the open descriptor, so reading never blocks on a
    FIFO or streams /dev/zero forever.  Without `follow_symlinks` a symlink is
    refused too.
    """
    no_follow = 0 if follow_symlinks else getattr(os, "O_NOFOLLOW", 0)
    try:
        if not stat.S_ISREG(os.stat(path, follow_symlinks=follow_symlinks).st_mode):
            raise UnreadableFile("not a regular file; skipped")
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0) | no_follow)
    except OSError as error:
        raise UnreadableFile(f"cannot be read ({error.strerror or error}); skipped") from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile("not a regular file; skipped")
        too_large = UnreadableFile(f"larger than {format_size(max_bytes)}; skipped")
        if info.st_size > max_bytes:
            raise too_large
        chunks, size = [], 0
        # Ask for the size fstat gave (a bigger buffer, shrunk after, fragments the heap).
        want = info.st_size + 1
        while chunk := os.read(descriptor, min(want, max_bytes + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:  # it grew while being read
                raise too_large
            want = 64 * 1024
        return b"".join(chunks)
    except OSError as error:
        raise UnreadableFile(f"cannot be read ({error.strerror or error}); skipped") from None
    finally:
        os.close(descriptor)


def read_only_refusal(path, shown: Callable[[Path], str] = str) -> str | None:
    """Why kvmlint must not write `path`, or None when it may.

    A folder is written into; a file is replaced (a new file made beside it
    and renamed over it); a path that does not exist yet is made, with any
    folders on its way.  Each needs the owner's write bit of the folder it
    changes, and a replaced file its own: a bit the user cleared says "keep
    this", whoever runs kvmlint (root may write anything).  What cannot be
    looked at is left to the write itself to report.  `shown` names the
    folder or file in the message.
    """
    path = Path(path)
    status = _stat(path)
    if status is not None and stat.S_ISDIR(status.st_mode):
        changed = [(path, status)]
    else:
        folder = path.parent
        folder_status = _stat(folder)
        while folder_status is None and folder != folder.parent:  # made on the way: its parent changes
            folder = folder.parent
            folder_status = _stat(folder)
        changed = [(path, status), (folder, folder_status)]
    for place, place_status in changed:
        if place_status is None:
            continue
        if not place_status.st_mode & stat.S_IWUSR or not os.access(place, os.W_OK):
            kind = "a read-only folder" if stat.S_ISDIR(place_status.st_mode) else "read-only"
            return f"{shown(place)} is {kind}"
    return None


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (OSError, ValueError):
        return None


def format_size(count: int) -> str:
    return f"{count // (1024 * 1024)} MiB" if count >= 1024 * 1024 else f"{count // 1024} KiB"
