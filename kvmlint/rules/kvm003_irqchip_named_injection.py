"""## What it does
Reports an interrupt-injection function of the common KVM API whose name
says `irqchip` (`kvm_irqchip_set_irq`), although injecting an interrupt line
does not need an in-kernel irqchip.

## Why is this bad?
Line-level injection (KVM_IRQ_LINE) works whether or not the interrupt
controller is modelled in the kernel: KVM on ARM accepts it either way, and
what the function really needs is asynchronous interrupt delivery.  A name
that says "irqchip" tells callers it injects into an in-kernel irqchip
model, so code for architectures without one either avoids it or grows its
own copy.  In the 2012 review: "Either different functions for archs that
don't follow this concept need to be provided, or this function requires
renaming".

## Example
```c
int kvm_irqchip_set_irq(KVMState *s, int irq, int level);
```
Use instead:
```c
int kvm_set_irq(KVMState *s, int irq, int level);
```

## Fix safety
Safe when the rename can see and edit every place the compiler reads the
name: the definition, its declaration, its stub and every caller are renamed
together, in every file of the tree that spells it (also files excluded from
the report, and headers of any suffix that C files include), members and
labels of that spelling left alone.  No fix when the new name is already
declared where the rename would bring it (at file scope or as a macro
anywhere, or as a local or parameter around a renamed use): the message
names the place.  Not safe (`--unsafe-fixes` renames the C files only) when
other text names it (a script, a build or linker file), or a file cannot be
read.  Documentation is not changed; the finding lists where it names the
function.  See `kvmlint/index/renaming.py`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from kvmlint.findings import Finding, Fix
from kvmlint.index.renaming import reach
from kvmlint.rules.kvm002_arch_helper_in_common import is_common_kvm_file

CODE = "KVM003"
NAME = "irqchip-named-injection"
SUMMARY = "an interrupt-injection API is named for the irqchip though it works without one"
FIXABLE = True
ALIASES: dict[str, tuple[str, ...]] = {}

NAMED_FOR_IRQCHIP = "_irqchip_"
# Line-level injection is told by what the function is called, not by what its
# body mentions: irqchip set-up code names the injection ioctl too.
INJECTION_NAMES = ("set_irq",)


def new_name(name: str) -> str:
    return name.replace(NAMED_FOR_IRQCHIP, "_", 1)


def is_line_injection(name: str) -> bool:
    return any(word in name for word in INJECTION_NAMES)


def check(analysis, symbols=None) -> Iterator[Finding]:
    for name, located in sorted(analysis.index.definitions.items()):
        if NAMED_FOR_IRQCHIP not in name or (symbols is not None and name not in symbols):
            continue
        common = [d for d in located if d.item.kind in ("function", "prototype") and is_common_kvm_file(analysis, d.path)]
        implementations = [d for d in common if d.item.kind == "function" and "stub" not in d.path]
        if not implementations or not is_line_injection(name):
            continue
        replacement = new_name(name)
        span = implementations[0].item.span
        message = f"{name}() injects an interrupt line, which works without an in-kernel irqchip: name it {replacement}()"
        renamed = reach(analysis.root, name, replacement, analysis.sources.listing)
        files = tuple((path, hashlib.sha256(data).hexdigest()) for path, data in sorted(renamed.files.items()))
        arguments = (("symbol", name), ("new_name", replacement), ("files", files))
        description = f"rename {name}() to {replacement}()"
        details: tuple[str, ...] = ()
        fix = None
        if renamed.conflicts:
            message += f" (not renamed automatically: {renamed.conflicts[0]}; rename by hand)"
            details = tuple(f"conflict: {conflict}" for conflict in renamed.conflicts)
        elif renamed.unseen:
            message += f" (not safe: {renamed.unseen[0]})"
            details = tuple(f"not renamed: {obstacle}" for obstacle in renamed.unseen)
            fix = Fix("unsafe", description + " in the C files only", arguments,
                      unsafe_reason=f"the rename cannot see every spelling: {renamed.unseen[0]}")
        else:
            fix = Fix("safe", description, arguments)
        details += tuple(f"not changed: {mention}" for mention in renamed.prose)
        yield Finding(
            CODE, NAME, implementations[0].path, span.line, span.column, span.end_line, span.end_column,
            message, function=name, symbol=name, replacement=replacement, fix=fix, details=details,
        )
