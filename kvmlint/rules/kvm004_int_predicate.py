"""## What it does
Reports a `kvm_*` helper declared in a target's KVM header (`target-i386/kvm_i386.h`,
`target/i386/kvm/kvm_i386.h`, `target/arm/kvm_arm.h`, ...) that returns `int`
although it is a predicate.  What makes it one is read from the code, not from its name:
every `return` of its definition and its stubs yields a truth value (`0`,
`1`, `true`, `false`, a `!`, `&&`, `||` or a comparison), and at least one
of them computes it.  The message says how its callers use the value.

## Why is this bad?
An `int` result tells the reader, and the compiler, that the value is a
number.  QEMU's KVM predicates return `bool` (`kvm_has_smm()`,
`kvm_enable_x2apic()`); when `kvm_allows_irq0_override()` moved into
`target-i386` in 2012 its return type was fixed on the way ("While we are
moving it, fix the return type to be 'bool' rather than 'int'").  A helper
moved by hand keeps the `int`, and so does one that `kvmlint fix` moved
(KVM002) when the retype that follows the move was unsafe and
`--unsafe-fixes` was not given.

## Example
```c
/* target-i386/kvm_i386.h */
int kvm_allows_irq0_override(void);
```
Use instead:
```c
bool kvm_allows_irq0_override(void);
```
with the same change in its definition and its stub.

## Fix safety
The fix retypes the declaration, the definition and every stub (also a
`static inline` one) to `bool`; the headers of every QEMU era already have
`bool` (from `qemu-common.h`, later `qemu/osdep.h`, which every source
includes first).  The values do not change: every return is already 0 or 1.
It is safe when every caller uses the result as a truth value (an `if`,
`while` or `?:` condition, an operand of `!`, `&&` or `||`, a comparison
with 0, an assertion, a `bool` it initialises or returns).  It is unsafe when
a caller uses it as a number: stores it (in an `int`), compares it with
another number, computes with it, passes it on as an argument or returns it
from an `int` function (the message names the first such use): the result
is the same 0 or 1, but that caller may want its own type changed too.
There is no fix when the helper's address is taken (a function pointer's
type would no longer match) or when a macro's body uses it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from kvmlint.findings import Finding, Fix
from kvmlint.scope.families import path_convention
from kvmlint.source.c_syntax import parse

CODE = "KVM004"
NAME = "int-predicate"
SUMMARY = "a predicate helper of a target's KVM header returns int rather than bool"
FIXABLE = True
ALIASES: dict[str, tuple[str, ...]] = {}

TRUTH_LITERALS = frozenset({"0", "1", "true", "false"})
TRUTH_OPERATORS = frozenset({"&&", "||", "==", "!=", "<", ">", "<=", ">="})
# How a caller that does not read the value as a truth value uses it (`Reference.result`).
NUMBER_USES = {
    "stored": "stores it",
    "number": "uses it as a number",
    "argument": "passes it on as an argument",
    "returned": "returns it from a function that does not return bool",
}


def int_return(name: str, text: str) -> bool:
    """The declaration or definition `text` of `name` says it returns `int`."""
    head = text.split("{", 1)[0]
    return re.search(rf"(?:^|\s)int\s+{re.escape(name)}\s*\(", head) is not None


def returns_truth_values(bodies: list[str]) -> bool:
    """Every return of every body yields 0 or 1, and one at least computes its truth value."""
    kinds = [_truth_value(value) for body in bodies for value in _returned(parse(body.encode()).root_node)]
    return bool(kinds) and None not in kinds and "computed" in kinds


def _returned(root) -> list:
    """The value of each return statement below `root` (None for a bare `return;`)."""
    values, stack = [], [root]
    while stack:
        node = stack.pop()
        if node.type == "return_statement":
            values.append(next((c for c in node.named_children if c.type != "comment"), None))
        stack.extend(node.children)
    return values


def _truth_value(node) -> str | None:
    """"literal" (0, 1, true, false), "computed" (`!`, `&&`, `||`, a comparison, a `?:` of
    truth values), or None when the value may be any number."""
    while node is not None and node.type == "parenthesized_expression" and node.named_child_count == 1:
        node = node.named_children[0]
    if node is None:
        return None
    operator = node.child_by_field_name("operator")
    if node.type in ("number_literal", "true", "false"):
        return "literal" if node.text.decode() in TRUTH_LITERALS else None
    if node.type == "unary_expression" and operator is not None and operator.type == "!":
        return "computed"
    if node.type == "binary_expression" and operator is not None and operator.type in TRUTH_OPERATORS:
        return "computed"
    if node.type == "conditional_expression":
        branches = [_truth_value(node.child_by_field_name(f)) for f in ("consequence", "alternative")]
        return "computed" if None not in branches else None
    return None


def in_target_kvm_header(analysis, path: str) -> bool:
    """A KVM header of one target: a `.h` with `kvm` in its name in a target folder, not the common layer."""
    if not path.endswith(".h") or "kvm" not in path.rsplit("/", 1)[-1] or path in analysis.kvm_layer:
        return False
    convention = path_convention(path, analysis.scope_resolver.known_families)
    return convention is not None and convention[1].startswith("target")


def int_predicate(name: str, located) -> bool:
    """Every declaration and definition of `name` returns int, and its bodies return truth values."""
    declared = [d for d in located if d.item.kind in ("function", "prototype")]
    bodies = [d.item.text for d in declared if d.item.kind == "function"]
    return bool(bodies) and all(int_return(name, d.item.text) for d in declared) and returns_truth_values(bodies)


def retype_safety(analysis, name: str, located) -> tuple[str | None, str]:
    """("safe" | "unsafe" | None for no fix, why): from how every use outside the helper reads it."""
    own = {(d.path, d.item.span.start_byte, d.item.span.end_byte) for d in located}
    for use in analysis.index.callers_of(name):
        ref = use.item
        if any(path == use.path and start <= ref.span.start_byte < end for path, start, end in own):
            continue
        where = f"{use.path}:{ref.span.line}"
        if ref.kind != "call":
            return None, f"{where} takes its address: a function pointer's type would no longer match"
        if ref.macro is not None and ref.result != "truth":
            return None, f"{where}: the body of the macro {ref.macro}() uses it, wherever that macro goes"
    for use in analysis.index.callers_of(name):
        ref = use.item
        if ref.result in NUMBER_USES and not any(
            path == use.path and start <= ref.span.start_byte < end for path, start, end in own
        ):
            function = f" in {ref.function}()" if ref.function else ""
            return "unsafe", f"{use.path}:{ref.span.line}{function} {NUMBER_USES[ref.result]}"
    return "safe", "every caller uses it as a truth value"


def check(analysis, symbols=None) -> Iterator[Finding]:
    for name, located in sorted(analysis.index.definitions.items()):
        if symbols is not None and name not in symbols:
            continue
        declared = [d for d in located if d.item.kind == "prototype" and in_target_kvm_header(analysis, d.path)]
        if not declared or not int_predicate(name, located):
            continue
        yield _finding(analysis, name, located, declared[0])


def _finding(analysis, name: str, located, declaration) -> Finding:
    applicability, why = retype_safety(analysis, name, located)
    places = tuple(sorted(
        (d.path, d.item.span.start_byte, d.item.span.end_byte) for d in located if d.item.kind in ("function", "prototype")
    ))
    fix = None
    description = f"make {name}() return bool in its declaration, definition and stubs"
    if applicability is not None:
        fix = Fix(applicability, description, (("symbol", name), ("places", places)),
                  unsafe_reason="" if applicability == "safe" else f"{why}, reading the value as a number")
    span = declaration.item.span
    scope = analysis.scope(declaration.path)
    arch = next(iter(scope.arches)) if not scope.common and len(scope.arches) == 1 else None
    definitions = sorted({d.path for d in located if d.item.kind == "function"})
    return Finding(
        CODE, NAME, declaration.path, span.line, span.column, span.end_line, span.end_column,
        f"{name}() is a predicate but returns int: make it return bool"
        + ("" if fix is not None else f" by hand ({why})"),
        function=name, symbol=name, arch=arch, confidence="high", fix=fix,
        details=(
            "every return is a truth value",
            f"defined in {', '.join(definitions)}",
            f"callers: {why}" if applicability is not None else f"no fix: {why}",
        ),
    )
