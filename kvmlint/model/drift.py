"""Model drift: compare the bundled model with the flag setters of a real tree.

Current QEMU states the model's facts in code (`kvm_async_interrupts_allowed = true;` in
target/arm/kvm.c kvm_arch_init, ...).  For every setter, the function it sits in says when it
runs (predicates.toml [[setter_contexts]]); the model must agree:

- a setter that runs on every configuration with a value that always holds: the predicate is
  true on all of them;
- any other setter of a value that can hold: the predicate is true on at least one
  configuration where the setter can run with that value;
- a setter of a value that never holds (an override to false): the predicate is false somewhere;
- every setter runs in at least one configuration of the model;
- a predicate the model makes true somewhere on an arch: some setter reaches that arch.

A disagreement that data/drift.toml lists in [[era_differences]] is reported with its reason: it is a deliberate difference between eras, not an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from kvmlint.model.semantics import Configuration, Model
from kvmlint.model.vocabulary import load_toml
from kvmlint.terminal import for_terminal

# a capability probe in a setter's value reads as the capability fact itself
_PROBE = re.compile(r"\b(?:kvm_vm_check_extension|kvm_check_extension)\s*\([^,()]*,\s*(KVM_CAP_\w+)\s*\)(?:\s*>\s*0)?")


@dataclass(frozen=True)
class Drift:
    arch: str
    predicate: str
    flag: str
    message: str
    path: str | None = None
    line: int | None = None
    function: str | None = None
    era_difference: str | None = None  # the data's reason when this is a deliberate era difference


@dataclass(frozen=True)
class _Setter:
    flag: str
    value: str
    path: str
    line: int
    function: str | None
    context: dict


def _context(function: str | None) -> dict:
    for context in load_toml("predicates.toml")["setter_contexts"]:
        if any(fnmatchcase(function or "", glob) for glob in context["functions"]):
            return context
    raise AssertionError("the last setter context matches everything")


def _holds(model: Model, arch: str, text: str, config: Configuration):
    """True/False, or None when the tree's text leaves it open (a free symbol)."""
    value = model.evaluate(arch, _PROBE.sub(r"\1", text), config, formula=True, free_names=True)
    return None if not isinstance(value, (bool, int)) else bool(value)


def verify(model: Model, assignments) -> list[Drift]:
    """Disagreements between the model and `(arch, flag, value, path, line, function)` setters."""
    aliases = load_toml("predicates.toml")["arch_aliases"]
    setters: dict[tuple[str, str], list[_Setter]] = {}
    for arch, flag, value, path, line, function in assignments:
        arch = aliases.get(arch, arch)
        context = _context(function)
        if flag not in model.flags or context.get("skip"):
            continue
        targets = model.arches if arch == "common" else (arch,) if arch in model.arches else ()
        for target in targets:
            if context.get("common_create") and not model.common_irqchip_create(target):
                continue
            setters.setdefault((target, model.flags[flag]), []).append(
                _Setter(flag, value, path, line, function, context))
    drifts = []
    for arch in model.arches:
        configs = model.configurations(arch)
        for predicate, info in model.predicates.items():
            flag = info.flags.get(model.era)
            if not flag or model.formula(arch, predicate) is None:
                continue
            found = setters.get((arch, predicate), [])
            drifts += [d for s in found if (d := _check(model, arch, predicate, s, configs))]
            drifts += _unset(model, arch, predicate, flag, found, configs)
    return _with_era_reasons(model, drifts)


def _check(model: Model, arch: str, predicate: str, setter: _Setter, configs) -> Drift | None:
    runs = [c for c in configs if _holds(model, arch, setter.context["when"], c)]
    values = {c: _holds(model, arch, setter.value, c) for c in runs}
    truth = {c: model.predicate(arch, predicate, c) for c in runs}
    where = f"{setter.function or 'file scope'}() sets {setter.flag} = {setter.value}"
    problem = None
    if not runs:
        problem = f"{where}; the model has no configuration of {arch} where that runs"
    elif setter.context.get("always") and runs and all(values[c] for c in runs):
        wrong = [c for c in runs if not truth[c]]
        if wrong:
            problem = f"{where} on every configuration; the model has {predicate} false on {wrong[0].label}"
    elif any(values[c] is not False for c in runs):
        if not any(truth[c] for c in runs if values[c] is not False):
            problem = f"{where}; the model never has {predicate} true where that runs"
    elif runs and all(truth[c] for c in runs):
        problem = f"{where}; the model never has {predicate} false where that runs"
    if problem is None:
        return None
    return Drift(arch, predicate, setter.flag, problem, setter.path, setter.line, setter.function)


def _unset(model: Model, arch: str, predicate: str, flag: str, found, configs) -> list[Drift]:
    if any(s.value.strip() != "false" for s in found):
        return []
    true_on = [c for c in configs if model.predicate(arch, predicate, c)]
    if not true_on:
        return []
    return [Drift(arch, predicate, flag,
                  f"the model has {predicate} true on {true_on[0].label}, but the tree never sets {flag} for {arch}")]


def _with_era_reasons(model: Model, drifts: list[Drift]) -> list[Drift]:
    reasons = {
        (entry["arch"], entry["predicate"]): entry["reason"]
        for entry in load_toml("drift.toml").get("era_differences", [])
        if entry["era"] == model.era
    }
    return [
        Drift(**{**d.__dict__, "era_difference": reasons.get((d.arch, d.predicate))}) for d in drifts
    ]


def format_drift(drifts: list[Drift]) -> str:
    if not drifts:
        return "no drift: the model agrees with the tree's setters\n"
    lines = []
    for drift in drifts:
        where = f"{for_terminal(drift.path)}:{drift.line}: " if drift.path else ""
        line = f"{where}{drift.arch}: {for_terminal(drift.message)}"
        if drift.era_difference:
            line += f"\n    era difference: {drift.era_difference}"
        lines.append(line)
    unexplained = sum(1 for d in drifts if not d.era_difference)
    lines.append(f"{len(drifts)} disagreement(s), {unexplained} not explained by an era difference")
    return "\n".join(lines) + "\n"
