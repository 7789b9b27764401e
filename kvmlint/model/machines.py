"""Which architecture family a QEMU machine type belongs to (data: machines.toml)."""

from __future__ import annotations

from functools import lru_cache

from kvmlint.model.vocabulary import ARCHES, load_toml

SHARED = "shared"


@lru_cache(maxsize=1)
def _vocabulary() -> tuple[dict[str, str], tuple[tuple[str, str], ...], frozenset[str]]:
    table = load_toml("machines.toml")
    unknown = set(table) - set(ARCHES) - {SHARED}
    if unknown:
        raise ValueError(f"machines.toml: unknown architecture families {sorted(unknown)}")
    names = {name: arch for arch in ARCHES for name in table.get(arch, {}).get("names", ())}
    prefixes = tuple(
        (prefix, arch) for arch in ARCHES for prefix in table.get(arch, {}).get("prefixes", ())
    )
    return names, prefixes, frozenset(table.get(SHARED, {}).get("names", ()))


@lru_cache(maxsize=1024)
def machine_arch(machine: str) -> str | None:
    """The one family whose binaries have this machine type; None when shared or unknown."""
    names, prefixes, shared = _vocabulary()
    machine = machine.strip().lower()
    if machine in shared:
        return None
    if machine in names:
        return names[machine]
    return next((arch for prefix, arch in prefixes if machine.startswith(prefix)), None)
