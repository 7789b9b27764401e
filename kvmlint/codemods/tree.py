"""What the code-mods read from the tree, shared so each reads it one way."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from kvmlint.errors import FixError


def file_reader(root: Path, planned: dict[str, bytes] | None = None):
    """A cached `read(relpath) -> bytes`; files planned in this run read as planned.

    An unreadable file is a FixError: that finding stays unfixed, the run goes on.
    """
    planned = planned if planned is not None else {}
    cache: dict[str, bytes] = {}

    def read(path: str) -> bytes:
        if path in planned:
            return planned[path]
        if path not in cache:
            try:
                cache[path] = (root / path).read_bytes()
            except OSError as error:
                raise FixError(f"{path}: cannot be read ({error.strerror or error})") from error
        return cache[path]

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
