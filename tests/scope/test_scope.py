"""Scope stage: which files are common code, and which belong to some architectures."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from kvmlint.scope import ARCH_FAMILIES, Scope, ScopeResolver, arch_family
from kvmlint.scope.families import path_convention
from kvmlint.scope.kconfig import KconfigSpace, parse_expression, parse_kconfig
from kvmlint.scope.makefiles import block_condition, parse_makefile, read_make_config
from kvmlint.scope.meson import Condition, if_condition, split_arguments, statements

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "qemu-snippets"
KNOWN = frozenset(ARCH_FAMILIES) | {"sparc", "openrisc"}


# --- families and path conventions -------------------------------------------------

@pytest.mark.parametrize("target, family", [
    ("i386", "x86"), ("x86_64", "x86"), ("arm", "arm"), ("aarch64", "arm"),
    ("ppc", "ppc"), ("ppc64", "ppc"), ("ppcemb", "ppc"), ("ppc64abi32", "ppc"), ("ppc64le", "ppc"),
    ("s390x", "s390x"), ("riscv32", "riscv"), ("riscv64", "riscv"), ("loongarch64", "loongarch"),
    ("mips", "mips"), ("mipsel", "mips"), ("mips64", "mips"), ("mips64el", "mips"),
    ("mipsn32", "mips"), ("mipsn32el", "mips"),
    ("sparc64", "sparc"), ("microblazeel", "microblaze"), ("sh4eb", "sh4"), ("xtensaeb", "xtensa"),
    ("or1k", "openrisc"), ("openrisc", "openrisc"), ("m68k", "m68k"), ("hppa", "hppa"),
])
def test_arch_family(target, family):
    assert arch_family(target) == family


def test_arch_families_order():
    assert ARCH_FAMILIES == ("x86", "arm", "ppc", "s390x", "riscv", "loongarch", "mips")


def test_label_orders_kvm_families_first_then_others():
    assert Scope(frozenset({"mips", "loongarch"}), False, "").label == "loongarch,mips"
    assert Scope(frozenset({"sparc", "x86", "alpha"}), False, "").label == "x86,alpha,sparc"
    assert Scope(frozenset({"x86", "ppc"}), True, "").label == "common"


@pytest.mark.parametrize("path, expected", [
    ("target-i386/kvm.c", ("x86", "target-i386/")),
    ("target/arm/kvm.c", ("arm", "target/arm/")),
    ("target/i386/kvm/kvm_i386.h", ("x86", "target/i386/")),
    ("hw/sparc64/sun4u.c", ("sparc", "hw/sparc64/")),
    ("include/hw/ppc/xics.h", ("ppc", "include/hw/ppc/")),
    ("linux-user/mips64/syscall.h", ("mips", "linux-user/mips64/")),
    ("linux-headers/asm-powerpc/kvm.h", ("ppc", "linux-headers/asm-powerpc/")),
    ("hw/intc/xics.c", None),
    ("hw/kvm/clock.c", None),
    ("tcg/i386/tcg-target.c", None),  # a host backend, built for every target
    ("include/system/kvm.h", None),
    ("hw/pc.c", None),
])
def test_path_convention(path, expected):
    assert path_convention(path, KNOWN) == expected


# --- Makefile reader ------------------------------------------------------------------

def test_makefile_addprefix_reroots_this_files_entries():
    text = "obj-y += pc.o apic.o\nobj-y += kvm/\nobj-$(CONFIG_FDT) += ../device_tree.o\n" \
           "obj-y := $(addprefix ../,$(obj-y))\n"
    assignments = parse_makefile(text, "hw/i386/Makefile.objs")
    assert [a.objects for a in assignments] == [["hw/pc.o", "hw/apic.o"], [], ["device_tree.o"]]
    assert assignments[1].directories == ["hw/kvm"]
    assert all(a.prefix == "../" for a in assignments)
    assert assignments[2].symbols == ("CONFIG_FDT",)


def test_makefile_conditions_blocks_and_references():
    text = (
        "hw-obj-$(CONFIG_VIRTIO_PCI) += virtio-pci.o\n"
        "ifeq ($(CONFIG_PCI), y)\nobj-$(CONFIG_KVM) += ivshmem.o\nendif\n"
        "ifdef CONFIG_SOFTMMU\nobj-y += a.o\nelse\nobj-y += b.o\nendif\n"
        "hw-obj-$(CONFIG_SOUND) += $(sound-obj-y)\n"
        "sound-obj-$(CONFIG_SB16) += sb16.o \\\n    adlib.o\n"
        "$(obj)/adlib.o: QEMU_CFLAGS += -DBUILD_Y8950=0\n"
        "\t$(call quiet-command,true)\n"
        "obj-$(call lnot,$(CONFIG_KVM)) += kvm-stub.o\n"
    )
    by_object = {o: a for a in parse_makefile(text, "hw/Makefile.objs") for o in a.objects}
    assert by_object["hw/virtio-pci.o"].symbols == ("CONFIG_VIRTIO_PCI",)
    assert by_object["hw/ivshmem.o"].symbols == ("CONFIG_PCI", "CONFIG_KVM")
    assert by_object["hw/a.o"].symbols == ("CONFIG_SOFTMMU",)
    assert by_object["hw/b.o"].symbols == ()
    assert by_object["hw/adlib.o"].base == "sound-obj"
    assert by_object["hw/kvm-stub.o"].symbols == ()
    references = [a for a in parse_makefile(text, "hw/Makefile.objs") if a.references]
    assert references[0].references == ["sound-obj"]


def test_makefile_per_target_list_and_target_variables():
    text = "obj-i386-y += vga.o\nobj-y += target-$(TARGET_BASE_ARCH)/\nobj-$(TARGET_I386) += vm86.o\n"
    assignments = parse_makefile(text, "Makefile.target")
    assert assignments[0].base == "obj-i386"
    assert assignments[1].directories == ["target-@ARCH@"]
    assert assignments[2].symbols == ("TARGET_I386",)


@pytest.mark.parametrize("directive, argument, expected", [
    ("ifdef", "CONFIG_LINUX_USER", ("CONFIG_LINUX_USER",)),
    ("ifeq", "($(CONFIG_PCI), y)", ("CONFIG_PCI",)),
    ("ifeq", "($(CONFIG_VIRTIO)$(CONFIG_VIRTFS)$(CONFIG_PCI),yyy)",
     ("CONFIG_VIRTIO", "CONFIG_VIRTFS", "CONFIG_PCI")),
    ("ifeq", "($(TARGET_BASE_ARCH), i386)", ("TARGET_I386",)),
    ("ifneq", "($(TARGET_ARCH), sparc64)", None),
    ("ifndef", "CONFIG_KVM", None),
    ("ifeq", "($(TRACE_BACKEND),dtrace)", None),
])
def test_makefile_block_condition(directive, argument, expected):
    assert block_condition(directive, argument) == expected


def test_default_config_follows_includes(tmp_path):
    (tmp_path / "pci.mak").write_text("CONFIG_PCI=y\nCONFIG_VIRTIO_PCI=y\n")
    (tmp_path / "arm-softmmu.mak").write_text(
        "# comment\ninclude pci.mak\nCONFIG_ARM_GIC_KVM=$(CONFIG_KVM)\nCONFIG_VGA=n\n")
    assert read_make_config(tmp_path, tmp_path / "arm-softmmu.mak") == {
        "CONFIG_PCI": "y", "CONFIG_VIRTIO_PCI": "y", "CONFIG_ARM_GIC_KVM": "$(CONFIG_KVM)", "CONFIG_VGA": "n"}


# --- meson reader ---------------------------------------------------------------------

def test_meson_statements_join_brackets_and_drop_comments():
    text = ("system_ss.add(when: 'CONFIG_X', if_true: files(  # why\n  'a.c',\n  'b.c',\n))\n"
            "if config_all_devices.has_key('CONFIG_A') or \\\n   config_all_devices.has_key('CONFIG_B')\n"
            "  x = '#not a comment'\nendif\n")
    assert statements(text) == [
        "system_ss.add(when: 'CONFIG_X', if_true: files(  \n  'a.c',\n  'b.c',\n))",
        "if config_all_devices.has_key('CONFIG_A') or     config_all_devices.has_key('CONFIG_B')",
        "x = '#not a comment'",
        "endif",
    ]


def test_meson_statements_keep_multi_line_and_unterminated_strings_whole():
    text = "x = '''a\n(b\n'''\ny = files('c.c',\n 'd\\'.c')\nz = 'open ( \nw = 1\n"
    assert statements(text) == [
        "x = '''a\n(b\n'''",
        "y = files('c.c',\n 'd\\'.c')",
        "z = 'open ( \nw = 1",  # the rest of the file: meson would refuse it, the reader must not hang or split it
    ]


def test_meson_split_arguments():
    assert split_arguments("when: ['CONFIG_KVM', 'CONFIG_XICS'], if_true: files('a.c', 'b,c.c')") == [
        "when: ['CONFIG_KVM', 'CONFIG_XICS']", "if_true: files('a.c', 'b,c.c')"]


@pytest.mark.parametrize("expression, expected", [
    (" config_all_devices.has_key('CONFIG_APIC') or config_all_devices.has_key('CONFIG_I8259')",
     Condition(("CONFIG_APIC", "CONFIG_I8259"), any_of=True)),
    (" dbus_display and config_all_devices.has_key('CONFIG_VGA')", Condition(("CONFIG_VGA",))),
    (" 'CONFIG_TCG' in config_all_accel", Condition(("CONFIG_TCG",))),
    (" 'CONFIG_TCG' not in config_all_accel", None),
    (" have_system or config_all_devices.has_key('CONFIG_X')", None),
    (" host_os == 'linux'", None),
])
def test_meson_if_condition(expression, expected):
    assert if_condition(expression) == expected


# --- Kconfig reader -------------------------------------------------------------------

def test_kconfig_expression():
    assert parse_expression("MIPS64 && !TARGET_BIG_ENDIAN") == (
        "and", ("sym", "MIPS64"), ("not", ("sym", "TARGET_BIG_ENDIAN")))
    assert parse_expression("A || (B && C)") == ("or", ("sym", "A"), ("and", ("sym", "B"), ("sym", "C")))
    assert parse_expression("A &&") is None
    assert parse_expression("A = y") is None


def test_kconfig_clauses():
    symbols = {}
    sourced = parse_kconfig(
        "source i386/Kconfig\n\nconfig PSERIES\n    bool\n    default y\n    depends on PPC64 && FDT\n"
        "    imply PCI_DEVICES\n    select XICS\n    select VFIO if LINUX  # comment\n"
        "config VIRTIO_PCI\n    bool\n    default y if PCI_DEVICES\n", "hw/ppc/Kconfig", symbols)
    assert sourced == ["i386/Kconfig"]
    assert symbols["PSERIES"].defaults == [None]
    assert symbols["PSERIES"].depends == [("and", ("sym", "PPC64"), ("sym", "FDT"))]
    assert symbols["XICS"].selected_by == [("PSERIES", None)]
    assert symbols["VFIO"].selected_by == [("PSERIES", ("sym", "LINUX"))]
    assert symbols["PCI_DEVICES"].implied_by == [("PSERIES", None)]
    assert symbols["VIRTIO_PCI"].defaults == [("sym", "PCI_DEVICES")]


def _write_tree(root: Path, files: dict[str, str]) -> None:
    for relpath, text in files.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_kconfig_depends_on_limits_and_endianness_is_per_target(tmp_path):
    _write_tree(tmp_path, {
        "Kconfig": "source Kconfig.host\nsource target/Kconfig\nsource hw/Kconfig\n",
        "Kconfig.host": "config KVM\n    bool\n",
        "target/Kconfig": "config MIPS64\n    bool\nconfig PPC64\n    bool\nconfig TARGET_BIG_ENDIAN\n    bool\n",
        "hw/Kconfig": ("config LE_BOARD\n    bool\n    default y\n    depends on MIPS64 && !TARGET_BIG_ENDIAN\n"
                       "    select LE_DEVICE\nconfig LE_DEVICE\n    bool\n"
                       "config KVM_DEVICE\n    bool\n    default y\n    depends on KVM && PPC64\n"
                       "config ORPHAN\n    bool\n"),
        "configs/devices/mips64el-softmmu/default.mak": "",
        "configs/devices/mips64-softmmu/default.mak": "",
        "configs/devices/ppc64-softmmu/default.mak": "",
        "configs/targets/mips64el-softmmu.mak": "TARGET_ARCH=mips64\n",
        "configs/targets/mips64-softmmu.mak": "TARGET_ARCH=mips64\nTARGET_BIG_ENDIAN=y\n",
        "configs/targets/ppc64-softmmu.mak": "TARGET_ARCH=ppc64\nTARGET_BIG_ENDIAN=y\n",
    })
    space = KconfigSpace(tmp_path, frozenset(ARCH_FAMILIES))
    assert "LE_DEVICE" in space.enabled["mips64el-softmmu"]
    assert "LE_DEVICE" not in space.enabled["mips64-softmmu"]
    assert space.families("CONFIG_LE_DEVICE") == frozenset({"mips"})
    assert space.families("CONFIG_KVM_DEVICE") == frozenset({"ppc"})
    assert space.families("CONFIG_KVM") is None  # a host input: no restriction
    assert space.families("CONFIG_ORPHAN") == frozenset()  # a device nothing enables
    assert space.families("CONFIG_LINUX_USER") is None  # not a Kconfig symbol
    assert "selected by LE_BOARD" in space.explain("CONFIG_LE_DEVICE")


# --- the fixture trees ----------------------------------------------------------------

@pytest.fixture(scope="module")
def q2012() -> ScopeResolver:
    return ScopeResolver(FIXTURES / "qemu-2012")


@pytest.fixture(scope="module")
def qcurrent() -> ScopeResolver:
    return ScopeResolver(FIXTURES / "qemu-current")


@pytest.mark.parametrize("path, label, reason_parts", [
    ("cpus.c", "common", ["Makefile.target", "obj-y", "every target"]),
    ("kvm-all.c", "common", ["Makefile.target", "obj-$(CONFIG_KVM)", "every target"]),
    ("kvm-stub.c", "common", ["Makefile.target"]),
    ("hw/virtio-pci.c", "common", ["hw/Makefile.objs", "hw-obj-$(CONFIG_VIRTIO_PCI)",
                                   "x86, arm, ppc", "default-configs",
                                   "3 KVM architectures"]),
    ("hw/msi.c", "common", ["CONFIG_PCI"]),
    ("hw/msix.c", "common", ["CONFIG_PCI"]),
    ("hw/i8259.c", "common", ["CONFIG_I8259", "x86, ppc", "2 KVM architectures", "common code"]),
    ("hw/pc.c", "x86", ["hw/i386/Makefile.objs", "added with ../ prefix"]),
    ("hw/pc_piix.c", "x86", ["hw/i386/Makefile.objs", "added with ../ prefix"]),
    ("hw/hpet.c", "x86", ["CONFIG_HPET can be enabled only for x86", "i386-softmmu.mak"]),
    ("hw/kvm/clock.c", "x86", ["hw/kvm/Makefile.objs", "built only for x86", "hw/i386/Makefile.objs"]),
    ("hw/kvm/clock.h", "x86", ["hw/kvm/", "hw/i386/Makefile.objs"]),
    ("hw/a15mpcore.c", "arm", ["hw/arm/Makefile.objs"]),
    ("hw/xics.c", "ppc", ["hw/ppc/Makefile.objs", "obj-$(CONFIG_PSERIES)"]),
    ("device_tree.c", "common", ["hw/arm/Makefile.objs", "hw/ppc/Makefile.objs", "2 KVM architectures"]),
    ("target-i386/kvm.c", "x86", ["target-i386/", "by path", "target-i386/Makefile.objs"]),
    ("target-ppc/kvm.c", "ppc", ["target-ppc/"]),
    ("target-ppc/kvm_ppc.h", "ppc", ["target-ppc/"]),
    ("target-arm/cpu.c", "arm", ["target-arm/"]),
    ("kvm.h", "common", ["header", "generic path"]),
    ("hw/usb/hcd-ohci.c", "common", ["no build rule found", "generic path"]),
])
def test_scope_2012_fixture(q2012, path, label, reason_parts):
    scope = q2012.scope_of(path)
    assert scope.label == label, scope.reason
    for part in reason_parts:
        assert part in scope.reason


@pytest.mark.parametrize("path, label, reason_parts", [
    ("accel/kvm/kvm-all.c", "common", ["accel/kvm/meson.build", "kvm_ss", "specific_ss when CONFIG_KVM",
                                       "every target"]),
    ("accel/kvm/kvm-accel-ops.c", "common", ["kvm_ss"]),
    ("accel/stubs/kvm-stub.c", "common", ["unless CONFIG_KVM (if_false)"]),
    ("include/system/kvm.h", "common", ["header"]),
    ("hw/virtio/virtio-pci.c", "common", ["hw/virtio/meson.build", "system_virtio_ss when CONFIG_VIRTIO_PCI",
                                          "default y", "6 KVM architectures"]),
    ("hw/intc/xics.c", "ppc", ["hw/intc/meson.build", "specific_ss when CONFIG_XICS",
                               "only for ppc", "selected by POWERNV, PSERIES"]),
    ("hw/intc/arm_gicv3_common.c", "arm", ["system_ss when CONFIG_ARM_GIC", "selected by ARM_VIRT"]),
    ("hw/intc/loongarch_pch_pic.c", "loongarch", ["selected by LOONGARCH_VIRT"]),
    ("hw/intc/two_arch_ipi.c", "common", ["CONFIG_TWO_ARCH_IPI", "loongarch, mips",
                                          "selected by LOONGARCH_VIRT, LOONGSON3V",
                                          "2 KVM architectures", "common code"]),
    ("hw/intc/irq_count.c", "common", ["`if` on CONFIG_APIC or CONFIG_XICS", "2 KVM architectures (x86, ppc)"]),
    ("hw/intc/xics_kvm.c", "ppc", ["CONFIG_KVM and CONFIG_XICS"]),
    ("hw/intc/s390_flic.c", "s390x", ["selected by S390X, S390_CCW_VIRTIO"]),
    ("hw/intc/ioapic-stub.c", "common", ["unless CONFIG_IOAPIC (if_false)"]),
    ("hw/i386/pc.c", "x86", ["hw/i386/", "i386_ss when CONFIG_PC", "x86 source set"]),
    ("hw/arm/virt.c", "arm", ["hw/arm/"]),
    ("target/i386/kvm/kvm.c", "x86", ["target/i386/", "i386_kvm_ss", "added to i386_system_ss when CONFIG_KVM"]),
    ("target/i386/kvm/kvm_i386.h", "x86", ["target/i386/"]),
    ("target/arm/kvm.c", "arm", ["target/arm/"]),
    ("target/s390x/kvm/kvm.c", "s390x", ["target/s390x/"]),
])
def test_scope_current_fixture(qcurrent, path, label, reason_parts):
    scope = qcurrent.scope_of(path)
    assert scope.label == label, scope.reason
    for part in reason_parts:
        assert part in scope.reason


@pytest.fixture(scope="module")
def q2019() -> ScopeResolver:
    return ScopeResolver(FIXTURES / "qemu-2019")


@pytest.mark.parametrize("path, label, reason_parts", [
    # ppc-only interrupt controllers: selected only by the pseries machine, through a chain
    ("hw/intc/xics.c", "ppc", ["hw/intc/Makefile.objs", "obj-$(CONFIG_XICS)", "only for ppc",
                               "selected by XICS_SPAPR"]),
    ("hw/intc/xics_kvm.c", "ppc", ["CONFIG_XICS_KVM can be enabled only for ppc"]),
    ("hw/intc/xive.c", "ppc", ["selected by PSERIES"]),
    # PCI: set literally only in s390x's .mak, selected by the other targets' machines
    ("hw/pci/msi.c", "common", ["common-obj-$(CONFIG_PCI)", "x86, arm, ppc, s390x",
                                "selected by PCI_EXPRESS, PC_PCI, PSERIES",
                                "set in default-configs/s390x-softmmu.mak", "4 KVM architectures"]),
    # a device folder enabled by devices-dirs-$(CONFIG_HYPERV), HYPERV implied by the PC machine
    ("hw/hyperv/hyperv.c", "x86", ["hw/hyperv/", "a folder built only for x86", "hw/Makefile.objs"]),
    # s390-only device code in generic folders
    ("hw/vfio/ap.c", "s390x", ["CONFIG_VFIO_AP can be enabled only for s390x"]),
    ("hw/intc/s390_flic_kvm.c", "s390x", ["CONFIG_S390_FLIC_KVM can be enabled only for s390x"]),
    ("hw/intc/ioapic.c", "x86", ["CONFIG_IOAPIC can be enabled only for x86 (selected by PC)"]),
    ("hw/intc/arm_gic.c", "arm", ["selected by ARM_VIRT"]),
    ("hw/intc/arm_gicv3_kvm.c", "arm", ["$(call land,$(CONFIG_ARM_GIC_KVM),$(TARGET_AARCH64))",
                                        "TARGET_AARCH64 is defined only for arm"]),
    ("hw/misc/two_arch_irq.c", "common", ["$(call lor,", "only for ppc", "only for s390x",
                                          "2 KVM architectures"]),
    # the .mak include: pci.mak's PCI_DEVICES reaches i386/x86_64, arm and ppc imply it
    ("hw/misc/pci-testdev.c", "common", ["CONFIG_PCI_TESTDEV can be enabled for x86, arm, ppc"]),
    ("hw/vfio/pci.c", "common", ["x86, arm, ppc, s390x"]),
    ("accel/kvm/kvm-all.c", "common", ["accel/kvm/Makefile.objs", "every target"]),
    ("accel/stubs/kvm-stub.c", "common", ["$(call lnot,$(CONFIG_KVM))", "every target"]),
    ("cpus.c", "common", ["Makefile.target"]),
    ("hw/i386/pc.c", "x86", ["hw/i386/"]),
    ("target/s390x/kvm.c", "s390x", ["target/s390x/"]),
    ("pc-bios/s390-ccw/virtio.c", "outside", ["pc-bios/s390-ccw/Makefile builds", "not part of any emulator"]),
    # a device's header follows the source it declares (include/hw/intc/ioapic.h -> hw/intc/ioapic.c)
    ("include/hw/intc/ioapic.h", "x86", ["header of hw/intc/ioapic.c, which is x86 code",
                                         "CONFIG_IOAPIC can be enabled only for x86"]),
    ("include/hw/pci/msi.h", "common", ["header; generic path"]),  # its source is common
    ("include/sysemu/kvm.h", "common", ["header; generic path"]),  # no source of that name
])
def test_scope_kconfig_make_fixture(q2019, path, label, reason_parts):
    scope = q2019.scope_of(path)
    assert scope.label == label, scope.reason
    for part in reason_parts:
        assert part in scope.reason


def test_kconfig_make_era_reads_kconfig_not_only_the_mak_files(q2019):
    configs = q2019.configs
    assert isinstance(configs, KconfigSpace)
    assert sorted(target.name for target in configs.targets) == [
        "aarch64-softmmu", "arm-softmmu", "i386-softmmu", "ppc64-softmmu", "s390x-softmmu", "x86_64-softmmu"]
    assert "PCI_DEVICES" in configs.enabled["x86_64-softmmu"]  # x86_64 includes i386, which includes pci.mak
    assert "PCI" not in configs.enabled["arm-softmmu"]  # only aarch64 has the virt board
    assert configs.families("CONFIG_HYPERV") == frozenset({"x86"})


def test_compile_units_kconfig_make_fixture(q2019):
    assert q2019.scope_of("hw/intc/arm_gic.c").unit == "target-independent"
    assert q2019.scope_of("hw/pci/msi.c").unit == "target-independent"
    assert q2019.scope_of("hw/intc/xics.c").unit == "per-target"
    assert q2019.scope_of("accel/kvm/kvm-all.c").unit == "per-target"


@pytest.fixture(scope="module")
def q2020() -> ScopeResolver:
    return ScopeResolver(FIXTURES / "qemu-2020")


@pytest.mark.parametrize("path, label, reason_parts", [
    ("hw/intc/xics.c", "ppc", ["specific_ss when CONFIG_XICS", "only for ppc (selected by PSERIES)"]),
    ("hw/intc/xics_kvm.c", "ppc", ["CONFIG_KVM and CONFIG_XICS"]),
    ("hw/intc/arm_gic.c", "arm", ["softmmu_ss when CONFIG_ARM_GIC", "selected by ARM_VIRT"]),
    ("hw/pci/msi.c", "common", ["pci_ss (added to softmmu_ss when CONFIG_PCI)", "x86, arm, ppc",
                                "3 KVM architectures"]),
    # an accelerator symbol is on only where meson.build offers that accelerator
    ("hw/xen/xen_pt.c", "x86", ["CONFIG_XEN can be enabled only for x86",
                                "an accelerator the build offers for i386-softmmu, x86_64-softmmu"]),
    ("accel/kvm/kvm-all.c", "common", ["CONFIG_KVM can be enabled for x86, arm, ppc"]),
    ("hw/ppc/spapr.c", "ppc", ["hw/ppc/", "ppc source set"]),
])
def test_scope_kconfig_meson_default_configs_devices_fixture(q2020, path, label, reason_parts):
    scope = q2020.scope_of(path)
    assert scope.label == label, scope.reason
    for part in reason_parts:
        assert part in scope.reason


def test_accelerators_enable_their_selects_only_on_their_targets(q2020):
    configs = q2020.configs
    assert "PC" in configs.enabled["x86_64-softmmu"]  # default-configs/devices: x86_64 includes i386
    assert "XEN_PCI" in configs.enabled["x86_64-softmmu"]
    assert "XEN_PCI" not in configs.enabled["m68k-softmmu"]  # XEN is no m68k accelerator...
    assert "PCI" not in configs.enabled["m68k-softmmu"]  # ...so it does not bring PCI there
    assert configs.families("CONFIG_PCI") == frozenset({"x86", "arm", "ppc"})


def test_scope_arches(q2012, qcurrent):
    assert qcurrent.scope_of("hw/intc/two_arch_ipi.c").arches == frozenset({"loongarch", "mips"})
    assert qcurrent.scope_of("accel/kvm/kvm-all.c").arches == frozenset()
    assert q2012.scope_of("hw/pc.c").arches == frozenset({"x86"})


def test_32_bit_arm_target_lacks_the_aarch64_machine(qcurrent):
    # arm-softmmu has no ARM_VIRT (it depends on AARCH64), aarch64 includes arm's config
    space = qcurrent.configs
    assert "ARM_VIRT" not in space.enabled["arm-softmmu"]
    assert "ARM_VIRT" in space.enabled["aarch64-softmmu"]


@pytest.mark.parametrize("tree", ["qemu-2012", "qemu-2019", "qemu-2020", "qemu-current"])
def test_every_fixture_file_gets_a_scope_with_a_reason(tree):
    root = FIXTURES / tree
    resolver = ScopeResolver(root)
    for path in root.rglob("*"):
        if path.suffix in (".c", ".h"):
            scope = resolver.scope_of(path.relative_to(root).as_posix())
            assert scope.reason and "\n" not in scope.reason


def test_paths_are_normalised(q2012):
    assert q2012.scope_of("./hw/../hw/pc.c") == q2012.scope_of("hw/pc.c")


# --- compile units ----------------------------------------------------------------------

@pytest.mark.parametrize("path, unit, reason_part", [
    ("cpus.c", "per-target", "Makefile.target: obj-y is compiled per target, with the target's folder"),
    ("kvm-all.c", "per-target", "obj-y is compiled per target"),
    ("hw/pc.c", "per-target", "hw/i386/Makefile.objs: obj-y"),
    ("hw/kvm/clock.c", "per-target", "hw/kvm/Makefile.objs: obj-y"),
    ("target-i386/kvm.c", "per-target", "target-i386/Makefile.objs"),
    ("hw/virtio-pci.c", "target-independent", "hw/Makefile.objs: hw-obj-y is compiled once for all targets"),
    ("hw/msi.c", "target-independent", "hw-obj-y"),
    ("hw/irq.c", "target-independent", "common-obj-y is compiled once"),
    ("kvm.h", None, "not a source file"),
    ("hw/usb/hcd-ohci.c", None, "no build rule"),
])
def test_compile_unit_2012_fixture(q2012, path, unit, reason_part):
    scope = q2012.scope_of(path)
    assert scope.unit == unit, scope.unit_reason
    assert reason_part in scope.unit_reason


@pytest.mark.parametrize("path, unit, reason_part", [
    ("hw/intc/arm_gicv3_common.c", "target-independent", "system_ss is compiled once for all targets"),
    ("hw/intc/irq_count.c", "target-independent", "system_ss"),
    ("hw/virtio/virtio-pci.c", "target-independent", "system_virtio_ss"),
    ("hw/intc/ioapic-stub.c", "target-independent", "system_ss"),  # a stub of a target-independent set
    ("hw/intc/xics.c", "per-target", "specific_ss is compiled per target, with target/<arch>/"),
    ("hw/i386/pc.c", "per-target", "i386_ss is in target_arch, compiled for its architecture only"),
    ("accel/kvm/kvm-all.c", "per-target", "kvm_ss is added only to per-target sets (specific_ss)"),
    ("accel/stubs/kvm-stub.c", "per-target", "system_stubs_ss is added only to per-target sets"),
    ("target/i386/kvm/kvm.c", "per-target", "i386_kvm_ss is added only to per-target sets (i386_system_ss)"),
    ("include/system/kvm.h", None, "not a source file"),
])
def test_compile_unit_current_fixture(qcurrent, path, unit, reason_part):
    scope = qcurrent.scope_of(path)
    assert scope.unit == unit, scope.unit_reason
    assert reason_part in scope.unit_reason


def test_one_target_independent_rule_decides_the_unit(tmp_path):
    _write_tree(tmp_path, {
        "meson.build": "specific_ss = ss.source_set()\nsystem_ss = ss.source_set()\n"
                       "shared_ss = ss.source_set()\nmod_ss = ss.source_set()\n"
                       "target_modules += {'accel': {'tcg': mod_ss}}\n"
                       "specific_ss.add(files('both.c', 'only_specific.c'))\n"
                       "system_ss.add(files('both.c'))\n"
                       "shared_ss.add(files('nested_twice.c'))\n"
                       "specific_ss.add_all(shared_ss)\nsystem_ss.add_all(shared_ss)\n"
                       "mod_ss.add(files('module.c'))\n"
                       "libutil = static_library('util', files('util.c'))\n",
    })
    resolver = ScopeResolver(tmp_path)
    assert resolver.scope_of("only_specific.c").unit == "per-target"
    assert resolver.scope_of("both.c").unit == "target-independent"
    assert resolver.scope_of("nested_twice.c").unit == "target-independent"
    assert resolver.scope_of("module.c").unit == "per-target"
    assert "target_modules" in resolver.scope_of("module.c").unit_reason
    assert resolver.scope_of("util.c").unit == "target-independent"


def test_make_list_pulled_only_into_per_target_lists_is_per_target(tmp_path):
    _write_tree(tmp_path, {
        "Makefile.target": "obj-y += main.o $(helper-obj-y)\nobj-i386-y += pcspk.o\n"
                           "all-obj-y = $(obj-y) $(common-obj-y)\ninclude $(SRC_PATH)/Makefile.objs\n",
        "Makefile.objs": "helper-obj-y += helper.o\ncommon-obj-y += blockdev.o\n"
                         "target-obj-y += trace.o\nshared-obj-y += osdep.o\n"
                         "obj-y += $(shared-obj-y)\ncommon-obj-y += $(shared-obj-y)\n",
    })
    resolver = ScopeResolver(tmp_path)
    assert resolver.scope_of("main.c").unit == "per-target"
    assert resolver.scope_of("pcspk.c").unit == "per-target"
    assert resolver.scope_of("trace.c").unit == "per-target"
    helper = resolver.scope_of("helper.c")
    assert (helper.unit, helper.unit_reason) == ("per-target", "Makefile.objs: helper-obj-y is pulled only "
                                                               "into per-target lists (obj-y)")
    assert resolver.scope_of("blockdev.c").unit == "target-independent"
    assert resolver.scope_of("osdep.c").unit == "target-independent"


def test_scope_command_prints_the_unit():
    from click.testing import CliRunner

    from kvmlint.cli import cli

    root = FIXTURES / "qemu-current"
    result = CliRunner().invoke(cli, ["scope", str(root / "hw/intc/arm_gicv3_common.c"),
                                      str(root / "hw/intc/xics.c")])
    assert result.exit_code == 0, result.output
    lines = dict(line.split(": ", 1) for line in result.output.splitlines())
    assert "compile unit: target-independent (hw/intc/meson.build: system_ss" in lines["hw/intc/arm_gicv3_common.c"]
    assert "compile unit: per-target (hw/intc/meson.build: specific_ss" in lines["hw/intc/xics.c"]


# --- robustness -----------------------------------------------------------------------

def test_tree_without_build_files(tmp_path):
    resolver = ScopeResolver(tmp_path)
    assert resolver.scope_of("foo.c").label == "common"
    assert resolver.scope_of("target/arm/kvm.c").label == "arm"


def test_odd_build_files_never_raise(tmp_path):
    _write_tree(tmp_path, {
        "meson.build": "subdir('hw')\nsubdir('missing')\nfoo.add(when: , if_true: files('\n",
        "hw/meson.build": "subdir('..')\nsystem_ss.add(when: 'CONFIG_X', if_true: files('a.c'))\n"
                          "if not\nelse\nendif\nendif\nendforeach\n",
        "Kconfig": "source Kconfig\nsource nowhere/Kconfig\nconfig X\n  bool\n  depends on (A &&\n"
                   "  select\n  default y if ((\n",
        "configs/devices/arm-softmmu/default.mak": "include default.mak\nCONFIG_X=y\ngarbage\n",
        "configs/targets/arm-softmmu.mak": "\x00\xff",
    })
    (tmp_path / "hw" / "binary.build").write_bytes(b"\xff\xfe\x00")
    resolver = ScopeResolver(tmp_path)
    assert resolver.scope_of("hw/a.c").label == "arm"
    assert resolver.scope_of("b.c").label == "common"


def test_odd_makefiles_never_raise(tmp_path):
    _write_tree(tmp_path, {
        "Makefile.objs": "common-obj-y += hw/ ../outside/ $(shell ls) \\\n",
        "Makefile.target": "obj-$(call land, $(A),$(B)) += x.o\nifeq (\nelse\nendif\nendif\n"
                           "obj-y += target-$(TARGET_BASE_ARCH)/ hw/\n",
        "hw/Makefile.objs": "obj-y += hw/\nhw-obj-$(CONFIG_Y += y.o\n",
        "default-configs/i386-softmmu.mak": "include i386-softmmu.mak\nCONFIG_Y=y\n",
    })
    resolver = ScopeResolver(tmp_path)
    assert resolver.scope_of("x.c").label == "common"
    assert resolver.scope_of("hw/y.c").common


# --- a real QEMU tree, when one is given ----------------------------------------------

REAL_TREE = os.environ.get("KVMLINT_QEMU_TREE")


@pytest.fixture(scope="module")
def resolver() -> ScopeResolver:
    return ScopeResolver(Path(REAL_TREE))


@pytest.fixture(scope="module")
def era() -> str:
    root = Path(REAL_TREE)
    if (root / "meson.build").is_file() and (root / "target").is_dir():
        return "current"
    if (root / "hw" / "intc").is_dir():
        return "2014"
    if (root / "target-i386").is_dir():
        return "2012"
    pytest.skip("unrecognised QEMU layout")


def _assert_labels(resolver: ScopeResolver, facts: dict[str, str]) -> None:
    """Every listed file that exists in the tree has the expected label."""
    wrong = {}
    for path, label in facts.items():
        if not (Path(REAL_TREE) / path).exists():
            continue
        scope = resolver.scope_of(path)
        if scope.label != label:
            wrong[path] = (scope.label, scope.reason)
    assert not wrong


@pytest.mark.skipif(not REAL_TREE, reason="set KVMLINT_QEMU_TREE to a QEMU checkout")
class TestRealTree:
    """The scope facts a maintainer would check, for whichever era the tree is."""

    def test_facts(self, resolver, era):
        if era == "2012":
            _assert_labels(resolver, {
                "cpus.c": "common", "kvm-all.c": "common", "hw/virtio-pci.c": "common",
                "hw/pc.c": "x86", "hw/pc_piix.c": "x86", "hw/kvmvapic.c": "x86", "target-i386/kvm.c": "x86",
                "hw/kvm/clock.c": "x86", "hw/kvm/apic.c": "x86", "hw/kvm/i8259.c": "x86",
                "hw/kvm/ioapic.c": "x86", "hw/kvm/i8254.c": "x86",
                "hw/a15mpcore.c": "arm", "hw/xics.c": "ppc",
            })
        elif era == "2014":
            _assert_labels(resolver, {
                "hw/cpu/a15mpcore.c": "arm", "hw/virtio/virtio-pci.c": "common", "kvm-all.c": "common",
                "hw/intc/xics.c": "ppc", "hw/intc/xics_kvm.c": "ppc",
            })
        if era != "2012":  # the classes of the Kconfig era, where the files exist
            _assert_labels(resolver, {
                "hw/intc/xive.c": "ppc", "hw/intc/spapr_xive_kvm.c": "ppc", "hw/intc/s390_flic_kvm.c": "s390x",
                "hw/vfio/ap.c": "s390x", "hw/vfio/ccw.c": "s390x", "hw/hyperv/hyperv.c": "x86",
                "hw/pci/pci.c": "common", "hw/pci/msi.c": "common", "hw/pci/msix.c": "common",
                "pc-bios/s390-ccw/virtio.c": "outside", "pc-bios/s390-ccw/virtio-ccw.c": "outside",
            })
        else:
            _assert_labels(resolver, {
                "hw/intc/xics.c": "ppc", "hw/intc/arm_gicv3_common.c": "arm", "hw/intc/arm_gic_common.c": "arm",
                "hw/intc/loongarch_pch_pic.c": "loongarch", "hw/intc/riscv_aplic.c": "riscv",
                "hw/intc/spapr_xive.c": "ppc", "hw/cpu/a15mpcore.c": "arm", "hw/i386/pc.c": "x86",
                "target/i386/kvm/kvm.c": "x86", "hw/virtio/virtio-pci.c": "common",
                "accel/kvm/kvm-all.c": "common", "include/system/kvm.h": "common",
                "hw/intc/loongson_ipi_common.c": "common",
            })
            ipi = resolver.scope_of("hw/intc/loongson_ipi_common.c")
            if (Path(REAL_TREE) / "hw/intc/loongson_ipi_common.c").exists():
                assert ipi.arches == frozenset({"loongarch", "mips"})
                assert "2 KVM architectures" in ipi.reason

    def test_every_x86_machine_file_is_x86(self, resolver, era):
        folder = Path(REAL_TREE) / "hw" / "i386"
        if era != "current" or not folder.is_dir():
            pytest.skip("hw/i386/ holds sources only in the current layout")
        labels = {resolver.scope_of(p.relative_to(REAL_TREE).as_posix()).label for p in folder.rglob("*.c")}
        assert labels == {"x86"}

    def test_whole_tree_is_fast(self, era):
        started = time.perf_counter()
        resolver = ScopeResolver(Path(REAL_TREE))
        for folder, dirs, names in os.walk(REAL_TREE):
            dirs[:] = [d for d in dirs if d != ".git"]
            for name in names:
                if name.endswith((".c", ".h")):
                    resolver.scope_of(os.path.relpath(os.path.join(folder, name), REAL_TREE))
        assert time.perf_counter() - started < 3.0
