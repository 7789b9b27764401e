"""What the code-mods read from the tree, shared so each reads it one way."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kvmlint.errors import FixError
from kvmlint.files import UnreadableFile, read_regular_file


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class TreeSnapshot:
    """Every file a fix reads, with the bytes it first read, so all of its edits are against one version.

    A file the analysis parsed must still hold the bytes parsed (their
    `content_sha256`): the findings' byte offsets point into those.  A file
    the analysis did not parse (a build file) is taken as first read here,
    which happens under the fix lock.
    """

    def __init__(self, root: Path, analysed: dict[str, str] | None = None):
        self.root = root
        self.analysed = analysed or {}
        self._read: dict[str, bytes] = {}

    def read(self, path: str) -> bytes:
        if path not in self._read:
            try:
                data = read_regular_file(self.root / path)
            except UnreadableFile as why:
                raise FixError(f"{path}: {why}") from None
            expected = self.analysed.get(path)
            if expected is not None and sha256(data) != expected:
                raise FixError(f"{path}: changed on disk since it was analysed; run kvmlint fix again")
            self._read[path] = data
        return self._read[path]


_snapshots: dict[Path, TreeSnapshot] = {}


def snapshot(root: Path) -> TreeSnapshot:
    """The snapshot of the fix running on `root`, else a fresh one (code-mods used as a library)."""
    return _snapshots.get(root.resolve()) or TreeSnapshot(root)


@contextmanager
def reading_as_analysed(root: Path, facts) -> Iterator[TreeSnapshot]:
    """While a fix runs on `root`, every read of a code-mod or of the engine goes through one snapshot
    checked against the bytes the analysis parsed (`facts`: path -> FileFacts)."""
    key = root.resolve()
    _snapshots[key] = TreeSnapshot(root, {path: f.content_sha256 for path, f in facts.items() if f.content_sha256})
    try:
        yield _snapshots[key]
    finally:
        del _snapshots[key]


def file_reader(root: Path, planned: dict[str, bytes] | None = None):
    """A `read(relpath) -> bytes` through the tree's snapshot; files planned in this run read as planned.

    An unreadable file, or one that changed since the analysis, is a
    FixError: that finding stays unfixed, the run goes on.
    """
    planned = planned if planned is not None else {}
    tree = snapshot(root)

    def read(path: str) -> bytes:
        if path in planned:
            return planned[path]
        return tree.read(path)

    return read


def arch_kvm_sources(analysis) -> dict[str, str]:
    """Each architecture's KVM source: the one-arch file defining most of its kvm_arch_* hooks."""
    hooks: dict[str, Counter[str]] = {}
    for name, located in analysis.index.definitions.items():
        if not name.startswith("kvm_arch_"):
            continue
        for definition in located:
            scope = analysis.scope(definition.path)
            if definition.item.kind == "function" and not scope.common and len(scope.arches) == 1:
                hooks.setdefault(next(iter(scope.arches)), Counter())[definition.path] += 1
    return {arch: counts.most_common(1)[0][0] for arch, counts in hooks.items()}
