"""Reading a file of a tree kvmlint did not write: regular files only, bounded in size.

Every stage and git's layer read the tree's files, build files and
configuration through here, so a FIFO, a device or a symlink to one, or a file
that grows without end, is one refusal everywhere.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
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


def format_size(count: int) -> str:
    return f"{count // (1024 * 1024)} MiB" if count >= 1024 * 1024 else f"{count // 1024} KiB"
