"""Drift: the bundled model against current QEMU's flag setters."""

from kvmlint.model import format_drift, load_model, verify

# current QEMU (b428fe0362): the setters of the model's flags, as the lead's index extracts them
CURRENT_SETTERS = [
    ("common", "kvm_kernel_irqchip", "true", "accel/kvm/kvm-all.c", 2622, "kvm_irqchip_create"),
    ("common", "kvm_async_interrupts_allowed", "true", "accel/kvm/kvm-all.c", 2626, "kvm_irqchip_create"),
    ("common", "kvm_halt_in_kernel_allowed", "true", "accel/kvm/kvm-all.c", 2627, "kvm_irqchip_create"),
    ("common", "kvm_resamplefds_allowed", "(kvm_check_extension(s, KVM_CAP_IRQFD_RESAMPLE) > 0)",
     "accel/kvm/kvm-all.c", 3032, "kvm_init"),
    ("x86", "kvm_msi_via_irqfd_allowed", "true", "target/i386/kvm/kvm.c", 6680, "kvm_arch_init_irq_routing"),
    ("x86", "kvm_gsi_routing_allowed", "true", "target/i386/kvm/kvm.c", 6681, "kvm_arch_init_irq_routing"),
    ("x86", "kvm_split_irqchip", "true", "target/i386/kvm/kvm.c", 6710, "kvm_arch_irqchip_create"),
    ("arm", "kvm_async_interrupts_allowed", "true", "target/arm/kvm.c", 603, "kvm_arch_init"),
    ("arm", "kvm_halt_in_kernel_allowed", "true", "target/arm/kvm.c", 609, "kvm_arch_init"),
    ("arm", "kvm_gsi_routing_allowed", "true", "hw/intc/arm_gic_kvm.c", 581, "kvm_arm_gic_realize"),
    ("arm", "kvm_gsi_direct_mapping", "true", "hw/intc/arm_gicv2m.c", 159, "gicv2m_realize"),
    ("arm", "kvm_msi_via_irqfd_allowed", "kvm_irqfds_enabled()", "hw/intc/arm_gicv2m.c", 160, "gicv2m_realize"),
    ("arm", "kvm_gsi_direct_mapping", "false", "hw/intc/arm_gicv3_its_kvm.c", 126, "kvm_arm_its_realize"),
    ("arm", "kvm_msi_via_irqfd_allowed", "true", "hw/intc/arm_gicv3_its_kvm.c", 127, "kvm_arm_its_realize"),
    ("arm", "kvm_gsi_routing_allowed", "true", "hw/intc/arm_gicv3_kvm.c", 913, "kvm_arm_gicv3_realize"),
    ("ppc", "kvm_kernel_irqchip", "true", "hw/intc/xics_kvm.c", 417, "xics_kvm_connect"),
    ("ppc", "kvm_msi_via_irqfd_allowed", "true", "hw/intc/xics_kvm.c", 418, "xics_kvm_connect"),
    ("ppc", "kvm_gsi_direct_mapping", "true", "hw/intc/xics_kvm.c", 419, "xics_kvm_connect"),
    ("ppc", "kvm_kernel_irqchip", "false", "hw/intc/xics_kvm.c", 473, "xics_kvm_disconnect"),
    ("ppc", "kvm_kernel_irqchip", "true", "hw/intc/openpic_kvm.c", 305, "kvm_openpic_realize"),
    ("ppc", "kvm_async_interrupts_allowed", "true", "hw/intc/openpic_kvm.c", 306, "kvm_openpic_realize"),
    ("ppc", "kvm_msi_via_irqfd_allowed", "true", "hw/intc/openpic_kvm.c", 314, "kvm_openpic_realize"),
    ("ppc", "kvm_gsi_routing_allowed", "true", "hw/intc/openpic_kvm.c", 315, "kvm_openpic_realize"),
    ("s390x", "kvm_gsi_routing_allowed", "true", "target/s390x/kvm/kvm.c", 1947, "kvm_arch_init_irq_routing"),
    ("s390x", "kvm_halt_in_kernel_allowed", "false", "target/s390x/kvm/kvm.c", 1948, "kvm_arch_init_irq_routing"),
    ("s390x", "kvm_msi_via_irqfd_allowed", "kvm_irqfds_enabled()", "include/hw/s390x/s390-pci-kvm.h", 22,
     "s390_pcihost_kvm_realize"),
    ("riscv", "kvm_gsi_routing_allowed", "true", "target/riscv/kvm/kvm-cpu.c", 1981, "kvm_riscv_aia_create"),
    ("riscv", "kvm_msi_via_irqfd_allowed", "true", "target/riscv/kvm/kvm-cpu.c", 1993, "kvm_riscv_aia_create"),
    ("loongarch", "kvm_async_interrupts_allowed", "true", "target/loongarch/kvm/kvm.c", 1345,
     "kvm_loongarch_init_irq_routing"),
    ("loongarch", "kvm_msi_via_irqfd_allowed", "kvm_irqfds_enabled()", "target/loongarch/kvm/kvm.c", 1346,
     "kvm_loongarch_init_irq_routing"),
    ("loongarch", "kvm_gsi_routing_allowed", "true", "target/loongarch/kvm/kvm.c", 1352, "kvm_loongarch_init_irq_routing"),
]


def test_current_model_agrees_with_current_qemu():
    assert verify(load_model("current"), CURRENT_SETTERS) == []
    assert format_drift([]).startswith("no drift")


def test_a_changed_setter_is_reported():
    changed = [row if row[:2] != ("arm", "kvm_halt_in_kernel_allowed") else row[:2] + ("false",) + row[3:]
               for row in CURRENT_SETTERS]
    [drift] = verify(load_model("current"), changed)
    assert (drift.arch, drift.predicate, drift.path, drift.line) == ("arm", "kvm_halt_in_kernel", "target/arm/kvm.c", 609)
    assert drift.era_difference is None


def test_a_missing_setter_is_reported():
    without = [row for row in CURRENT_SETTERS if row[:2] != ("riscv", "kvm_msi_via_irqfd_allowed")]
    [drift] = verify(load_model("current"), without)
    assert drift.arch == "riscv" and "never sets kvm_msi_via_irqfd_allowed" in drift.message


def test_2012_model_against_current_qemu_lists_only_era_differences():
    drifts = verify(load_model("2012"), CURRENT_SETTERS)
    assert drifts and all(d.era_difference for d in drifts)
    assert "0 not explained" in format_drift(drifts)
