"""The parser stage: what one C file yields, including macro bodies and #ifdef branches."""

from kvmlint.source.extract import extract

SOURCE = b"""#include "kvm.h"
#ifdef CONFIG_KVM
#define kvm_irqchip_in_kernel() (kvm_kernel_irqchip)
#define USES_KERNEL_CHIP() (kvm_enabled() && \\
      kvm_irqchip_in_kernel())
#else
#define kvm_irqchip_in_kernel() (false)
#endif
int kvm_allows_irq0_override(void);
extern bool kvm_async_interrupts_allowed;

static bool cpu_thread_is_idle(CPUState *env)
{
    if (!env->halted || qemu_cpu_has_work(env) || kvm_irqchip_in_kernel()) {
        return false;
    }
    return true;
}

int kvm_irqchip_add_msi_route(KVMState *s, MSIMessage msg)
{
    if (!kvm_irqchip_in_kernel()) {
        return -ENOSYS;
    }
#ifdef KVM_CAP_IRQ_ROUTING
    kvm_add_routing_entry(s, &kroute);
#endif
    assert(kvm_irqchip_in_kernel());
    kvm_async_interrupts_allowed = true;
    return 0; /* kvmlint: ignore[KVM001, KVM002] */
}
"""


def proxy_uses(facts):
    return [r for r in facts.references if r.symbol == "kvm_irqchip_in_kernel"]


def test_calls_get_the_span_of_the_whole_call_and_their_function():
    facts = extract("cpus.c", SOURCE)
    idle = next(r for r in proxy_uses(facts) if r.function == "cpu_thread_is_idle")
    assert (idle.span.line, idle.span.column) == (14, 51)
    assert idle.span.end_column - idle.span.column == len("kvm_irqchip_in_kernel()")
    assert idle.context.statement == "if"
    assert "halted" in idle.context.guarded_identifiers
    assert idle.context.guarded_returns == ("false",)


def test_negated_guard_and_assert_are_told_apart():
    facts = extract("kvm-all.c", SOURCE)
    in_route = [r for r in proxy_uses(facts) if r.function == "kvm_irqchip_add_msi_route"]
    guard, assertion = in_route
    assert guard.context.negated and guard.context.condition == "!kvm_irqchip_in_kernel()"
    assert guard.context.guarded_returns == ("-ENOSYS",)
    assert "kvm_add_routing_entry" in guard.context.function_calls
    assert assertion.context.statement == "assert" and not assertion.context.negated


def test_uses_inside_macro_bodies_are_found_with_their_ifdef():
    facts = extract("kvm.h", SOURCE)
    in_macro = next(r for r in proxy_uses(facts) if r.macro == "USES_KERNEL_CHIP")
    assert in_macro.span.line == 5 and in_macro.span.column == 7
    assert in_macro.context.statement == "macro"
    assert in_macro.context.preprocessor == ("CONFIG_KVM",)
    assert in_macro.context.condition.startswith("kvm_enabled() &&")


def test_definitions_record_kind_branch_and_capabilities():
    facts = extract("kvm.h", SOURCE)
    macros = [d for d in facts.definitions if d.name == "kvm_irqchip_in_kernel"]
    assert [d.preprocessor for d in macros] == [("CONFIG_KVM",), ("!CONFIG_KVM",)]
    kinds = {d.name: d.kind for d in facts.definitions}
    assert kinds["kvm_allows_irq0_override"] == "prototype"
    assert kinds["kvm_async_interrupts_allowed"] == "extern"
    route = next(d for d in facts.definitions if d.name == "kvm_irqchip_add_msi_route")
    assert route.kind == "function" and route.capabilities == ("KVM_CAP_IRQ_ROUTING",)


def test_the_name_in_a_definition_is_not_a_use():
    facts = extract("kvm.h", SOURCE)
    lines = {r.span.line for r in facts.references if r.symbol == "kvm_irqchip_in_kernel"}
    assert 3 not in lines and 7 not in lines


def test_flag_assignments_includes_and_suppressions():
    facts = extract("kvm-all.c", SOURCE)
    assert [(a.name, a.value, a.function) for a in facts.assignments] == [
        ("kvm_async_interrupts_allowed", "true", "kvm_irqchip_add_msi_route")
    ]
    assert [i.target for i in facts.includes] == ["kvm.h"]
    assert facts.suppressions == {30: frozenset({"KVM001", "KVM002"})}


def test_broken_and_non_utf8_input_is_analysed_with_a_warning():
    broken = b"int kvm_x(void) { if (kvm_irqchip_in_kernel() { \xff\xfe }}}} ))) ((( ;;; " * 3
    facts = extract("broken.c", broken)
    assert facts.error_nodes > 0
    assert any("UTF-8" in w for w in facts.warnings)
    assert any(r.symbol == "kvm_irqchip_in_kernel" for r in facts.references)
