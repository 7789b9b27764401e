"""The source stage's cache: per-file facts, so a second run parses nothing unchanged.

Per file: its stat signature and the sha256 of its bytes (`FileRecord`, one
index per tree), and the facts extracted from those bytes (one entry per
path and content).  A file whose stat changed is read and hashed again; its
facts are reused when the content is the same.  Keyed by kvmlint's version
and the digest of the code that reads and extracts (the source stage and the
shared modules) and of the parser libraries, not by the model: facts do not
depend on it.  The bundled model is not cached: it is read on every run, so
editing it changes the findings at once while the facts stay valid.

The entries live in the shared storage (`kvmlint.store`: sealing, folder
checks, atomic writes).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from kvmlint import __version__
from kvmlint.store import FORMAT, Store, code_digest, hash_parts, library_digest, record_types

# A file modified this close to the moment its stat was taken may change again
# within the same timestamp tick: its stat is not trusted next time (git calls
# this "racily clean"), so its bytes are hashed again.
RACY_NANOSECONDS = 2_000_000_000

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


def facts_key() -> str:
    """What extracted facts depend on besides the file's bytes: kvmlint's reading code and parsers."""
    package = Path(__file__).resolve().parent.parent
    return hash_parts(
        "facts", str(FORMAT), __version__, sys.version, code_digest(package, recursive=False),
        code_digest(package / "source", recursive=True),
        library_digest("tree_sitter", "tree_sitter_c", "libcst"),
    )


@lru_cache(maxsize=1)
def _facts_types() -> dict[tuple[str, str], type]:
    """The facts records: all that a facts entry or the file index may unpickle into."""
    from kvmlint.source import facts

    return record_types(obj for obj in vars(facts).values() if isinstance(obj, type) and dataclasses.is_dataclass(obj))


class FactsCache:
    """Facts entries and the tree's file index in a store.  Picklable, so parser workers use it too."""

    def __init__(self, store: Store):
        self.store = store
        self.facts_key = facts_key()
        self.index_name = "index-" + hash_parts(self.facts_key, store.tree)[:32]
        store.current.add(self.index_name)

    def facts_name(self, relpath: str, sha256: str) -> str:
        return "facts-" + hash_parts(self.facts_key, relpath, sha256)[:40]

    def load_facts(self, relpath: str, sha256: str):
        from kvmlint.source.facts import FileFacts

        facts = self.store.read(self.facts_name(relpath, sha256), self.facts_key, _facts_types())
        return facts if isinstance(facts, FileFacts) and facts.path == relpath else None

    def store_facts(self, relpath: str, sha256: str, facts) -> None:
        self.store.write(self.facts_name(relpath, sha256), self.facts_key, facts)

    def load_index(self) -> dict[str, tuple]:
        """Path -> FileRecord fields; a malformed record is a miss where it is used (see workers.py)."""
        index = self.store.read(self.index_name, self.facts_key, _facts_types())
        return index if isinstance(index, dict) else {}

    def store_index(self, index: dict[str, tuple]) -> None:
        self.store.write(self.index_name, self.facts_key, {path: tuple(record) for path, record in index.items()})
        in_use = {self.facts_name(path, record[1]) for path, record in index.items() if record[2] == PARSED}
        self.store.remove_stale(in_use)
