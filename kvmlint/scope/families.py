"""Architecture families, and the path conventions that tie a folder to one.

A *family* groups the QEMU targets that share an architecture's KVM code:
i386 and x86_64 are both "x86".  Sets of families are `Families` values,
where None means "any target": the build does not restrict the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Optional

# The architectures KVM supports, in the order labels list them.
ARCH_FAMILIES: tuple[str, ...] = ("x86", "arm", "ppc", "s390x", "riscv", "loongarch", "mips")

# QEMU target names (and Linux's arch names, used by linux-headers/asm-*)
# that differ from their family's name.  Anything else is its own family.
_FAMILY_OF_NAME = {
    "i386": "x86", "x86_64": "x86",
    "armeb": "arm", "aarch64": "arm", "aarch64_be": "arm", "arm64": "arm",
    "ppc64": "ppc", "ppcemb": "ppc", "ppc64abi32": "ppc", "ppc64le": "ppc", "powerpc": "ppc",
    "s390": "s390x",
    "riscv32": "riscv", "riscv64": "riscv",
    "loongarch64": "loongarch",
    "mipsel": "mips", "mips64": "mips", "mips64el": "mips", "mipsn32": "mips", "mipsn32el": "mips",
    "sparc64": "sparc", "sparc32plus": "sparc",
    "microblazeel": "microblaze",
    "sh4eb": "sh4",
    "xtensaeb": "xtensa",
    "or1k": "openrisc", "or32": "openrisc",
}

Families = Optional[frozenset[str]]  # None: built for any target


def arch_family(target: str) -> str:
    """Map a QEMU target name (i386, aarch64, mips64el, ...) to its family."""
    name = target.strip().lower()
    return _FAMILY_OF_NAME.get(name, name)


def sort_families(families: Iterable[str]) -> list[str]:
    """KVM families in ARCH_FAMILIES order first, then the others alphabetically."""
    rank = {family: index for index, family in enumerate(ARCH_FAMILIES)}
    return sorted(set(families), key=lambda family: (rank.get(family, len(rank)), family))


def format_families(families: Iterable[str]) -> str:
    return ", ".join(sort_families(families))


def union(left: Families, right: Families) -> Families:
    if left is None or right is None:
        return None
    return left | right


def intersect(left: Families, right: Families) -> Families:
    if left is None:
        return right
    if right is None:
        return left
    return left & right


def family_of_target_symbol(symbol: str, known_families: frozenset[str]) -> str | None:
    """`TARGET_I386`/`TARGET_SPARC64` name a target; `TARGET_HAS_BFLT` does not."""
    if not symbol.startswith("TARGET_"):
        return None
    family = arch_family(symbol[len("TARGET_"):])
    return family if family in known_families else None


def path_convention(relpath: str, known_families: frozenset[str]) -> tuple[str, str] | None:
    """(family, folder) when the path sits in an architecture's folder.

    The folders are those of both eras: target-<arch>/ (2012), target/<arch>/,
    hw/<arch>/, include/hw/<arch>/, linux-user/<arch>/, bsd-user/<arch>/,
    linux-headers/asm-<arch>/ (KVM runs only with host == guest architecture)
    and tests/tcg/<arch>/.  tcg/<arch>/ and host/ are *host* backends, built
    for every target, so they are deliberately not conventions.
    """
    parts = relpath.split("/")
    candidate: tuple[str, int] | None = None  # (arch name, number of folder components)
    if len(parts) >= 2 and parts[0].startswith("target-"):
        candidate = (parts[0][len("target-"):], 1)
    elif len(parts) >= 3 and parts[0] in ("target", "hw", "linux-user", "bsd-user"):
        candidate = (parts[1], 2)
    elif len(parts) >= 4 and (parts[0], parts[1]) in (("include", "hw"), ("tests", "tcg")):
        candidate = (parts[2], 3)
    elif len(parts) >= 3 and parts[0] == "linux-headers" and parts[1].startswith("asm-"):
        candidate = (parts[1][len("asm-"):], 2)
    if candidate is None:
        return None
    name, depth = candidate
    family = arch_family(name)
    if family not in known_families:
        return None
    return family, "/".join(parts[:depth]) + "/"
