"""Which header changes the compiler's front end alone can check (kvmlint.validation.change_kind)."""

from __future__ import annotations

import pytest

from kvmlint.validation.change_kind import AddedInclude, classify

HEADER = b"""#ifndef QEMU_KVM_H
#define QEMU_KVM_H

#include "qemu-common.h"

typedef struct KVMState KVMState;

/**
 * kvm_has_gsi_routing: whether the kernel routes GSIs
 */
int kvm_has_gsi_routing(void);

#ifdef NEED_CPU_H
int kvm_arch_init(KVMState *s);

int kvm_allows_irq0_override(void);
#endif /* NEED_CPU_H */

#define kvm_irqchip_in_kernel() (kvm_kernel_irqchip)

static inline int kvm_irqfds_enabled(void)
{
    return 1;
}
#endif
"""


def changed(old: bytes, new: bytes) -> bytes:
    assert old in HEADER
    return HEADER.replace(old, new)


@pytest.mark.parametrize("after", [
    pytest.param(changed(b"\nint kvm_allows_irq0_override(void);\n", b"\n"), id="prototype moved out of an #ifdef"),
    pytest.param(changed(b"/**\n * kvm_has_gsi_routing: whether the kernel routes GSIs\n */\nint kvm_has_gsi_routing(void);\n", b""),
                 id="prototype with its kernel-doc"),
    pytest.param(changed(b"int kvm_allows_irq0_override", b"bool kvm_allows_irq0_override"), id="int to bool"),
    pytest.param(changed(b"typedef struct KVMState KVMState;\n",
                         b"typedef struct KVMState KVMState;\nstruct kvm_lapic_state;\nextern bool kvm_allowed;\n"),
                 id="forward struct and extern variable"),
    pytest.param(changed(b"whether the kernel", b"whether KVM"), id="comment"),
])
def test_declaration_changes_are_no_code(after):
    assert classify(HEADER, after).no_code


@pytest.mark.parametrize("after", [
    pytest.param(changed(b"return 1;", b"return 0;"), id="inline body"),
    pytest.param(changed(b'#include "qemu-common.h"\n', b""), id="removed include"),
    pytest.param(changed(b"#ifdef NEED_CPU_H\n", b"#ifdef CONFIG_KVM\n"), id="conditional directive"),
    pytest.param(changed(b"int kvm_has_gsi_routing(void);", b"G_NORETURN void kvm_has_gsi_routing(void);"),
                 id="attribute macro"),
    pytest.param(changed(b"int kvm_has_gsi_routing(void);", b"int kvm_has_gsi_routing(void) __attribute__((pure));"),
                 id="__attribute__"),
    pytest.param(changed(b"int kvm_has_gsi_routing(void);", b"static int kvm_has_gsi_routing(void);"),
                 id="static prototype"),
    pytest.param(changed(b"int kvm_has_gsi_routing(void);", b"int (*kvm_has_gsi_routing)(void);"),
                 id="function pointer variable"),
    pytest.param(changed(b"typedef struct KVMState KVMState;", b"typedef struct KVMState { int fd; } KVMState;"),
                 id="struct body"),
    pytest.param(changed(b"#endif /* NEED_CPU_H */\n", b"#endif /* NEED_CPU_H */\nint kvm_irqchip;\n"),
                 id="tentative definition"),
])
def test_code_changes_are_code(after):
    assert not classify(HEADER, after).no_code


def test_an_added_include_is_reported_for_each_unit_to_check():
    after = changed(b'#include "qemu-common.h"\n', b'#include "qemu-common.h"\n#include <linux/kvm.h>\n')
    kind = classify(HEADER, after)
    assert kind.no_code
    assert kind.added_includes == (AddedInclude("linux/kvm.h", quoted=False),)


def test_a_new_header_of_declarations_has_no_code_and_names_its_macros():
    header = b'#ifndef KVM_I386_H\n#define KVM_I386_H\n\n#include "kvm.h"\n\nbool kvm_allows_irq0_override(void);\n\n#endif\n'
    kind = classify(None, header)
    assert kind.no_code and kind.added_includes == (AddedInclude("kvm.h", quoted=True),)
    assert kind.macros == frozenset(), "an include guard is no macro a unit could use"
    with_macro = classify(None, header.replace(b"\n#endif", b"#define KVM_I386_IRQ0 1\n#endif"))
    assert with_macro.no_code and with_macro.macros == {"KVM_I386_IRQ0"}
    assert not classify(None, b"int kvm_allows_irq0_override(void) { return 1; }\n").no_code


@pytest.mark.parametrize(("after", "names"), [
    pytest.param(changed(b"(kvm_kernel_irqchip)", b"(kvm_kernel_irqchip && kvm_allowed)"), {"kvm_irqchip_in_kernel"},
                 id="redefined"),
    pytest.param(changed(b"#define kvm_irqchip_in_kernel() (kvm_kernel_irqchip)\n",
                         b"#define kvm_irqchip_in_kernel() (kvm_kernel_irqchip)\n"
                         b"#define kvm_irqfds_enabled_flag \\\n    (kvm_irqfds_allowed)\n"), {"kvm_irqfds_enabled_flag"},
                 id="added over two lines"),
    pytest.param(changed(b"#define kvm_irqchip_in_kernel() (kvm_kernel_irqchip)\n", b""), {"kvm_irqchip_in_kernel"},
                 id="removed"),
    pytest.param(changed(b"#endif /* NEED_CPU_H */\n", b"#endif /* NEED_CPU_H */\n#undef kvm_irqchip_in_kernel\n"),
                 {"kvm_irqchip_in_kernel"}, id="undefined"),
])
def test_a_changed_macro_is_named_for_the_preprocessor_to_judge(after, names):
    kind = classify(HEADER, after)
    assert kind.no_code and kind.macros == names


def test_a_declaration_on_the_line_of_code_is_code():
    after = changed(b"int kvm_has_gsi_routing(void);", b"int kvm_has_gsi_routing(void); static int x = 1;")
    assert not classify(HEADER, after).no_code


def test_an_unchanged_file_is_no_code():
    assert classify(HEADER, HEADER).no_code


def test_a_comment_after_an_added_include_does_not_hide_it():
    after = changed(b'#include "qemu-common.h"\n', b'#include "qemu-common.h"\n#include "hw/irq.h" /* qemu_irq */\n')
    assert classify(HEADER, after).added_includes == (AddedInclude("hw/irq.h", quoted=True),)
