"""The names whose uses the rules judge, for telling a lost parse that matters from one that does not."""

from __future__ import annotations

from kvmlint.rules.kvm001_irqchip_proxy import PROXY
from kvmlint.rules.kvm002_arch_helper_in_common import is_common_kvm_file


def names_rules_read(analysis) -> set[str]:
    """The names whose uses the rules judge: the proxy, and everything the
    common KVM files define (KVM002 and KVM003 count their callers)."""
    defined = {
        name for name, located in analysis.index.definitions.items()
        if any(is_common_kvm_file(analysis, place.path) for place in located)
    }
    return defined | {PROXY}
