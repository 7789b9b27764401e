"""## What it does
Reports every call of `kvm_irqchip_in_kernel()` in common (architecture
independent) code, says which narrower question the code is really asking,
and shows, architecture by architecture, what replacing the proxy changes.

## Why is this bad?
"Irqchip in kernel" is a user setting whose meaning is architecture specific.
On x86 it means the LAPIC is emulated in the kernel, and because the x86
core<->LAPIC interface is synchronous it also implies asynchronous interrupt
delivery, in-kernel VCPU halt, KVM_IRQ_LINE and irqfds.  On ARM the core<->GIC
interface is asynchronous, so interrupts are asynchronous and halt is in the
kernel whether or not the GIC is modelled in the kernel.  Common code that asks
"is the irqchip in the kernel?" is using it as a proxy for one of those
narrower questions and gets the wrong answer on other architectures.  Only
target code (which interrupt controller to instantiate) and x86's
synchronous-delivery code should ask about the irqchip.

## Example
```c
/* cpus.c */
static bool cpu_thread_is_idle(CPUArchState *env)
{
    if (!env->halted || qemu_cpu_has_work(env) || kvm_irqchip_in_kernel()) {
        return false;
    }
    return true;
}
```
Use instead:
```c
    if (!env->halted || qemu_cpu_has_work(env) || kvm_halt_in_kernel()) {
```

## Fix safety
The fix replaces the call with the predicate the evidence points to, and is
offered as safe only when the bundled model shows the rewritten condition is
identical on x86 in every configuration and differs elsewhere only in the
direction the site needs.  Where the tree lacks the predicate, the fix also
introduces it the way QEMU does (flag, documented macro, stub, setter).  A
site with no or conflicting evidence gets no fix: a person must decide.
"""

from __future__ import annotations

from collections.abc import Iterator

from kvmlint.findings import Finding, Fix

CODE = "KVM001"
NAME = "irqchip-proxy"
SUMMARY = "kvm_irqchip_in_kernel() in common code stands in for a narrower question"
FIXABLE = True
ALIASES: dict[str, tuple[str, ...]] = {}

PROXY = "kvm_irqchip_in_kernel"


def check(analysis, symbols=None) -> Iterator[Finding]:
    from kvmlint.model import legitimate_question, propose

    model = analysis.model
    for located in analysis.index.references.get(PROXY, ()):
        reference = located.item
        if reference.kind != "call" or reference.context is None:
            continue
        owner = reference.macro or reference.function
        if owner is not None and model.defines_generic_predicate(owner):
            continue  # the proxy inside a predicate's own definition is that predicate's meaning
        scope = analysis.scope(located.path)
        if not scope.common or legitimate_question(reference.context):
            continue  # target code, or device code choosing its in-kernel model: both may ask
        proposal = propose(model, reference.context, analysis.era)
        yield _finding(located.path, reference, owner, scope, proposal, model)


def _finding(path, reference, owner, scope, proposal, model) -> Finding:
    span = reference.span
    # The last clause of a scope's reason says why it is common; `kvmlint scope` shows the rest.
    where = f"in common code ({scope.reason.rsplit('; ', 1)[-1].removesuffix(', so common code')})"
    if proposal is None:
        arch = model.arch_of_predicate(owner) if owner else None
        if arch:
            message = (
                f"{PROXY}() {where} inside {owner}(), a helper whose concept belongs to {arch}: "
                f"move the helper into the target (see KVM002)"
            )
        else:
            message = (
                f"{PROXY}() {where} is a proxy for a narrower question; "
                "no evidence says which: a person must decide"
            )
        return Finding(
            CODE, NAME, path, span.line, span.column, span.end_line, span.end_column, message,
            function=owner, symbol=PROXY, confidence="low",
        )
    evidence = "; ".join(proposal.evidence)
    message = (
        f"{PROXY}() {where} asks a narrower question: use {proposal.replacement} "
        f"(evidence: {evidence}; model: {proposal.verdict})"
    )
    fix = Fix(
        applicability="safe" if proposal.safe else "unsafe",
        description=f"replace {PROXY}() with {proposal.replacement}",
        arguments=(
            ("predicate", proposal.predicate),
            ("condition", reference.context.condition),
            ("new_condition", proposal.new_condition),
            ("verdict", proposal.verdict),
        ),
    )
    return Finding(
        CODE, NAME, path, span.line, span.column, span.end_line, span.end_column, message,
        function=owner, symbol=PROXY, replacement=proposal.replacement,
        confidence=proposal.confidence, fix=fix, evidence=tuple(proposal.evidence),
    )
