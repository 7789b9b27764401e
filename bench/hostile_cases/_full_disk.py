"""A full disk for one kvmlint run: every file kvmlint's fix creates or writes fails with ENOSPC
from a chosen call on, while it takes its lock or writes a change set (the analysis's
pipes to its workers are left alone)."""

from __future__ import annotations

from pathlib import Path

from hostile_cases import REPOSITORY

SITECUSTOMIZE = """
import errno, os
import kvmlint.codemods.transaction as transaction

armed, calls, full = False, [0], [False]

def fills(name, counts=lambda *args, **options: True):
    real = getattr(os, name)
    def call(*args, **options):
        if armed and counts(*args, **options):
            calls[0] += name in {counted!r}
            full[0] = full[0] or calls[0] >= {first}  # and stays full
            if full[0]:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, **options)
    setattr(os, name, call)

def armed_in(owner, name):
    real = getattr(owner, name)
    def call(*args, **options):
        global armed
        armed = True
        try:
            return real(*args, **options)
        finally:
            armed = False
    setattr(owner, name, call)

for name in ("write", "mkdir", "link"):
    fills(name)
fills("open", lambda path, flags, *rest, **options: flags & os.O_CREAT)
armed_in(transaction.FixLock, "__enter__")
armed_in(transaction, "commit")
"""


def full_disk_environment(folder: Path, first: int,
                          counted: tuple[str, ...] = ("open", "write", "mkdir", "link")) -> dict[str, str]:
    """The environment for `kvmlint()` under which the disk is full from the `first` call
    of those `counted` (of os.open with O_CREAT, os.write, os.mkdir, os.link) that the lock
    or a commit makes."""
    site = folder / "full-disk"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE.format(first=first, counted=counted))
    return {"PYTHONPATH": f"{site}:{REPOSITORY}"}
