"""Which architecture a concept or a KVM capability/ioctl belongs to (data: concepts.toml, the TSV)."""

from __future__ import annotations

import csv
import re
import sys
from functools import lru_cache
from importlib import resources

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before it joined the standard library
    import tomli as tomllib

GENERIC = "generic"  # concepts.toml's table of concepts every architecture has
ARCHES = ("x86", "arm", "ppc", "s390x", "riscv", "loongarch", "mips")
# the capability table's tokens -> kvmlint's arch families
_TSV_FAMILY = {"x86": "x86", "arm64": "arm", "ppc": "ppc", "s390": "s390x", "riscv": "riscv",
               "loongarch": "loongarch", "mips": "mips"}


def data_file(name: str):
    return resources.files("kvmlint.model").joinpath("data").joinpath(name)


@lru_cache(maxsize=None)
def load_toml(name: str) -> dict:
    with data_file(name).open("rb") as handle:
        return tomllib.load(handle)


def _words(identifier: str) -> tuple[str, ...]:
    return tuple(word for word in re.split(r"[_\-\s]+", identifier.lower()) if word)


@lru_cache(maxsize=1)
def _fragments() -> tuple[tuple[tuple[str, ...], str], ...]:
    return tuple(
        (_words(fragment), arch)
        for arch, table in load_toml("concepts.toml").items()
        for fragment in table["fragments"]
        if arch != GENERIC
    )


def _names_any(words: tuple[str, ...], fragments) -> bool:
    return any(words[i:i + len(f)] == f for f in fragments for i in range(len(words) - len(f) + 1))


@lru_cache(maxsize=4096)
def names_generic_concept(identifier: str) -> bool:
    """`identifier` names a concept every architecture has (GSI routing, MSI, vcpu events, ...)."""
    fragments = [_words(fragment) for fragment in load_toml("concepts.toml")[GENERIC]["fragments"]]
    return _names_any(_words(identifier), fragments)


@lru_cache(maxsize=8192)
def concept_arch(identifier: str) -> str | None:
    """The one architecture whose concept `identifier` names, or None (none, or several)."""
    words = _words(identifier)
    owners = {arch for fragment, arch in _fragments() if _names_any(words, [fragment])}
    return owners.pop() if len(owners) == 1 else None


@lru_cache(maxsize=1)
def _api_table() -> dict[str, frozenset[str] | None]:
    """KVM_* name -> arch families (None: all architectures)."""
    arches: dict[str, set[str] | None] = {}

    def add(name: str, cell: str) -> None:
        if not cell or arches.get(name, set()) is None:
            return  # an empty cell says nothing; "all" already won
        if cell == "all":
            arches[name] = None
        else:
            arches.setdefault(name, set()).update(_TSV_FAMILY[token] for token in cell.split(","))

    with data_file("kvm-api-architectures.tsv").open(encoding="utf-8") as handle:
        rows = csv.DictReader((line for line in handle if not line.startswith("#")), delimiter="\t")
        for row in rows:
            add(row["name"], row["architectures"])
            for capability in filter(None, row["capability"].split(",")):
                add(capability, row["architectures"])
    return {name: None if found is None else frozenset(found) for name, found in arches.items()}


def capability_arches(name: str) -> frozenset[str] | None:
    """Arch families a KVM_CAP_* or KVM ioctl applies to; None when unknown or all."""
    return _api_table().get(name)
