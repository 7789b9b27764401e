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
from dataclasses import dataclass, field
from pathlib import Path

from .build import BoundWarnings, ConfigSpace, read_text, summarize_names, visit_key
from .families import Families, arch_family
from .makefiles import read_make_config
from .meson import read_accelerator_targets

Expr = tuple  # ("sym", name) | ("not", e) | ("and", a, b) | ("or", a, b)

_TOKEN = re.compile(r"\|\||&&|!|\(|\)|\w+")
# A longer expression is not read: reading it and every use of it recurse once per operator or
# parenthesis, and QEMU's longest are a dozen tokens.
MAX_EXPRESSION_TOKENS = 200


def parse_expression(text: str) -> Expr | None:
    """A Kconfig boolean expression, or None when it cannot be read."""
    tokens = _TOKEN.findall(text)
    if len(tokens) > MAX_EXPRESSION_TOKENS or "".join(tokens) != re.sub(r"\s+", "", text):
        return None
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        position += 1
        return tokens[position - 1]

    def disjunction() -> Expr:
        left = conjunction()
        while peek() == "||":
            take()
            left = ("or", left, conjunction())
        return left

    def conjunction() -> Expr:
        left = unary()
        while peek() == "&&":
            take()
            left = ("and", left, unary())
        return left

    def unary() -> Expr:
        token = take() if peek() is not None else None
        if token == "!":
            return ("not", unary())
        if token == "(":
            inner = disjunction()
            if take() != ")":
                raise ValueError("unbalanced parenthesis")
            return inner
        if token is None or not re.fullmatch(r"\w+", token):
            raise ValueError(f"unexpected {token!r}")
        return ("sym", token)

    try:
        expression = disjunction()
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


def parse_kconfig(text: str, kconfig_file: str, symbols: dict[str, KconfigSymbol]) -> list[str]:
    """Add one Kconfig file's clauses to `symbols`; return the files it sources."""
    sourced: list[str] = []
    current: KconfigSymbol | None = None

    def symbol(name: str) -> KconfigSymbol:
        return symbols.setdefault(name, KconfigSymbol(name))

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
            current.depends.append(parse_expression(rest[3:]))
        elif keyword == "default":
            value, _, condition = rest.partition(" if ")
            if value.strip() == "y":
                current.defaults.append(parse_expression(condition) if condition else None)
        elif keyword in ("select", "imply"):
            target, _, condition = rest.partition(" if ")
            if re.fullmatch(r"\w+", target.strip()):
                clause = (current.name, parse_expression(condition) if condition else None)
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
    symbols: dict[str, KconfigSymbol] = {}
    pending: list[tuple[str, str | None]] = [(name, None) for name in reversed(KCONFIG_ROOTS) if (root / name).is_file()]
    read: dict[str, str] = {}  # real path -> the name it was read under
    while pending:
        relpath, sourced_by = pending.pop()
        relpath = os.path.normpath(relpath)
        key = visit_key(root / relpath)
        if key in read:
            if read[key] != relpath and sourced_by is not None and warnings is not None:
                warnings.add(sourced_by, f"{relpath} leads back to {read[key]} "
                                         f"through a symlink (a loop?); not read again")
            continue
        read[key] = relpath
        folder = os.path.dirname(relpath)
        for sourced in parse_kconfig(read_text(root / relpath), relpath.replace(os.sep, "/"), symbols):
            pending.append((os.path.join(folder, sourced), relpath))
    return symbols


@dataclass
class DeviceTarget:
    name: str  # "aarch64-softmmu"
    family: str
    assigned: dict[str, bool]  # CONFIG_ prefix stripped
    seeds: set[str]  # CONFIG_<TARGET_ARCH> and TARGET_* keys that are Kconfig symbols
    config_file: str


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
        self.enabled = {target.name: self._closure(target) for target in self.targets}

    def _read_targets(self, root: Path, warnings: BoundWarnings | None) -> list[DeviceTarget]:
        targets = []
        for name, config_file in device_config_files(root):
            target_keys: dict[str, str] = {}
            for folder in ("configs/targets", "default-configs/targets"):
                target_keys = target_keys or read_target_config(root / folder / f"{name}.mak")
            arch = target_keys.get("TARGET_ARCH", name.split("-")[0])
            seeds = {arch.upper()} | {key for key, value in target_keys.items()
                                      if value == "y" and key in self.symbols}
            assigned = {symbol[len("CONFIG_"):]: value not in ("n", "")
                        for symbol, value in read_make_config(root / config_file, warnings=warnings).items()}
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
            return self._possible(expression[1], enabled) and self._possible(expression[2], enabled)
        return self._possible(expression[1], enabled) or self._possible(expression[2], enabled)

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
        queue = deque(self.symbols)
        while queue:
            name = queue.popleft()
            if name in enabled or name in forced_off or name in self._exact:
                continue
            if self._turns_on(name, enabled):
                enabled.add(name)
                queue.extend(self._dependents.get(name, ()))
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


def read_target_config(path: Path) -> dict[str, str]:
    """KEY=value lines of configs/targets/<target>.mak."""
    values = {}
    for line in read_text(path).splitlines():
        key, equals, value = line.partition("=")
        if equals and re.fullmatch(r"\w+", key.strip()):
            values[key.strip()] = value.strip()
    return values
