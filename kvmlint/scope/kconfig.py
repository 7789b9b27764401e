"""Kconfig and the device configs: for which families can CONFIG_X be enabled?

QEMU's minikconf (since 2019, in the make and the meson build alike)
computes each system target's devices from its device config (CONFIG_X=y/n,
`include` of other .mak files), host and accelerator symbols, the symbol
CONFIG_<TARGET_ARCH>=y where Kconfig declares one, and the Kconfig clauses
`default y [if E]`, `select X [if E]`, `imply X [if E]` and `depends on E`.
The device configs moved over the years:

    default-configs/<target>.mak                 (make + Kconfig)
    default-configs/devices/<target>.mak         (first meson releases)
    configs/devices/<target>/default.mak         (later)

and target keys (TARGET_ARCH=...) likewise from default-configs/targets/ to
configs/targets/.  Machines are enabled by one architecture's device config
or depend on that architecture's symbol, so a device selected only by one
architecture's machines is that architecture's.

We compute, per target, every symbol that the default configuration can
enable, treating host and accelerator symbols (KVM, LINUX, FDT, ...) as
possibly on.  That over-approximates, which errs towards "common".
"""

from __future__ import annotations

import os
import re
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .build import BoundWarnings, ConfigSpace, read_text, summarize_names, visit_key
from .families import Families, arch_family
from .makefiles import read_make_config
from .meson import read_accelerator_targets

Expr = tuple  # ("sym", name) | ("not", e) | ("and", e, e, ...) | ("or", e, e, ...)

_TOKEN = re.compile(r"\|\||&&|!|\(|\)|\w+")
# Parentheses and `!` nested deeper than this are no condition anyone wrote (QEMU's deepest is 1).
MAX_EXPRESSION_DEPTH = 64


class ExpressionTooDeep(Exception):
    """A Kconfig expression with parentheses and `!` nested deeper than MAX_EXPRESSION_DEPTH."""


def parse_expression(text: str) -> Expr | None:
    """A Kconfig boolean expression, or None when it cannot be read.

    A chain of `&&` (or `||`) is one node however long, so only parentheses
    and `!` nest, and those at most MAX_EXPRESSION_DEPTH deep (else
    ExpressionTooDeep): every reader of an expression may recurse into it.
    """
    tokens = _TOKEN.findall(text)
    if "".join(tokens) != re.sub(r"\s+", "", text):
        return None
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        position += 1
        return tokens[position - 1]

    def chain(kind: str, operator: str, operand, depth: int) -> Expr:
        operands = [operand(depth)]
        while peek() == operator:
            take()
            operands.append(operand(depth))
        return operands[0] if len(operands) == 1 else (kind, *operands)

    def disjunction(depth: int) -> Expr:
        return chain("or", "||", conjunction, depth)

    def conjunction(depth: int) -> Expr:
        return chain("and", "&&", unary, depth)

    def unary(depth: int) -> Expr:
        token = take() if peek() is not None else None
        if token in ("!", "(") and depth >= MAX_EXPRESSION_DEPTH:
            raise ExpressionTooDeep(text)
        if token == "!":
            return ("not", unary(depth + 1))
        if token == "(":
            inner = disjunction(depth + 1)
            if take() != ")":
                raise ValueError("unbalanced parenthesis")
            return inner
        if token is None or not re.fullmatch(r"\w+", token):
            raise ValueError(f"unexpected {token!r}")
        return ("sym", token)

    try:
        expression = disjunction(0)
    except (ValueError, IndexError):
        return None
    return expression if position == len(tokens) else None


def expression_symbols(expression: Expr | None) -> set[str]:
    if expression is None:
        return set()
    if expression[0] == "sym":
        return {expression[1]}
    return set().union(*(expression_symbols(part) for part in expression[1:]))


@dataclass
class KconfigSymbol:
    name: str
    declared_in: str | None = None
    depends: list[Expr | None] = field(default_factory=list)
    defaults: list[Expr | None] = field(default_factory=list)  # `default y [if E]`; None: unconditional
    selected_by: list[tuple[str, Expr | None]] = field(default_factory=list)
    implied_by: list[tuple[str, Expr | None]] = field(default_factory=list)


def parse_kconfig(
    text: str, kconfig_file: str, symbols: dict[str, KconfigSymbol], warnings: BoundWarnings | None = None,
) -> list[str]:
    """Add one Kconfig file's clauses to `symbols`; return the files it sources."""
    sourced: list[str] = []
    current: KconfigSymbol | None = None

    def symbol(name: str) -> KconfigSymbol:
        return symbols.setdefault(name, KconfigSymbol(name))

    def condition(text: str, clause: str) -> Expr | None:
        """None (holds, as for a condition we cannot read) past the nesting bound."""
        try:
            return parse_expression(text)
        except ExpressionTooDeep:
            if warnings is not None:
                warnings.add(kconfig_file, f"config {current.name}: {clause} nested deeper than "
                                           f"{MAX_EXPRESSION_DEPTH} levels of parentheses and `!`; taken as true")
            return None

    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        keyword, _, rest = line.partition(" ")
        rest = rest.strip()
        if keyword == "source" and rest:
            sourced.append(rest)
        elif keyword == "config" and re.fullmatch(r"\w+", rest):
            current = symbol(rest)
            current.declared_in = current.declared_in or kconfig_file
        elif current is None:
            continue
        elif keyword == "depends" and rest.startswith("on "):
            current.depends.append(condition(rest[3:], "`depends on`"))
        elif keyword == "default":
            value, _, when = rest.partition(" if ")
            if value.strip() == "y":
                current.defaults.append(condition(when, "`default y if`") if when else None)
        elif keyword in ("select", "imply"):
            target, _, when = rest.partition(" if ")
            if re.fullmatch(r"\w+", target.strip()):
                clause = (current.name, condition(when, f"`{keyword} {target.strip()} if`") if when else None)
                edges = symbol(target.strip()).selected_by if keyword == "select" else symbol(target.strip()).implied_by
                edges.append(clause)
    return sourced


# The files minikconf reads first: the top Kconfig, or before it existed
# Kconfig.host and hw/Kconfig (2019's make build).
KCONFIG_ROOTS = ("Kconfig", "Kconfig.host", "hw/Kconfig")


def has_kconfig(root: Path) -> bool:
    return any((root / name).is_file() for name in KCONFIG_ROOTS)


def read_kconfig_tree(root: Path, warnings: BoundWarnings | None = None) -> dict[str, KconfigSymbol]:
    """Every Kconfig reachable by `source` from the roots (paths relative to the sourcing file)."""
    warnings = warnings if warnings is not None else BoundWarnings(root)
    symbols: dict[str, KconfigSymbol] = {}
    pending: list[tuple[str, str | None]] = [(name, None) for name in reversed(KCONFIG_ROOTS) if (root / name).is_file()]
    read: dict[str, str] = {}  # real path -> the name it was read under
    while pending:
        relpath, sourced_by = pending.pop()
        relpath = os.path.normpath(relpath)
        if warnings.left_root(sourced_by or relpath, root / relpath, relpath):
            continue
        key = visit_key(root / relpath)
        if key in read:
            if read[key] != relpath and sourced_by is not None:
                warnings.add(sourced_by, f"{relpath} leads back to {read[key]} "
                                         f"through a symlink (a loop?); not read again")
            continue
        read[key] = relpath
        folder = os.path.dirname(relpath)
        for sourced in parse_kconfig(read_text(root, root / relpath), relpath.replace(os.sep, "/"), symbols, warnings):
            pending.append((os.path.join(folder, sourced), relpath))
    return symbols


@dataclass
class DeviceTarget:
    name: str  # "aarch64-softmmu"
    family: str
    assigned: dict[str, bool]  # CONFIG_ prefix stripped
    seeds: set[str]  # CONFIG_<TARGET_ARCH> and TARGET_* keys that are Kconfig symbols
    config_file: str


class Activation:
    """When each symbol turns on, for the closure of a target's configuration.

    One graph of and/or nodes over the symbols, built once: a symbol's root holds
    when its `depends on` all hold and a `select` (from an enabled symbol, under its
    `if`), a `default y [if E]` or an `imply` does.  A target's closure propagates
    up from what holds: each node turns true at most once, so its time is linear in
    the Kconfig clauses however they chain (re-evaluating a symbol whenever one of its
    inputs turned on was quadratic in a chain).  `!E` is decided before the
    propagation: it only reads the target-fixed symbols, or holds.
    """

    def __init__(self, symbols: dict[str, KconfigSymbol]) -> None:
        self._missing: list[int] = []  # per node: how many children must turn true (and: all, or: one)
        self._parents: list[list[int]] = []
        self._leaves: dict[str, int] = {}  # symbol -> the node that is true when it is on
        self._negations: list[tuple[int, Expr]] = []
        self._turns_on: dict[int, str] = {}  # root node -> its symbol
        for symbol in symbols.values():
            sources = [("and", ("sym", source), condition or _TRUE)
                       for source, condition in symbol.selected_by + symbol.implied_by]
            defaults = [condition or _TRUE for condition in symbol.defaults]
            root = ("and", *(condition or _TRUE for condition in symbol.depends), ("or", *sources, *defaults))
            self._turns_on[self._node(root)] = symbol.name

    def _node(self, expression: Expr) -> int:
        kind = expression[0]
        if kind == "sym" and expression[1] in self._leaves:
            return self._leaves[expression[1]]
        node = len(self._missing)
        self._missing.append(len(expression) - 1 if kind == "and" else 1)
        self._parents.append([])
        if kind == "sym":
            self._leaves[expression[1]] = node
        elif kind == "not":
            self._negations.append((node, expression))
        else:
            for part in expression[1:]:
                self._parents[self._node(part)].append(node)
        return node

    def close(self, enabled: set[str], eligible: Callable[[str], bool], possible: Callable[[Expr], bool],
              on: Callable[[str], bool]) -> None:
        """Add to `enabled` every `eligible` symbol that can turn on; `possible` decides a
        `!E`, `on` a symbol before the propagation."""
        missing = list(self._missing)
        holds = [False] * len(missing)
        pending = [node for node, count in enumerate(missing) if count == 0]
        pending += [node for name, node in self._leaves.items() if on(name)]
        pending += [node for node, negation in self._negations if possible(negation)]
        while pending:
            node = pending.pop()
            if holds[node]:
                continue
            holds[node] = True
            name = self._turns_on.get(node)
            if name is not None and eligible(name):
                enabled.add(name)
                if name in self._leaves:
                    pending.append(self._leaves[name])
            for parent in self._parents[node]:
                missing[parent] -= 1
                if missing[parent] == 0:
                    pending.append(parent)


_TRUE = ("and",)


class KconfigSpace(ConfigSpace):
    """Per-target closure of the default device configuration."""

    def __init__(self, root: Path, known_families: frozenset[str], warnings: BoundWarnings | None = None) -> None:
        super().__init__(known_families)
        self.symbols = read_kconfig_tree(root, warnings)
        self.targets = self._read_targets(root, warnings)
        self._exact = {seed for target in self.targets for seed in target.seeds}
        self._assigned_anywhere = {n for t in self.targets for n, on in t.assigned.items() if on}
        self._external = {name for name, s in self.symbols.items() if self._is_external(s)}
        self.accelerators = read_accelerator_targets(root)
        self._dependents = self._dependency_index()
        self._activation = Activation(self.symbols)
        self.enabled = {target.name: self._closure(target) for target in self.targets}

    def _read_targets(self, root: Path, warnings: BoundWarnings | None) -> list[DeviceTarget]:
        targets = []
        already_read: dict[str, dict[str, str]] = {}
        for name, config_file in device_config_files(root):
            target_keys: dict[str, str] = {}
            for folder in ("configs/targets", "default-configs/targets"):
                target_keys = target_keys or read_target_config(root, root / folder / f"{name}.mak")
            arch = target_keys.get("TARGET_ARCH", name.split("-")[0])
            seeds = {arch.upper()} | {key for key, value in target_keys.items()
                                      if value == "y" and key in self.symbols}
            assigned = {symbol[len("CONFIG_"):]: value not in ("n", "")
                        for symbol, value in read_make_config(root, root / config_file, warnings, already_read).items()}
            targets.append(DeviceTarget(name, arch_family(name.split("-")[0]), assigned, seeds, config_file))
        return targets

    def _is_external(self, symbol: KconfigSymbol) -> bool:
        """A host/accelerator input (KVM, LINUX, FDT...): a bare bool outside hw/ that
        nothing in Kconfig or configs/devices turns on; meson sets it from the host."""
        if symbol.name in self._exact or symbol.name in self._assigned_anywhere:
            return False
        if symbol.defaults or symbol.selected_by or symbol.implied_by:
            return False
        return symbol.declared_in is None or "hw" not in symbol.declared_in.split("/")

    def _dependency_index(self) -> dict[str, set[str]]:
        dependents: dict[str, set[str]] = defaultdict(set)
        for symbol in self.symbols.values():
            mentioned: set[str] = set()
            for expression in symbol.depends + symbol.defaults:
                mentioned |= expression_symbols(expression)
            for source, condition in symbol.selected_by + symbol.implied_by:
                mentioned |= {source} | expression_symbols(condition)
            for name in mentioned:
                dependents[name].add(symbol.name)
        return dependents

    def _possible(self, expression: Expr | None, enabled: set[str]) -> bool:
        if expression is None:
            return True
        kind = expression[0]
        if kind == "sym":
            return self._on(expression[1], enabled)
        if kind == "not":
            inner = expression[1]
            if expression_symbols(inner) <= self._exact:  # target-fixed: decidable
                return not self._possible(inner, enabled)
            return True
        if kind == "and":
            return all(self._possible(part, enabled) for part in expression[1:])
        return any(self._possible(part, enabled) for part in expression[1:])

    def _on(self, name: str, enabled: set[str]) -> bool:
        """Enabled for this target (host inputs that may be on start enabled), or unknown."""
        return name in enabled or (name not in self.symbols and name not in self.accelerators)

    def _closure(self, target: DeviceTarget) -> set[str]:
        enabled = {name for name, on in target.assigned.items() if on}
        # Host inputs may be on, but an accelerator only for the targets the build lists for it.
        enabled |= {name for name in self._external
                    if name not in self.accelerators or target.name in self.accelerators[name]}
        forced_off = {name for name, on in target.assigned.items() if not on}
        # Architecture symbols first (AARCH64 selects ARM), so that `!ARM` is decided.
        enabled |= target.seeds
        exact_queue = deque(target.seeds)
        while exact_queue:
            for dependent in self._dependents.get(exact_queue.popleft(), ()):
                if dependent in self._exact and dependent not in enabled and self._turns_on(dependent, enabled):
                    enabled.add(dependent)
                    exact_queue.append(dependent)
        self._activation.close(enabled, lambda name: name not in enabled and name not in forced_off
                               and name not in self._exact, lambda expression: self._possible(expression, enabled),
                               lambda name: self._on(name, enabled))
        return enabled

    def _turns_on(self, name: str, enabled: set[str]) -> bool:
        symbol = self.symbols.get(name)
        if symbol is None or not all(self._possible(d, enabled) for d in symbol.depends):
            return False
        if any(self._on(source, enabled) and self._possible(c, enabled) for source, c in symbol.selected_by):
            return True
        if any(self._possible(condition, enabled) for condition in symbol.defaults):
            return True
        return any(self._on(source, enabled) and self._possible(c, enabled) for source, c in symbol.implied_by)

    def _config_families(self, symbol: str) -> Families:
        if not symbol.startswith("CONFIG_"):
            return None
        name = symbol[len("CONFIG_"):]
        if name in self.accelerators:
            return frozenset(arch_family(target.split("-")[0]) for target in self.accelerators[name])
        if name not in self.symbols or name in self._external:
            return None
        return frozenset(t.family for t in self.targets if name in self.enabled[t.name])

    def _provenance(self, symbol: str) -> str:
        """Why the symbol is on where it is: its selectors, impliers, defaults, device configs."""
        name = symbol[len("CONFIG_"):]
        if name in self.accelerators:
            return f" (an accelerator the build offers for {summarize_names(sorted(self.accelerators[name]))})"
        info = self.symbols.get(name)
        if info is None:
            return ""
        selected, implied, defaults, files = set(), set(), [], []
        for target in self.targets:
            enabled = self.enabled[target.name]
            if name not in enabled:
                continue
            if target.assigned.get(name):
                files.append(target.config_file)
            selected |= {s for s, c in info.selected_by if self._on(s, enabled) and self._possible(c, enabled)}
            implied |= {s for s, c in info.implied_by if self._on(s, enabled) and self._possible(c, enabled)}
            if any(self._possible(c, enabled) for c in info.defaults):
                defaults.append(target.name)
        parts = []
        if selected:
            parts.append("selected by " + summarize_names(sorted(selected)))
        if implied:
            parts.append("implied by " + summarize_names(sorted(implied)))
        if defaults:
            parts.append("default y")
        if files:
            parts.append("set in " + summarize_names(sorted(set(files)), 2))
        return f" ({'; '.join(parts)})" if parts else ""


def device_config_files(root: Path) -> list[tuple[str, str]]:
    """(system target, root-relative device config) of the newest layout the tree has."""
    layouts = (("configs/devices", "{}/default.mak"), ("default-configs/devices", "{}.mak"),
               ("default-configs", "{}.mak"))
    for folder, pattern in layouts:
        try:
            entries = sorted(os.listdir(root / folder))
        except OSError:
            continue
        names = [entry.removesuffix(".mak") for entry in entries]
        found = [(name, f"{folder}/{pattern.format(name)}") for name in names if name.endswith("-softmmu")]
        found = [(name, path) for name, path in found if (root / path).is_file()]
        if found:
            return found
    return []


def read_target_config(root: Path, path: Path) -> dict[str, str]:
    """KEY=value lines of configs/targets/<target>.mak."""
    values = {}
    for line in read_text(root, path).splitlines():
        key, equals, value = line.partition("=")
        if equals and re.fullmatch(r"\w+", key.strip()):
            values[key.strip()] = value.strip()
    return values
