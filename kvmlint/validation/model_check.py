"""Validation of planned change sets against the model, before anything is written.

The engine has already re-parsed every changed file; here each expression a
change set rewrites is checked again with the model, so a change set whose
rewrite the model cannot prove safe is refused (unless unsafe fixes are wanted).
"""

from __future__ import annotations

from kvmlint.codemods.engine import Plan, Refusal


def validate_plan(plan: Plan, analysis, unsafe: bool = False) -> Plan:
    from kvmlint.model import validate

    kept = []
    for change_set in plan.accepted:
        problems = []
        for old, new in change_set.expression_checks:
            verdict = validate(analysis.model, old, new)
            if not verdict.identical_on("x86"):
                problems.append(f"'{old}' -> '{new}' changes behaviour on x86")
        if problems and not unsafe:
            plan.refused.append(Refusal(change_set, "; ".join(problems)))
        else:
            kept.append(change_set)
    plan.accepted = kept
    return plan
