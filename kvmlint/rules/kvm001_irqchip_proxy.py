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
/* cpus.c, 2012 */
static bool cpu_thread_is_idle(CPUArchState *env)
{
    if (!env->halted || qemu_cpu_has_work(env) || kvm_irqchip_in_kernel()) {
        return false;
    }
    return true;
}
```
Use instead (what `check` proposes on a 2012 tree):
```c
    if (!env->halted || qemu_cpu_has_work(env) || $idle_2012) {
```
On a current tree the same site is proposed `$idle_current`.  The 2012
tree had no halt predicate yet: upstream asked whether interrupts are
asynchronous, which decides halt handling there.

## Fix safety
The fix replaces the call with the predicate the evidence points to, and is
offered as safe only when the bundled model shows the rewritten condition is
identical on x86 in every configuration and differs elsewhere only in the
direction the site needs.  Where the tree lacks the predicate, the fix also
introduces it the way QEMU does (flag, documented macro, stub, setter).  A
site with no evidence, or evidence for two questions, gets no fix: the
finding lists each candidate predicate with what it would change on each
architecture, and a person chooses.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

from kvmlint.findings import Finding, Fix

CODE = "KVM001"
NAME = "irqchip-proxy"
SUMMARY = "kvm_irqchip_in_kernel() in common code stands in for a narrower question"
FIXABLE = True
ALIASES: dict[str, tuple[str, ...]] = {}

PROXY = "kvm_irqchip_in_kernel"
IDLE_QUESTION = "halt"  # the evidence category of the example above


def extend_docs(docs: str) -> str:
    """The docs with the example's answers and the table of questions taken
    from the model's evidence data, so `explain` says what `check` does."""
    from kvmlint.model.vocabulary import load_toml

    categories = [c for c in load_toml("evidence.toml")["category"] if "predicate" in c]
    idle = next(c for c in categories if c["name"] == IDLE_QUESTION)["predicate"]
    docs = docs.replace("$idle_2012", f"{idle['2012']}()").replace("$idle_current", f"{idle['current']}()")
    rows = "".join(
        f"| {c['question']} | `{c['predicate']['2012']}()` | `{c['predicate']['current']}()` |"
        f" {c['pattern'][0]['says'].replace('{value}', c['pattern'][0].get('match', ['...'])[0])} |\n"
        for c in categories
    )
    return (
        docs + "\n\n## The questions, and the predicate proposed for each\n"
        "From the model's evidence data (`kvmlint/model/data/evidence.toml`):\n\n"
        "| question | 2012 tree | current tree | evidence, e.g. |\n|---|---|---|---|\n" + rows
    )


def check(analysis, symbols=None) -> Iterator[Finding]:
    from kvmlint.model import legitimate_question, propose

    model = analysis.model
    for located in analysis.index.callers_of(PROXY):
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
        yield _finding(located.path, reference, owner, scope, proposal, model, analysis.era)


def _what_changes(validation) -> str:
    """`no change on x86, ppc; arm: differs in 1 of 2: kernel_irqchip=on: true -> false`."""
    same = [result.arch for result in validation.results if result.identical]
    changed = [result.verdict() for result in validation.results if not result.identical]
    return "; ".join(([f"no change on {', '.join(same)}"] if same else []) + changed)


def _finding(path, reference, owner, scope, proposal, model, era=None) -> Finding:
    span = reference.span
    # The last clause of a scope's reason says why it is common; `kvmlint scope` shows the rest.
    why_common = f"common code: {scope.reason.rsplit('; ', 1)[-1].removesuffix(', so common code')}"
    if proposal is None:
        arch = model.arch_of_predicate(owner) if owner else None
        if arch:
            message = (
                f"{PROXY}() in common code inside {owner}(), a helper of {arch}: "
                f"move the helper into the target (see KVM002)"
            )
            details = (why_common,)
        else:
            from kvmlint.model.evidence import candidates

            message = f"{PROXY}() in common code stands in for a narrower question; no single answer: choose one"
            listed = candidates(model, reference.context, era)
            # Interned: sites that ask alike share these long lines (thousands in a KVM-dense file).
            details = tuple(map(sys.intern, (why_common, *(
                f"candidate {predicate}() ({question}): {_what_changes(validation)}"
                for predicate, question, validation in listed
            ))))
            if not listed:  # bytes a syntax error left in the condition, or too many unknowns
                details += ("the model cannot read the condition: decide by hand",)
        return Finding(
            CODE, NAME, path, span.line, span.column, span.end_line, span.end_column, message,
            function=owner, symbol=PROXY, confidence="low", details=details,
        )
    message = f"{PROXY}() in common code asks a narrower question: use {proposal.replacement}"
    fix = Fix(
        applicability="safe" if proposal.safe else "unsafe",
        description=f"replace {PROXY}() with {proposal.replacement}",
        arguments=(
            ("predicate", proposal.predicate),
            ("condition", reference.context.condition),
            ("new_condition", proposal.new_condition),
            ("verdict", proposal.verdict),
        ),
        unsafe_reason=proposal.validation.unsafe_reason,
    )
    verdict = "safe" if proposal.safe else "NOT safe: check it by hand"
    return Finding(
        CODE, NAME, path, span.line, span.column, span.end_line, span.end_column, message,
        function=owner, symbol=PROXY, replacement=proposal.replacement,
        confidence=proposal.confidence, fix=fix, evidence=tuple(proposal.evidence),
        details=(why_common, f"model: the rewrite is {verdict}"),
        verdicts=tuple((result.arch, result.verdict().split(": ", 1)[1]) for result in proposal.validation.results),
    )
