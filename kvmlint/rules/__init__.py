"""Stage 5, rules: one module per rule, the registry derived from the modules.

Takes the analysis (facts, scope, index) and the model; hands on `Finding`
records, after the tree's suppressions (`suppressions.py`).

A rule module carries everything about its rule (ruff's way):
`CODE`, `NAME`, `SUMMARY`, `ALIASES` (alias -> symbols the alias narrows to),
`FIXABLE`, docs in the module docstring ("What it does / Why is this bad? /
Example / Fix safety"; an optional `extend_docs(docs)` adds what the model's
data says), and `check(analysis, symbols) -> Iterable[Finding]`.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType

from kvmlint.errors import UsageError


@dataclass(frozen=True)
class Rule:
    module: ModuleType

    @property
    def code(self) -> str:
        return self.module.CODE

    @property
    def name(self) -> str:
        return self.module.NAME

    @property
    def summary(self) -> str:
        return self.module.SUMMARY

    @property
    def fixable(self) -> bool:
        return self.module.FIXABLE

    @property
    def aliases(self) -> dict[str, tuple[str, ...]]:
        return getattr(self.module, "ALIASES", {})

    @property
    def docs(self) -> str:
        docs = (self.module.__doc__ or "").strip()
        extend = getattr(self.module, "extend_docs", None)  # parts derived from the model's data
        return extend(docs) if extend else docs

    def check(self, analysis, symbols: tuple[str, ...] | None = None):
        return self.module.check(analysis, symbols)


@dataclass(frozen=True)
class Selection:
    rule: Rule
    symbols: tuple[str, ...] | None = None  # an alias narrows a rule to these symbols


@lru_cache(maxsize=1)
def all_rules() -> tuple[Rule, ...]:
    rules = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "CODE"):
            rules.append(Rule(module))
    return tuple(sorted(rules, key=lambda rule: rule.code))


def resolve(word: str) -> Selection:
    """A rule by code (KVM001), name (irqchip-proxy) or alias (irq0-override)."""
    key = word.strip()
    for rule in all_rules():
        if key.upper() == rule.code or key == rule.name:
            return Selection(rule)
        if key in rule.aliases:
            return Selection(rule, tuple(rule.aliases[key]))
    known = ", ".join(f"{r.code} ({r.name})" for r in all_rules())
    raise UsageError(f"unknown rule '{word}'; known rules: {known}")


def expand(word: str) -> list[Selection]:
    """`resolve`, or every rule whose code starts with `word` (ruff's prefixes: `KVM`, `KVM00`)."""
    key = word.strip().upper()
    prefixed = [Selection(rule) for rule in all_rules() if rule.code.startswith(key) and rule.code != key]
    if key and prefixed and not any(rule.code == key for rule in all_rules()):
        return prefixed
    return [resolve(word)]


def select(
    selected: list[str] | tuple[str, ...] = (),
    ignored: list[str] | tuple[str, ...] = (),
    extended: list[str] | tuple[str, ...] = (),
) -> list[Selection]:
    """The rules to run: `selected` (default: every rule) plus `extended`, less `ignored`."""
    chosen = [s for word in selected for s in expand(word)] if selected else [Selection(r) for r in all_rules()]
    chosen += [s for word in extended for s in expand(word)]
    ignored_codes = {s.rule.code for word in ignored for s in expand(word)}
    merged: dict[str, Selection] = {}
    for selection in chosen:
        if selection.rule.code in ignored_codes:
            continue
        previous = merged.get(selection.rule.code)
        if previous is not None and (previous.symbols is None or selection.symbols is None):
            merged[selection.rule.code] = Selection(selection.rule)
        elif previous is not None:
            merged[selection.rule.code] = Selection(selection.rule, previous.symbols + selection.symbols)
        else:
            merged[selection.rule.code] = selection
    return list(merged.values())
