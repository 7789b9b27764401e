"""Stage 4, model: the bundled semantic model of each architecture's interrupt behaviour (data in `data/`).

Takes expressions over KVM predicates and the era of the tree; hands on each
expression's value per architecture and configuration, the proposal for a
site and the validation of a rewrite.

Decisions worth knowing:

- Values follow what QEMU's own flags say (the setters), per era: "current" is QEMU b428fe0362,
  "2012" is July 2012 just after upstream's series 7ae26bd48..96fda35ac, with the thread's
  statements for the ARM port then in review.  Every formula cites its source in the TOML.
- A predicate that is one arch's own concept (`arch = "x86"` in predicates.toml:
  kvm_allows_irq0_override, kvm_ioapic/pic/pit_in_kernel) is n/a elsewhere: `Model.predicate`
  returns None.  Validation skips configurations where the OLD expression is n/a (that code does
  not run there) and counts a NEW expression that becomes n/a as a difference no site needs.
  kvm_irqchip_is_split lives in the common header, so it is false (never set) off x86.
- Sub-expressions the model does not know are free symbols; validation enumerates them.
- A rewrite is safe when it is identical on x86 and, elsewhere, every difference gives the value
  of the condition with the proxy replaced by the predicate the site needs (see validation.py).
"""

from kvmlint.model.drift import Drift, format_drift, verify
from kvmlint.model.evidence import Proposal, legitimate_question, propose
from kvmlint.model.expression import ExpressionError
from kvmlint.model.machines import machine_arch
from kvmlint.model.semantics import Configuration, IrqchipSettings, Model, infer_era, load_model
from kvmlint.model.tables import format_model_table, format_validation_table
from kvmlint.model.validation import Difference, Validation, validate
from kvmlint.model.vocabulary import capability_arches, concept_arch

__all__ = [
    "Configuration", "Difference", "Drift", "ExpressionError", "IrqchipSettings", "Model", "Proposal",
    "Validation", "capability_arches", "concept_arch", "format_drift", "format_model_table",
    "format_validation_table", "infer_era", "legitimate_question", "load_model", "machine_arch", "propose", "validate", "verify",
]
