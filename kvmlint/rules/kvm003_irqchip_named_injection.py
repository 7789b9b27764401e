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
Safe: the definition, its declaration, its stub and every caller are
renamed together, and the new name must not exist in the tree yet.
"""

from __future__ import annotations

from collections.abc import Iterator

from kvmlint.findings import Finding, Fix
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
        taken = replacement in analysis.index.definitions
        span = implementations[0].item.span
        message = f"{name}() injects an interrupt line, which works without an in-kernel irqchip: name it {replacement}()"
        fix = None
        if taken:
            message += f" ({replacement} already exists: rename by hand)"
        else:
            fix = Fix("safe", f"rename {name}() to {replacement}()", (("symbol", name), ("new_name", replacement)))
        yield Finding(
            CODE, NAME, implementations[0].path, span.line, span.column, span.end_line, span.end_column,
            message, function=name, symbol=name, replacement=replacement, fix=fix,
        )
