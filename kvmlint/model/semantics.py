"""The semantic model: per era and architecture, configurations and predicate values.

Everything here is read from the TOML files in `data/`; this module only evaluates them.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from dataclasses import dataclass
from functools import lru_cache

from kvmlint.model import expression as ex
from kvmlint.model.vocabulary import ARCHES, capability_arches, load_toml

ERAS = ("2012", "current")
IRQCHIP = "irqchip"  # the fact holding the kernel_irqchip setting


@dataclass(frozen=True)
class IrqchipSettings:
    """The `kernel_irqchip=` values a target accepts: what KVM006 checks options against."""

    values: tuple[str, ...]
    default: str
    rejected: dict[str, str]  # value -> the reason (QEMU's own message where it has one)
    notes: dict[str, str]  # value -> what the accepted value means on this target


@dataclass(frozen=True)
class Configuration:
    """One assignment of an architecture's facts, the kernel_irqchip setting first."""

    facts: tuple[tuple[str, bool | str], ...]

    def __getitem__(self, name: str) -> bool | str:
        return dict(self.facts)[name]

    def __contains__(self, name: str) -> bool:
        return any(fact == name for fact, _ in self.facts)

    @property
    def label(self) -> str:
        words = []
        for name, value in self.facts:
            if name == IRQCHIP:
                words.append(f"kernel_irqchip={value}")
            elif isinstance(value, str):
                words.append(value)
            else:
                words.append(name if value else f"no {name}")
        return ", ".join(words)


@dataclass(frozen=True)
class Predicate:
    name: str
    doc: str
    arch: str | None  # an arch's own concept: n/a elsewhere
    flags: dict[str, str]  # era -> flag variable ("" when the era has none)
    title: str  # the concept in a few words, for patch subjects


@dataclass(frozen=True)
class _ArchEra:
    settings: IrqchipSettings
    domains: tuple[tuple[str, tuple], ...]  # fact -> possible values, irqchip first
    constraints: tuple[ex.Node, ...]
    formulas: dict[str, str]
    common_irqchip_create: bool


class Model:
    """One era's model of every architecture's interrupt behaviour."""

    def __init__(self, era: str):
        if era not in ERAS:
            raise ValueError(f"unknown era {era!r}: expected one of {', '.join(ERAS)}")
        self.era = era
        shared = load_toml("predicates.toml")
        self.predicates: dict[str, Predicate] = {
            name: Predicate(name, table["doc"], table.get("arch"),
                            {e: table[e]["flag"] for e in ERAS if e in table},
                            table.get("title", name))
            for name, table in shared["predicates"].items()
        }
        self.capability_helpers: dict[str, str] = shared["capability_helpers"]
        self._arch: dict[str, _ArchEra] = {}
        for arch in ARCHES:
            table = load_toml(f"{arch}.toml").get(era)
            if table is not None:
                self._arch[arch] = self._read_arch(arch, table, shared["predicates"])
        self.arches: tuple[str, ...] = tuple(self._arch)
        self.flags: dict[str, str] = {
            p.flags[era]: name for name, p in self.predicates.items() if p.flags.get(era)
        }

    def _read_arch(self, arch: str, table: dict, shared: dict) -> _ArchEra:
        irqchip = table["kernel_irqchip"]
        settings = IrqchipSettings(
            tuple(irqchip["values"]), irqchip["default"],
            dict(irqchip.get("rejected", {})), dict(irqchip.get("notes", {})),
        )
        domains = ((IRQCHIP, settings.values),) + tuple(
            (name, tuple(values)) for name, values in table.get("facts", {}).items()
        )
        formulas = {}
        for name, predicate in shared.items():
            own = predicate.get("arch")
            if own is None or own == arch:
                default = predicate.get(self.era, {}).get("default")
                formula = table.get("predicates", {}).get(name, default)
                if formula is not None:
                    formulas[name] = formula
        unknown = set(table.get("predicates", {})) - set(formulas)
        if unknown:
            raise ValueError(f"{arch}.toml ({self.era}) defines unknown predicates: {sorted(unknown)}")
        return _ArchEra(
            settings, domains, tuple(ex.parse(c) for c in table.get("constraints", ())),
            formulas, table["common_irqchip_create"],
        )

    # --- what callers ask -------------------------------------------------------------

    def valid_irqchip_settings(self, arch: str) -> IrqchipSettings:
        return self._arch[arch].settings

    def configurations(self, arch: str, facts: frozenset[str] | None = None) -> tuple[Configuration, ...]:
        """Every valid configuration; with `facts`, projected onto those facts (and irqchip)."""
        return _configurations(self, arch, facts)

    def facts_of(self, arch: str) -> tuple[str, ...]:
        return tuple(name for name, _ in self._arch[arch].domains)

    def formula(self, arch: str, name: str) -> str | None:
        """The formula text of a predicate on an arch; None when it is n/a there."""
        return self._arch[arch].formulas.get(name)

    def predicate(self, arch: str, name: str, config: Configuration) -> bool | None:
        """Predicate `name` on `arch` in `config`: True/False, or None when n/a on that arch."""
        if name not in self.predicates:
            raise KeyError(f"unknown predicate {name!r}")
        value = self.evaluate(arch, f"{name}()", config)
        return None if value is ex.NA else bool(value)

    def common_irqchip_create(self, arch: str) -> bool:
        """Whether common kvm_irqchip_create() can succeed on `arch` (its setters then apply)."""
        return self._arch[arch].common_irqchip_create

    def defines_generic_predicate(self, name: str) -> bool:
        """`name` is a predicate every arch has (its body may legitimately ask the irqchip)."""
        predicate = self.predicates.get(name)
        return predicate is not None and predicate.arch is None

    def arch_of_predicate(self, name: str) -> str | None:
        """The arch whose own concept predicate `name` is; None for generic or unknown names."""
        predicate = self.predicates.get(name)
        return predicate.arch if predicate else None

    def facts_used(self, arch: str, text: str) -> frozenset[str]:
        """The facts of `arch` an expression depends on, through every predicate it asks."""
        return _facts_used(self, arch, text)

    # --- evaluation ---------------------------------------------------------------------

    def evaluate(self, arch: str, text: str, config: Configuration, *,
                 formula: bool = False, free_names: bool = False):
        """Reduce a C expression on one configuration: a value, or the residual over free leaves.

        Code expressions (`formula=False`) read model predicates, capability helpers and flag
        variables; every other leaf stays free.  Formulas also read the arch's facts and
        KVM_CAP_* names; another name is a data error unless `free_names` keeps it free.
        """
        return ex.reduce(ex.parse(text), self._resolver(arch, config, formula, free_names))

    def _resolver(self, arch: str, config: Configuration, formula: bool, free_names: bool = False):
        facts = self.facts_of(arch)

        def resolve(leaf: ex.Leaf):
            if leaf.kind == "call" and leaf.name in self.predicates:
                return self._predicate_value(arch, leaf.name, config)
            if leaf.kind == "call" and leaf.name in self.capability_helpers:
                return self._capability(arch, self.capability_helpers[leaf.name], config)
            if leaf.kind == "name" and leaf.name in self.flags:
                return self._predicate_value(arch, self.flags[leaf.name], config)
            if formula and leaf.kind == "name":
                if leaf.name in config:
                    return config[leaf.name]
                if leaf.name in facts:
                    return None  # projected away: stays symbolic
                if leaf.name.startswith("KVM_CAP_"):
                    return self._capability(arch, leaf.name, config)
                if not free_names:
                    raise ValueError(f"{arch} ({self.era}): formula names unknown fact {leaf.name!r}")
            return None

        return resolve

    def _predicate_value(self, arch: str, name: str, config: Configuration):
        formula = self._arch[arch].formulas.get(name)
        if formula is None:
            return ex.NA
        return _cached_formula(self, arch, formula, config)

    def _capability(self, arch: str, cap: str, config: Configuration):
        if cap in config:
            return config[cap]
        if cap in self.facts_of(arch):
            return None  # projected away: stays symbolic
        arches = capability_arches(cap)
        if arches is not None and arch not in arches:
            return False
        return None  # the arch may have it and the model does not enumerate it: stays free


@lru_cache(maxsize=65536)
def _cached_formula(model: Model, arch: str, formula: str, config: Configuration):
    return model.evaluate(arch, formula, config, formula=True)


@lru_cache(maxsize=4096)
def _facts_used(model: Model, arch: str, text: str) -> frozenset[str]:
    data = model._arch[arch]
    known = {name for name, _ in data.domains}
    used: set[str] = set()
    for leaf in ex.leaves(ex.parse(text)):
        name = model.flags.get(leaf.name, leaf.name)
        if name in data.formulas and (leaf.kind == "call" or leaf.name in model.flags):
            used |= _facts_used(model, arch, data.formulas[name])
        elif leaf.kind == "call" and name in model.capability_helpers:
            used.add(model.capability_helpers[name])
        elif leaf.kind == "name":
            used.add(name)
    return frozenset(used & known)


@lru_cache(maxsize=256)
def _configurations(model: Model, arch: str, facts: frozenset[str] | None) -> tuple[Configuration, ...]:
    data = model._arch[arch]
    names = [name for name, _ in data.domains]
    found: dict[Configuration, None] = {}
    for values in itertools.product(*(values for _, values in data.domains)):
        config = Configuration(tuple(zip(names, values)))
        if all(ex.reduce(c, model._resolver(arch, config, True)) for c in data.constraints):
            kept = tuple((n, v) for n, v in config.facts if facts is None or n == IRQCHIP or n in facts)
            found.setdefault(Configuration(kept), None)
    return tuple(found)


@lru_cache(maxsize=None)
def load_model(era: str = "current") -> Model:
    """The bundled model of one era ("2012" or "current"), loaded once per process."""
    return Model(era)


def infer_era(symbols: set[str] | frozenset[str], root: Path | None = None) -> str:
    """The era of a tree from the predicates and flags it defines, else from its layout
    (see predicates.toml [[eras]]), else the default (current QEMU)."""
    table = load_toml("predicates.toml")
    for era in table["eras"]:
        if symbols & set(era["markers"]):
            return era["name"]
    if root is not None:
        for era in table["eras"]:
            if any((root / path).exists() for path in era.get("layout", ())):
                return era["name"]
    return next(era["name"] for era in table["eras"] if era.get("default"))
