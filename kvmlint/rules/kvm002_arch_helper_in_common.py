"""## What it does
Reports a helper defined or declared in the common KVM layer (the KVM header,
the KVM core source and its stub file, found from the code: the header defines
`kvm_irqchip_in_kernel()`, the core defines most of its functions, the stubs
define the no-KVM versions) whose callers all lie in one architecture's code
AND whose concept belongs to that architecture, by any of:
- its name: a concept (`irq0_override`, `xsave`, `pit`, ...) or a machine
  (`pc`) of that architecture in the model's vocabulary;
- the `KVM_CAP_*` capabilities its body tests, or that set the flag it
  returns where the KVM state is initialised (`s->flag = kvm_check_extension(s,
  KVM_CAP_X86_...)` in `kvm_init()`), by the bundled KVM API table;
- every caller being that architecture's device or board code (not its CPU
  code), unless the name is a concept every architecture has (GSI routing,
  MSI, vcpu events, ...).
The evidence is in the message.  A device file with `kvm` in its name (an
in-kernel interrupt controller's glue) is not the KVM layer.

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
the includes and forward declarations its types need.  The move keeps the
return type: a predicate that returns `int` is KVM004 (`int-predicate`),
whose retype follows the move as a change set of its own, safe or unsafe as
KVM004 says (so one `kvmlint fix` does what QEMU's own move did).
The alias `irq0-override` selects just `kvm_allows_irq0_override`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from kvmlint.findings import Finding, Fix
from kvmlint.model.machines import machine_arch
from kvmlint.model.vocabulary import capability_arches, concept_arch, names_generic_concept
from kvmlint.prose import arch_name, article
from kvmlint.scope import ARCH_FAMILIES, arch_family
from kvmlint.scope.build import TARGET_INDEPENDENT
from kvmlint.scope.families import path_convention

CODE = "KVM002"
NAME = "arch-helper-in-common"
SUMMARY = "a helper of one architecture is defined or declared in the common KVM files"
FIXABLE = True
ALIASES = {"irq0-override": ("kvm_allows_irq0_override",)}

HELPER_KINDS = ("function", "prototype", "macro")
FUNCTION_LIKE_MACRO = re.compile(r"#\s*define\s+\w+\(")
CAPABILITY = re.compile(r"\bKVM_CAP_\w+")


def is_helper(name: str, definition) -> bool:
    """QEMU's helpers are lower-case functions or function-like macros; upper-case
    KVM_* names are the kernel's ABI constants (imported kernel headers)."""
    if name != name.lower():
        return False
    return definition.kind != "macro" or FUNCTION_LIKE_MACRO.match(definition.text) is not None


def is_common_kvm_file(analysis, path: str) -> bool:
    """The KVM core, its header and its stubs, as found in the tree (kvmlint/index/kvm_layer.py)."""
    return path in analysis.kvm_layer


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
        callers = _callers(analysis, name, located)
        if callers is None:
            continue
        arch, caller_paths = callers
        reason = _concept_reason(analysis, name, located, arch, caller_paths)
        if reason is None:
            continue
        yield _finding(analysis, name, arch, reason, in_common)


def _callers(analysis, name: str, definitions) -> tuple[str, set[str]] | None:
    """The one architecture whose code calls `name`, if all callers agree, and the calling files."""
    own = {(d.path, d.item.span.start_byte, d.item.span.end_byte) for d in definitions}
    # A file with its own static definition calls that one, not the common helper.
    own_static = {d.path for d in definitions if "static" in d.item.storage}
    arches: set[str] = set()
    paths: set[str] = set()
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
        paths.add(use.path)
    return (next(iter(arches)), paths) if paths and len(arches) == 1 else None


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


def _concept_reason(analysis, name: str, definitions, arch: str, caller_paths: set[str]) -> str | None:
    """Why the helper's concept is `arch`'s: its name (a concept or a machine of
    `arch` in the model's vocabulary), the capabilities its body tests or its
    flag is set from, or callers that are all `arch`'s device code (unless the
    name is a concept every architecture has: GSI routing, MSI, vcpu events)."""
    if concept_arch(name) == arch:
        return f"its name refers to {article(arch)} {arch_name(arch)} concept"
    machine = next((word for word in name.lower().split("_") if machine_arch(word) == arch), None)
    if machine is not None:
        return f"its name is for the {machine!r} machine, which only {arch_name(arch)} has"
    capabilities = {cap for d in definitions for cap in d.item.capabilities}
    if capabilities and _all_of(capabilities, arch):
        return f"it tests {', '.join(sorted(capabilities))}, which only {arch} has"
    flag = _capability_flag(analysis, definitions, arch)
    if flag is not None:
        return flag
    functions = all(d.item.kind != "macro" for d in definitions)  # a macro is the layer's own shorthand
    if functions and not names_generic_concept(name) and all(_is_device_code(analysis, p) for p in caller_paths):
        return f"every caller is {arch} device code ({', '.join(sorted(caller_paths))})"
    return None


def _all_of(capabilities, arch: str) -> bool:
    return all(_capability_arches(cap) == frozenset({arch}) for cap in capabilities)


def _capability_arches(capability: str) -> frozenset[str] | None:
    """By the capability table; a capability the table lacks, by its name (KVM_CAP_X86_*, KVM_CAP_S390_*)."""
    arches = capability_arches(capability)
    if arches is None and concept_arch(capability.removeprefix("KVM_CAP_")):
        arches = frozenset({concept_arch(capability.removeprefix("KVM_CAP_"))})
    return arches


def _capability_flag(analysis, definitions, arch: str) -> str | None:
    """The helper returns a state member that the KVM layer sets from `arch`-only capabilities."""
    fields = {field for d in definitions if d.item.kind == "function" for field in d.item.fields}
    if not fields:
        return None
    for path in sorted(analysis.kvm_layer):
        facts = analysis.facts.get(path)
        for assignment in facts.capability_assignments if facts else ():
            capabilities = set(CAPABILITY.findall(assignment.value))
            if assignment.name in fields and capabilities and _all_of(capabilities, arch):
                where = f" in {assignment.function}()" if assignment.function else ""
                return (
                    f"it reads the flag {assignment.name}, set from {', '.join(sorted(capabilities))}{where} "
                    f"({path}:{assignment.span.line}), which only {arch} has"
                )
    return None


def _is_device_code(analysis, path: str) -> bool:
    """Board and device code of one architecture, not its CPU (target) code."""
    convention = path_convention(path, analysis.scope_resolver.known_families)
    return convention is None or not convention[1].startswith("target")


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


def _finding(analysis, name: str, arch: str, reason: str, in_common) -> Finding:
    first = min(in_common, key=lambda d: (not d.path.endswith(".c"), d.path, d.item.span.line))
    span = first.item.span
    places = ", ".join(sorted({d.path for d in in_common}))
    blocked = _movable(analysis, in_common)
    stranded = _callers_that_cannot_follow(analysis, name, arch, analysis.index.definitions_of(name))
    message = f"{name}() is {arch}-specific but lives in common KVM files: move it into the {arch} target"
    details = (f"{arch}-specific: {reason}; only {arch} code calls it", f"common KVM files: {places}")
    fix = None
    if blocked:
        message += " by hand"
        details += (f"not moved automatically: {blocked}",)
    elif stranded:
        message = (f"{name}() is {arch}-specific but lives in common KVM files; no move offered: "
                   f"a caller cannot include the {arch} target header")
        details += (
            f"no move offered: {stranded}",
            "options: keep the declaration where that caller sees it, or have the caller ask through "
            "a target-independent hook or flag, then move the helper",
        )
    else:
        # A prototype alone may name types the target header cannot see yet.
        whole = any(d.item.kind == "function" for d in in_common)
        fix = Fix(
            "safe" if whole else "unsafe",
            f"move {name}() into the {arch} target" if whole else f"move the prototype of {name}() into the {arch} target header (its types may need includes there)",
            (("symbol", name), ("arch", arch), ("reason", reason)),
            unsafe_reason="" if whole else "only a prototype is in common files: the types it names may need includes in the target header",
        )
    return Finding(
        CODE, NAME, first.path, span.line, span.column, span.end_line, span.end_column, message,
        function=name, symbol=name, arch=arch, confidence="high", fix=fix, details=details,
    )
