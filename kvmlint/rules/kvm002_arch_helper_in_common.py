"""## What it does
Reports a helper defined or declared in the common KVM files (the KVM core
source, its header, its stub file) whose callers all lie in one
architecture's code AND whose concept belongs to that architecture, by the
model's vocabulary (`irq0_override`, `xsave`, `pit`, ...) or by the
`KVM_CAP_*` capabilities its body tests.

## Why is this bad?
Common KVM files are shared by every architecture.  A helper whose meaning
only exists on one of them (IRQ0 override is an x86 board property) has no
documented meaning anywhere else, invites common code to call it, and keeps
an architecture's concept in the wrong place.  It belongs in that target's
KVM source, with its prototype in the target's KVM header (`kvm_i386.h`,
in line with `kvm_ppc.h`) and its stub in the target's stub file.

A helper that only one architecture calls today but whose concept is
generic (GSI routing, vcpu events, MSI) is not reported.

## Example
```c
/* kvm-all.c */
int kvm_allows_irq0_override(void)
{
    return !kvm_irqchip_in_kernel() || kvm_has_gsi_routing();
}
```
Move it to `target-i386/kvm.c`, its prototype to `target-i386/kvm_i386.h`,
and its stub from `kvm-stub.c` to `target-i386/kvm-stub.c` (built when KVM
is not).

## Fix safety
The move is safe when the helper's body uses nothing private to the common
file (no file-static names, no members of a struct defined there): the
definition moves unchanged, the stub moves with its build-file line, every
caller gets the include it needs, and the common copies go.  A helper that
reads private state is reported without a fix.  A return-type correction
(`int` to `bool` for a predicate) is offered only as its own, unsafe change.
The alias `irq0-override` selects just `kvm_allows_irq0_override`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from kvmlint.findings import Finding, Fix
from kvmlint.model.vocabulary import capability_arches, concept_arch
from kvmlint.prose import arch_name, article
from kvmlint.scope import ARCH_FAMILIES, arch_family

CODE = "KVM002"
NAME = "arch-helper-in-common"
SUMMARY = "a helper of one architecture is defined or declared in the common KVM files"
FIXABLE = True
ALIASES = {"irq0-override": ("kvm_allows_irq0_override",)}

HELPER_KINDS = ("function", "prototype", "macro")
FUNCTION_LIKE_MACRO = re.compile(r"#\s*define\s+\w+\(")


def is_helper(name: str, definition) -> bool:
    """QEMU's helpers are lower-case functions or function-like macros; upper-case
    KVM_* names are the kernel's ABI constants (imported kernel headers)."""
    if name != name.lower():
        return False
    return definition.kind != "macro" or FUNCTION_LIKE_MACRO.match(definition.text) is not None


def is_common_kvm_file(analysis, path: str) -> bool:
    """The KVM core, its header and its stubs: common code named for KVM."""
    return "kvm" in path.rsplit("/", 1)[-1].lower() and analysis.scope(path).common


def check(analysis, symbols=None) -> Iterator[Finding]:
    for name, located in sorted(analysis.index.definitions.items()):
        if symbols is not None and name not in symbols:
            continue
        in_common = [
            d for d in located
            if d.item.kind in HELPER_KINDS
            and "static" not in d.item.storage
            and is_helper(name, d.item)
            and is_common_kvm_file(analysis, d.path)
        ]
        if not in_common:
            continue
        arch = _caller_arch(analysis, name, located)
        if arch is None:
            continue
        reason = _concept_reason(name, located, arch)
        if reason is None:
            continue
        yield _finding(analysis, name, arch, reason, in_common)


def _caller_arch(analysis, name: str, definitions) -> str | None:
    """The one architecture whose code calls `name`, if all callers agree."""
    own = {(d.path, d.item.span.start_byte, d.item.span.end_byte) for d in definitions}
    # A file with its own static definition calls that one, not the common helper.
    own_static = {d.path for d in definitions if "static" in d.item.storage}
    arches: set[str] = set()
    callers = 0
    for use in analysis.index.callers_of(name):
        ref = use.item
        if ref.function == name or ref.macro == name or _inside(ref, use.path, own) or use.path in own_static:
            continue  # the helper's own definitions and stubs
        guarded = _target_guard(ref.preprocessor)
        scope = analysis.scope(use.path)
        if guarded is not None:
            arches.add(guarded)  # `#ifdef TARGET_I386` in common code is that target's code
        elif scope.common:
            return None
        else:
            arches |= scope.arches
        callers += 1
    return next(iter(arches)) if callers and len(arches) == 1 else None


TARGET_GUARD = re.compile(r"^(?:defined\s*\(?\s*)?TARGET_(\w+?)\)?$")


def _target_guard(conditions: tuple[str, ...]) -> str | None:
    """The architecture an enclosing `#ifdef TARGET_<ARCH>` confines a use to."""
    for condition in reversed(conditions):
        match = TARGET_GUARD.match(condition.strip())
        if match:
            family = arch_family(match.group(1).lower())
            if family in ARCH_FAMILIES:
                return family
    return None


def _inside(reference, path: str, spans) -> bool:
    return any(p == path and start <= reference.span.start_byte < end for p, start, end in spans)


def _concept_reason(name: str, definitions, arch: str) -> str | None:
    """Why the helper's concept is `arch`'s, by the model's vocabulary or capability table."""
    if concept_arch(name) == arch:
        return f"its name refers to {article(arch)} {arch_name(arch)} concept"
    capabilities = {cap for d in definitions for cap in d.item.capabilities}
    cap_arches = [capability_arches(cap) for cap in sorted(capabilities)]
    if capabilities and all(arches == frozenset({arch}) for arches in cap_arches):
        return f"it tests {', '.join(sorted(capabilities))}, which only {arch} has"
    return None


def _movable(analysis, definitions) -> str | None:
    """Why the definition cannot leave its common file, or None when it can."""
    for located in definitions:
        definition = located.item
        if definition.kind != "function" or "stub" in located.path:
            continue
        private = analysis.facts[located.path].private_names
        used = sorted(set(definition.identifiers) & private)
        if used:
            return f"its body uses {', '.join(used)}, private to {located.path}"
        if definition.field_access and private:
            return f"its body reads members of a struct private to {located.path}"
    return None


def _finding(analysis, name: str, arch: str, reason: str, in_common) -> Finding:
    first = min(in_common, key=lambda d: (not d.path.endswith(".c"), d.path, d.item.span.line))
    span = first.item.span
    places = ", ".join(sorted({d.path for d in in_common}))
    blocked = _movable(analysis, in_common)
    message = f"{name}() is {arch}-specific but lives in common KVM files: move it into the {arch} target"
    details = (f"{arch}-specific: {reason}; only {arch} code calls it", f"common KVM files: {places}")
    fix = None
    if blocked:
        message += " by hand"
        details += (f"not moved automatically: {blocked}",)
    else:
        # A prototype alone may name types the target header cannot see yet.
        whole = any(d.item.kind == "function" for d in in_common)
        fix = Fix(
            "safe" if whole else "unsafe",
            f"move {name}() into the {arch} target" if whole else f"move the prototype of {name}() into the {arch} target header (its types may need includes there)",
            (("symbol", name), ("arch", arch), ("reason", reason)),
        )
    return Finding(
        CODE, NAME, first.path, span.line, span.column, span.end_line, span.end_column, message,
        function=name, symbol=name, arch=arch, confidence="high", fix=fix, details=details,
    )
