"""## What it does
Checks every literal `kernel_irqchip=V` / `kernel-irqchip=V` setting in a
`-machine`/`-M` or `-accel kvm,...` argument against the model of the target
it runs on: in QEMU's Python tests (tests/functional, tests/avocado, scripts;
read with libcst: `add_args()` with separate or joined arguments,
`set_machine()`, list and tuple literals, concatenations and f-strings whose
setting is constant) and in C string literals (qtests' command lines, machine
code).  A setting the target does not accept is reported with the model's
reason and the values that target accepts.

The target comes from, nearest first: the test's folder
(`tests/functional/<target>/`), the machine type in the same `-machine` list,
then the function, class and file around it (`set_machine()`, other
`-machine` arguments, `qemu-system-<target>`, avocado `arch:` tags, an `arch`
attribute); in C from the file's scope, the machine type, or the qtest's own
`qtest_get_arch()` checks.  Machine types map to a target through the model's
machines.toml; `virt` alone says nothing.  Unknown or ambiguous target: no
finding.

## Why is this bad?
`kernel_irqchip` is one option whose meaning and accepted values are
architecture specific.  `split` (LAPIC in the kernel, IOAPIC/PIC/PIT in
userspace) is an x86 concept: ARM, pseries, s390x and LoongArch reject it when
the machine starts, so a test that asks for it fails, or is skipped and
silently tests nothing.

## Example
```python
# tests/functional/aarch64/test_virt_kvm.py
self.vm.add_args('-machine', 'virt,kernel_irqchip=split')
```
Use instead:
```python
self.vm.add_args('-machine', 'virt,kernel_irqchip=on')
```

## Fix safety
A fix is offered only where the model leaves a single right value (the target
accepts exactly one); it rewrites the value alone, Python through libcst with
formatting and comments kept, C through the edit engine.  Otherwise choosing
between the accepted values changes what the test tests: a person decides.
"""

from __future__ import annotations

from collections.abc import Iterator

from kvmlint.findings import Finding, Fix
from kvmlint.source.cmdline import find_settings
from kvmlint.source.discover import is_python_file

CODE = "KVM006"
NAME = "kernel-irqchip-option"
SUMMARY = "a kernel_irqchip/kernel-irqchip value the target's model does not accept"
FIXABLE = True
ALIASES: dict[str, tuple[str, ...]] = {}

ALL_VALUES = ("on", "off", "split")


def check(analysis, symbols=None) -> Iterator[Finding]:
    for path, facts in analysis.facts.items():
        if is_python_file(path):
            for option in facts.irqchip_options:
                target = _python_target(option.hints, analysis)
                if target is not None:
                    yield from _judge(analysis, path, option.span, option.value, option.spelling, *target)
        elif facts.strings:
            yield from _check_c(analysis, path, facts.strings, facts.arch_branches)


def _family(kind: str, name: str, known: frozenset[str]) -> str | None:
    from kvmlint.model import machine_arch
    from kvmlint.scope import arch_family

    if kind == "machine":
        return machine_arch(name)
    family = arch_family(name)
    return family if family in known else None  # tests/functional/generic/ is no target


def _python_target(hints, analysis) -> tuple[str, str] | None:
    """(family, where it came from) from the nearest rank of hints that names any; None if that rank disagrees."""
    known = analysis.scope_resolver.known_families
    for rank in sorted({hint.rank for hint in hints}):
        named = {}
        for hint in hints:
            family = _family(hint.kind, hint.name, known) if hint.rank == rank else None
            if family is not None:
                named.setdefault(family, hint.origin)
        if len(named) == 1:
            return next(iter(named.items()))
        if named:
            return None  # e.g. q35 and pseries in one function: the test is not one target's
    return None


def _check_c(analysis, path: str, strings, arch_branches) -> Iterator[Finding]:
    from kvmlint.model import machine_arch

    scope = analysis.scope(path)
    scope_families = scope.arches & set(analysis.model.arches)
    for literal in strings:
        for setting in find_settings(literal.text):
            machine = setting.machine(setting.context)
            if not scope.common and len(scope_families) == 1:
                target = (next(iter(scope_families)), scope.reason)
            elif not scope.common:
                continue  # built for several targets; none alone decides
            elif machine and machine_arch(machine):
                target = (machine_arch(machine), f"-machine {machine}")
            else:
                target = _qtest_target(analysis, arch_branches, literal)
                if target is None:
                    continue
            yield from _judge(analysis, path, _value_span(literal, setting), setting.value, setting.spelling,
                              *target, function=literal.function)


def _targets_for(branches, start_byte: int, function: str | None) -> frozenset[str]:
    """Targets of the branches that hold the string, else of those that register its function."""
    inside = [b for b in branches if b.start_byte <= start_byte < b.end_byte]
    if inside:
        return frozenset.intersection(*(b.targets for b in inside))
    registering = [b for b in branches if function is not None and function in b.names]
    return frozenset().union(*(b.targets for b in registering))


def _qtest_target(analysis, branches, literal) -> tuple[str, str] | None:
    known = analysis.scope_resolver.known_families
    targets = _targets_for(branches, literal.span.start_byte, literal.function)
    families = {_family("target", target, known) for target in targets} - {None}
    if len(families) != 1:
        return None
    return next(iter(families)), f"qtest_get_arch() is {' or '.join(sorted(targets))}"


def _value_span(literal, setting):
    """The value's own span, inside the literal (which starts with its quote)."""
    from kvmlint.source.facts import Span

    span = literal.span
    start = span.start_byte + 1 + len(literal.text[: setting.start].encode())
    end = start + len(setting.value.encode())
    column = span.column + (start - span.start_byte)
    return Span(start, end, span.line, column, span.line, column + (end - start))


def _judge(analysis, path, span, value, spelling, arch, origin, function=None) -> Iterator[Finding]:
    model = analysis.model
    if arch not in model.arches:
        return  # no KVM, or the era's model does not know the target
    settings = model.valid_irqchip_settings(arch)
    if value in settings.values:
        return
    reason = settings.rejected.get(value) or f"'{value}' is not a {spelling} value ({', '.join(ALL_VALUES)})"
    accepted = ", ".join(settings.values)
    message = (
        f"{spelling}={value} is not supported on {arch}: {reason.rstrip('.')}; "
        f"{arch} accepts: {accepted} (target: {origin})"
    )
    replacement = settings.values[0] if len(settings.values) == 1 else None
    fix = None
    if replacement is not None:
        fix = Fix("safe", f"use {spelling}={replacement}",
                  (("value", value), ("replacement", replacement), ("start_byte", span.start_byte)))
    yield Finding(
        CODE, NAME, path, span.line, span.column, span.end_line, span.end_column, message,
        function=function, symbol=spelling, replacement=replacement, arch=arch, fix=fix,
        evidence=(f"target: {arch} ({origin})", f"model ({model.era}): {arch} accepts {accepted}"),
    )
