"""Evidence: what each proxy site asks, and the 2012 proposals against upstream's choices."""

import pytest

from kvmlint.model import load_model, propose
from kvmlint.source.facts import SiteContext, Span

SPAN = Span(0, 0, 1, 1, 1, 1)


def site(function, statement, condition, **fields):
    return SiteContext(function, statement, condition.startswith("!"), condition, SPAN, **fields)


# The seven common sites of the July 2012 tree, as the lead's extractor records them.
IDLE = site("cpu_thread_is_idle", "if", "!env->halted || qemu_cpu_has_work(env) || kvm_irqchip_in_kernel()",
            guarded_returns=("false",), function_calls=("runstate_is_running", "qemu_cpu_has_work"),
            function_identifiers=("env", "stop", "halted", "stopped"))
SET_IRQ = site("kvm_irqchip_set_irq", "assert", "kvm_irqchip_in_kernel()",
               function_calls=("kvm_vm_ioctl", "perror", "abort"),
               function_identifiers=("event", "level", "irq", "irqchip_inject_ioctl"))
ADD_MSI_ROUTE = site("kvm_irqchip_add_msi_route", "if", "!kvm_irqchip_in_kernel()", guarded_returns=("-ENOSYS",),
                     function_calls=("kvm_irqchip_get_virq", "kvm_add_routing_entry"),
                     function_identifiers=("kroute", "virq", "KVM_IRQ_ROUTING_MSI"))
ASSIGN_IRQFD = site("kvm_irqchip_assign_irqfd", "if", "!kvm_irqchip_in_kernel()", guarded_returns=("-ENOSYS",),
                    function_calls=("kvm_vm_ioctl",), function_identifiers=("irqfd", "KVM_IRQFD", "virq"))
IRQ0 = site("kvm_allows_irq0_override", "return", "!kvm_irqchip_in_kernel() || kvm_has_gsi_routing()",
            function_calls=("kvm_has_gsi_routing",))
NOTIFIERS_OFF = site("virtio_pci_set_guest_notifiers", "if", "kvm_irqchip_in_kernel() && !assign",
                     guarded_calls=("msix_unset_vector_notifiers", "g_free"),
                     guarded_identifiers=("proxy", "pci_dev", "vector_irqfd"))
NOTIFIERS_ON = site("virtio_pci_set_guest_notifiers", "if", "kvm_irqchip_in_kernel() && assign",
                    guarded_calls=("g_malloc0", "msix_nr_vectors_allocated", "msix_set_vector_notifiers"),
                    guarded_identifiers=("proxy", "vector_irqfd", "kvm_virtio_pci_vector_use"))

# upstream 7ae26bd48, 614e41bc2, f3e1bed8d, cc7e0ddf5; irq0 override stayed (moved to target-i386 later)
UPSTREAM_2012 = [
    (IDLE, "!env->halted || qemu_cpu_has_work(env) || kvm_async_interrupts_enabled()"),
    (SET_IRQ, "kvm_async_interrupts_enabled()"),
    (ADD_MSI_ROUTE, "!kvm_gsi_routing_enabled()"),
    (ASSIGN_IRQFD, "!kvm_irqfds_enabled()"),
    (NOTIFIERS_OFF, "kvm_msi_via_irqfd_enabled() && !assign"),
    (NOTIFIERS_ON, "kvm_msi_via_irqfd_enabled() && assign"),
]


@pytest.mark.parametrize("context, upstream", UPSTREAM_2012)
def test_2012_proposals_match_upstream(context, upstream):
    proposal = propose(load_model("2012"), context, "2012")
    assert proposal is not None
    assert proposal.new_condition == upstream
    assert proposal.safe and proposal.confidence == "high"
    assert proposal.validation.identical_on("x86")
    assert proposal.verdict.startswith("safe: x86 identical")


def test_irq0_override_is_an_x86_question_not_a_proposal():
    assert propose(load_model("2012"), IRQ0, "2012") is None
    assert propose(load_model("current"), IRQ0, "current") is None


def test_current_names_for_the_idle_site():
    proposal = propose(load_model("current"), IDLE, "current")
    assert proposal.replacement == "kvm_halt_in_kernel()"
    assert proposal.predicate == "kvm_halt_in_kernel"
    assert "the function cpu_thread_is_idle() decides VCPU idleness" in proposal.evidence


def test_irqfd_notifier_in_device_code():
    context = site("vfio_intx_enable_kvm", "if", "!kvm_irqchip_in_kernel()",
                   guarded_calls=("kvm_irqchip_add_irqfd_notifier_gsi",))
    proposal = propose(load_model("current"), context, "current")
    assert proposal.replacement == "kvm_irqfds_enabled()"
    assert proposal.new_condition == "!kvm_irqfds_enabled()"
    assert proposal.confidence == "medium"


def test_msi_route_from_device_code_and_low_confidence_hint():
    device = site("ivshmem_add_kvm_msi_virq", "if", "kvm_irqchip_in_kernel()", guarded_calls=("kvm_irqchip_add_msi_route",))
    assert propose(load_model("current"), device, "current").predicate == "kvm_msi_via_irqfd_enabled"
    weak = site("some_device_setup", "if", "kvm_irqchip_in_kernel()", guarded_identifiers=("vector_irqfd",))
    assert propose(load_model("current"), weak, "current").confidence == "low"


def test_creating_an_in_kernel_controller_is_a_legitimate_irqchip_question():
    context = site("gic_realize", "if", "kvm_irqchip_in_kernel()",
                   guarded_calls=("kvm_create_device",), guarded_identifiers=("KVM_DEV_TYPE_ARM_VGIC_V3",))
    assert propose(load_model("current"), context, "current") is None


def test_conflicting_evidence_needs_a_person():
    context = site("cpu_thread_is_idle", "if", "kvm_irqchip_in_kernel()",
                   guarded_calls=("msix_set_vector_notifiers",))
    assert propose(load_model("current"), context, "current") is None


def test_no_evidence_needs_a_person():
    context = site("do_something", "if", "kvm_irqchip_in_kernel()", guarded_calls=("printf",))
    assert propose(load_model("current"), context, "current") is None


def test_wrong_direction_is_reported_unsafe():
    # a routing API guard validated against the idle need: arm keeps idle in the kernel regardless
    from kvmlint.model import validate

    validation = validate(load_model("current"), IDLE.condition,
                          "!env->halted || qemu_cpu_has_work(env) || kvm_gsi_routing_enabled()",
                          needed="!env->halted || qemu_cpu_has_work(env) || kvm_halt_in_kernel()")
    assert validation.identical_on("x86") and not validation.safe
    assert validation.result("arm").verdict().endswith("(NOT as the site needs)")
