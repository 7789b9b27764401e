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
reads private state is reported without a fix.  So is a helper with a caller
that could not include the target's header: one compiled once for every
target (`common-obj-y`, meson's `system_ss`), or built for other targets too
(common code calling it under `#ifdef TARGET_<ARCH>`); the message names that
caller.  A moved prototype takes its doc comment, and the target header gets
the includes and forward declarations its types need.  A return-type
correction (`int` to `bool` for a predicate) is offered only as its own,
unsafe change, also after an earlier run moved the helper.
The alias `irq0-override` selects just `kvm_allows_irq0_override`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from kvmlint.findings import Finding, Fix
from kvmlint.model.vocabulary import capability_arches, concept_arch
from kvmlint.scope import ARCH_FAMILIES, arch_family
from kvmlint.scope.build import TARGET_INDEPENDENT

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


PREDICATE_NAME = re.compile(r"^kvm_(allows|has|is|can)_|_(enabled|allowed|in_kernel)$")
BOOLEAN_RETURN = re.compile(r"return\s+(?:[01]|true|false|!|[^;]*(?:\|\||&&|==|!=|[<>]=?))")


def returns_int_truth_value(name: str, definition_text: str) -> bool:
    """A predicate by name that returns `int` although every return is a truth value."""
    returns = re.findall(r"return\b[^;]*;", definition_text)
    return bool(
        PREDICATE_NAME.search(name) and definition_text.startswith("int ") and returns
        and all(BOOLEAN_RETURN.match(r) for r in returns)
    )


def check(analysis, symbols=None) -> Iterator[Finding]:
    for name, located in sorted(analysis.index.definitions.items()):
        if symbols is not None and name not in symbols:
            continue
        moved = _moved_int_predicate(analysis, name, located)
        if moved is not None:
            yield moved
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
        return f"its name is an {arch} concept in the model's vocabulary"
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


def _callers_that_cannot_follow(analysis, name: str, arch: str, definitions) -> str | None:
    """Why a caller could not include the target's header after a move, or None.

    A moved prototype lives in a target header, found only on a per-target
    unit's include path, and only for that target: a caller compiled once for
    every target, or for other targets too (even under `#ifdef TARGET_<ARCH>`),
    cannot include it.
    """
    own = {(d.path, d.item.span.start_byte, d.item.span.end_byte) for d in definitions}
    own_static = {d.path for d in definitions if "static" in d.item.storage}
    for use in analysis.index.callers_of(name):
        ref = use.item
        if ref.function == name or ref.macro == name or _inside(ref, use.path, own) or use.path in own_static:
            continue
        scope = analysis.scope(use.path)
        if scope.unit == TARGET_INDEPENDENT:
            return (f"{use.path} calls it and is compiled once for every target ({scope.unit_reason}), "
                    f"with no target folder on its include path")
        if scope.common or scope.arches != {arch}:
            guard = next((c.strip() for c in reversed(ref.preprocessor) if TARGET_GUARD.match(c.strip())), None)
            where = "" if guard is None else f" under #ifdef {guard}" if guard.isidentifier() else f" under #if {guard}"
            return (f"{use.path} calls it{where} but is built for other targets too ({scope.label}), "
                    f"where the {arch} target header is not on the include path")
    return None


def _moved_int_predicate(analysis, name: str, located) -> Finding | None:
    """A helper of this rule already in its target (an earlier fix moved it) that still returns
    int: the move's return-type follow-up, offered on its own (unsafe)."""
    if any(is_common_kvm_file(analysis, d.path) for d in located):
        return None
    functions = [d for d in located if d.item.kind == "function" and "stub" not in d.path and "static" not in d.item.storage]
    if len(functions) != 1 or not returns_int_truth_value(name, functions[0].item.text):
        return None
    definition = functions[0]
    scope = analysis.scope(definition.path)
    if scope.common or len(scope.arches) != 1 or "kvm" not in definition.path.rsplit("/", 1)[-1].lower():
        return None
    arch = next(iter(scope.arches))
    if _concept_reason(name, located, arch) is None:
        return None
    span = definition.item.span
    return Finding(
        CODE, NAME, definition.path, span.line, span.column, span.end_line, span.end_column,
        f"{name}() is an {arch} predicate in its target's KVM source but returns int: make it return bool",
        function=name, symbol=name, arch=arch, confidence="medium",
        fix=Fix("unsafe", f"make {name}() return bool", (("symbol", name), ("arch", arch), ("retype", True))),
    )


def _finding(analysis, name: str, arch: str, reason: str, in_common) -> Finding:
    first = min(in_common, key=lambda d: (not d.path.endswith(".c"), d.path, d.item.span.line))
    span = first.item.span
    places = ", ".join(sorted({d.path for d in in_common}))
    blocked = _movable(analysis, in_common)
    stranded = _callers_that_cannot_follow(analysis, name, arch, analysis.index.definitions_of(name))
    message = f"{name}() is {arch}-specific ({reason}; only {arch} code calls it) but lives in common KVM files ({places})"
    fix = None
    if blocked:
        message += f"; move it by hand: {blocked}"
    elif stranded:
        message += (
            f"; no move offered: {stranded}.  Options: keep the declaration where that caller sees it, "
            f"or have the caller ask through a target-independent hook or flag, then move the helper"
        )
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
        function=name, symbol=name, arch=arch, confidence="high", fix=fix,
    )
