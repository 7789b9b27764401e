"""The semantic model: truth tables, validation of the thread's rewrites, expressions, vocabulary."""

import pytest

from kvmlint.model import (
    ExpressionError, capability_arches, concept_arch, format_model_table, format_validation_table,
    infer_era, load_model, validate,
)
from kvmlint.model import expression as ex


def value(era, arch, predicate, **facts):
    """The predicate in the one configuration matching `facts` (every config must agree)."""
    model = load_model(era)
    values = {model.predicate(arch, predicate, c) for c in model.configurations(arch)
              if all(c[k] == v for k, v in facts.items())}
    assert len(values) == 1, (arch, predicate, facts, values)
    return values.pop()


# --- truth tables ---------------------------------------------------------------------------

X86_SPLIT_PREDICATES = [
    "kvm_irqchip_in_kernel", "kvm_async_interrupts_enabled", "kvm_halt_in_kernel", "kvm_irqfds_enabled",
    "kvm_msi_via_irqfd_enabled", "kvm_gsi_routing_enabled",
]


@pytest.mark.parametrize("predicate", X86_SPLIT_PREDICATES)
def test_x86_every_split_predicate_is_the_lapic_setting(predicate):
    assert value("current", "x86", predicate, irqchip="off") is False
    assert value("current", "x86", predicate, irqchip="on") is True
    assert value("current", "x86", predicate, irqchip="split") is True
    assert value("2012", "x86", predicate, irqchip="off") is False
    assert value("2012", "x86", predicate, irqchip="on") is True


@pytest.mark.parametrize("predicate", ["kvm_ioapic_in_kernel", "kvm_pic_in_kernel", "kvm_pit_in_kernel"])
def test_x86_split_keeps_ioapic_pic_pit_in_userspace(predicate):
    assert value("current", "x86", predicate, irqchip="off") is False
    assert value("current", "x86", predicate, irqchip="on") is True
    assert value("current", "x86", predicate, irqchip="split") is False


def test_x86_split_and_irq0_override():
    assert value("current", "x86", "kvm_irqchip_is_split", irqchip="split") is True
    assert value("current", "x86", "kvm_irqchip_is_split", irqchip="on") is False
    assert value("current", "x86", "kvm_allows_irq0_override", irqchip="off") is True
    assert value("2012", "x86", "kvm_allows_irq0_override", irqchip="on", KVM_CAP_IRQ_ROUTING=False) is False
    assert value("2012", "x86", "kvm_allows_irq0_override", irqchip="on", KVM_CAP_IRQ_ROUTING=True) is True


@pytest.mark.parametrize("era", ["2012", "current"])
def test_arm_async_and_halt_do_not_depend_on_the_gic(era):
    for setting in ("off", "on"):
        assert value(era, "arm", "kvm_async_interrupts_enabled", irqchip=setting) is True
        assert value(era, "arm", "kvm_halt_in_kernel", irqchip=setting) is True
    assert value(era, "arm", "kvm_irqchip_in_kernel", irqchip="off") is False


def test_arm_2012_had_no_irqfd_and_no_routing():
    assert value("2012", "arm", "kvm_irqfds_enabled", irqchip="on") is False
    assert value("2012", "arm", "kvm_gsi_routing_enabled", irqchip="on") is False
    assert value("current", "arm", "kvm_irqfds_enabled", irqchip="on") is True


def test_arm_msi_needs_gicv2m_or_its():
    assert value("current", "arm", "kvm_msi_via_irqfd_enabled", irqchip="on", controller="gicv3-its") is True
    assert value("current", "arm", "kvm_msi_via_irqfd_enabled", irqchip="on", controller="gicv3") is False
    assert value("current", "arm", "kvm_msi_via_irqfd_enabled", irqchip="off", controller="gicv2m") is False
    # a userspace GIC is GICv2 only: no kernel_irqchip=off configuration with a GICv3
    model = load_model("current")
    assert not [c for c in model.configurations("arm") if c["irqchip"] == "off" and c["controller"] == "gicv3"]


def test_s390x_halt_is_in_userspace_now():
    assert value("current", "s390x", "kvm_halt_in_kernel", irqchip="on", KVM_CAP_IRQ_ROUTING=True) is False
    assert value("current", "s390x", "kvm_async_interrupts_enabled", irqchip="on") is True
    assert value("2012", "s390x", "kvm_irqchip_in_kernel", irqchip="on") is False


def test_ppc_xics_has_no_async_flag_but_mpic_does():
    assert value("current", "ppc", "kvm_async_interrupts_enabled", irqchip="on", controller="xics") is False
    assert value("current", "ppc", "kvm_async_interrupts_enabled", irqchip="on", controller="mpic") is True
    assert value("current", "ppc", "kvm_gsi_direct_mapping", irqchip="on", controller="xive") is True


def test_irqfds_became_the_irqchip_setting_itself():
    model = load_model("current")
    for arch in model.arches:
        for config in model.configurations(arch):
            assert model.predicate(arch, "kvm_irqfds_enabled", config) == \
                model.predicate(arch, "kvm_irqchip_in_kernel", config)


def test_x86_only_predicates_are_na_elsewhere():
    model = load_model("current")
    config = model.configurations("arm")[0]
    assert model.predicate("arm", "kvm_allows_irq0_override", config) is None
    assert model.predicate("arm", "kvm_irqchip_is_split", config) is False  # common header: never set
    assert model.arch_of_predicate("kvm_allows_irq0_override") == "x86"
    assert model.defines_generic_predicate("kvm_irqfds_enabled")
    assert not model.defines_generic_predicate("kvm_pit_in_kernel")


def test_eras_and_arches():
    assert load_model("2012").arches == ("x86", "arm", "ppc", "s390x")
    assert load_model("current").arches == ("x86", "arm", "ppc", "s390x", "riscv", "loongarch", "mips")
    assert load_model("current") is load_model("current")
    with pytest.raises(ValueError):
        load_model("1999")


def test_valid_irqchip_settings():
    model = load_model("current")
    arm = model.valid_irqchip_settings("arm")
    assert arm.values == ("off", "on") and arm.default == "on"
    assert "not supported on ARM" in arm.rejected["split"]
    assert model.valid_irqchip_settings("x86").values == ("off", "on", "split")
    assert "LoongArch" in model.valid_irqchip_settings("loongarch").rejected["split"]
    assert "split" in load_model("2012").valid_irqchip_settings("x86").rejected


def test_infer_era():
    assert infer_era({"kvm_irqchip_is_split", "kvm_kernel_irqchip"}) == "current"
    assert infer_era({"kvm_resamplefds_allowed"}) == "current"
    assert infer_era({"kvm_halt_in_kernel_allowed"}) == "current"
    assert infer_era({"kvm_kernel_irqchip", "kvm_has_gsi_routing"}) == "2012"
    assert infer_era(set()) == "current"  # nothing says: assume current QEMU


# --- validation -----------------------------------------------------------------------------

@pytest.mark.parametrize("era", ["2012", "current"])
def test_thread_rewrite_is_identical_on_x86_and_differs_on_arm(era):
    validation = validate(load_model(era), "kvm_irqchip_in_kernel()", "kvm_async_interrupts_enabled()")
    assert validation.identical_on("x86")
    assert not validation.identical_on("arm")
    [difference] = validation.result("arm").differences
    assert difference.configuration["irqchip"] == "off"
    assert (difference.old, difference.new) == (False, True)
    assert validation.result("arm").verdict() == "arm: differs in 1 of 2: kernel_irqchip=off: false -> true"


def test_idle_site_rewrites_checked_against_what_the_site_needs():
    condition = "!env->halted || qemu_cpu_has_work(env) || kvm_irqchip_in_kernel()"
    needed = "!env->halted || qemu_cpu_has_work(env) || kvm_halt_in_kernel()"
    for era, right in (("2012", "kvm_async_interrupts_enabled()"), ("current", "kvm_halt_in_kernel()")):
        model = load_model(era)
        good = validate(model, condition, ex.replace_call(condition, "kvm_irqchip_in_kernel", right), needed=needed)
        assert good.safe and good.identical_on("x86")
        wrong = validate(model, condition, ex.replace_call(condition, "kvm_irqchip_in_kernel", "kvm_gsi_routing_enabled()"),
                         needed=needed)
        assert not wrong.safe
    # a rewrite that keeps the old value where the need differs is not a difference: s390x with an
    # irqchip injects asynchronously but idles in userspace, as the old code already (wrongly) said
    async_now = validate(load_model("current"), condition,
                         ex.replace_call(condition, "kvm_irqchip_in_kernel", "kvm_async_interrupts_enabled()"), needed=needed)
    assert async_now.identical_on("s390x")


def test_free_symbols_are_enumerated():
    validation = validate(load_model("current"), "kvm_irqchip_in_kernel() && !assign",
                          "kvm_msi_via_irqfd_enabled() && !assign", arches=["arm"])
    differing = validation.result("arm").differences
    assert differing and all(dict(d.assignment) == {"assign": False} for d in differing)


def test_arch_only_predicate_in_old_expression_is_skipped_not_a_difference():
    validation = validate(load_model("current"), "kvm_allows_irq0_override()",
                          "!kvm_irqchip_in_kernel() || kvm_has_gsi_routing()")
    assert validation.identical_on("x86")
    assert not validation.result("arm").applicable and validation.identical_on("arm")
    into_arm = validate(load_model("current"), "kvm_irqchip_in_kernel()", "kvm_pit_in_kernel()", arches=["arm"])
    assert not into_arm.identical_on("arm")


def test_tables_render():
    text = format_validation_table(validate(load_model("current"), "kvm_irqchip_in_kernel()",
                                            "kvm_async_interrupts_enabled()", arches=["x86", "arm"]))
    assert "x86: identical in all 3 configurations" in text
    assert "kernel_irqchip=off  false  true  differs" in text
    model_table = format_model_table(load_model("current"), "arm")
    assert "rejects split" in model_table and 'controller == "gicv2m"' in model_table


def test_validate_rejects_unknown_arch_and_bad_input():
    with pytest.raises(ValueError):
        validate(load_model("2012"), "kvm_irqchip_in_kernel()", "true", arches=["riscv"])
    with pytest.raises(ExpressionError):
        validate(load_model("current"), "kvm_irqchip_in_kernel(", "true")


# --- expressions ----------------------------------------------------------------------------

def reduce_free(text):
    return ex.render(ex.reduce(ex.parse(text), lambda leaf: None))


@pytest.mark.parametrize("text, expected", [
    ("!a", "!a"),
    ("a && (b || c)", "a && (b || c)"),
    ("(a && b) || c", "a && b || c"),
    ("a ? b : c", "a ? b : c"),
    ("x == 0", "!x"),
    ("x != 0", "x"),
    ("x == true", "x"),
    ("false != x", "x"),
    ("!!x", "x"),
    ("1 && x", "x"),
    ("0 || x", "x"),
    ("x || 1", "true"),
    ("rfd != -1", "rfd != -1"),
    ("env->halted || qemu_cpu_has_work(env)", "env->halted || qemu_cpu_has_work(env)"),
])
def test_expression_parse_reduce_render(text, expected):
    assert reduce_free(text) == expected


def test_expression_model_reading():
    model = load_model("current")
    x86_on = next(c for c in model.configurations("x86") if c["irqchip"] == "on")
    assert model.evaluate("x86", "kvm_irqchip_in_kernel() ? a : b", x86_on) == ex.parse("a")
    assert model.evaluate("x86", "kvm_irqchip_is_split() == 0", x86_on) is True
    assert model.evaluate("x86", "kvm_kernel_irqchip", x86_on) is True  # the flag variable
    # a capability helper the table rules out is false; an unknown call stays free
    arm = model.configurations("arm")[0]
    assert model.evaluate("arm", "kvm_has_pit_state2()", arm) is False
    assert isinstance(model.evaluate("x86", "kvm_has_pit_state2()", x86_on), ex.Leaf)


def test_free_leaves_and_assignments():
    tree = ex.parse("!env->halted || f(x) == 1 || kvm_irqchip_in_kernel()")
    assert [leaf.text for leaf in ex.leaves(tree)] == ["env->halted", "f(x)", "kvm_irqchip_in_kernel()"]
    assert len(list(ex.assignments(["a", "b"]))) == 4


def test_replace_call_keeps_negation_and_spacing():
    assert ex.replace_call("!kvm_irqchip_in_kernel ( ) && x", "kvm_irqchip_in_kernel", "kvm_irqfds_enabled()") == \
        "!kvm_irqfds_enabled() && x"


# --- vocabulary -----------------------------------------------------------------------------

@pytest.mark.parametrize("identifier, arch", [
    ("kvm_allows_irq0_override", "x86"), ("kvm_pit_in_kernel", "x86"), ("kvm_has_pit_state2", "x86"),
    ("KVM_CAP_XSAVE", "x86"), ("kvm_put_xcrs", "x86"), ("kvm_get_debugregs", "x86"), ("kvm_ioapic_in_kernel", "x86"),
    ("kvm_arm_gicv3_realize", "arm"), ("kvm_gic_in_kernel", "arm"), ("xics_kvm_connect", "ppc"),
    ("kvm_s390_flic_realize", "s390x"), ("kvm_s390_add_adapter_routes", "s390x"), ("kvm_riscv_aia_create", "riscv"),
    ("kvm_irqchip_in_kernel", None), ("kvm_irqchip_is_split", None), ("kvm_set_irq", None),
])
def test_concept_arch(identifier, arch):
    assert concept_arch(identifier) == arch


def test_capability_arches_from_the_table():
    assert capability_arches("KVM_CAP_XSAVE") == frozenset({"x86"})  # only in ioctl rows
    assert capability_arches("KVM_CAP_IRQFD") == frozenset({"x86", "arm", "s390x"})
    assert capability_arches("KVM_CAP_IRQ_ROUTING") == frozenset({"x86", "arm", "s390x"})
    assert capability_arches("KVM_CAP_IRQCHIP") == frozenset({"x86", "arm", "s390x"})
    # KVM_CREATE_IRQCHIP's capability field names both caps, so the table cannot tell them apart
    assert capability_arches("KVM_CAP_S390_IRQCHIP") == frozenset({"x86", "arm", "s390x"})
    assert capability_arches("KVM_CAP_IRQ_XICS") == frozenset({"ppc"})
    assert capability_arches("KVM_IRQ_LINE") == frozenset({"x86", "arm"})
    assert capability_arches("KVM_CAP_ONE_REG") is None  # all
    assert capability_arches("KVM_CAP_NO_SUCH_THING") is None  # unknown
