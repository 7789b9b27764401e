"""Plain-text tables for `kvmlint validate` and `kvmlint model`."""

from __future__ import annotations

from kvmlint.model import expression as ex
from kvmlint.model.semantics import IRQCHIP, Configuration, Model
from kvmlint.model.validation import Validation
from kvmlint.terminal import for_terminal


def _table(header: list[str], rows: list[list[str]], indent: str = "  ") -> list[str]:
    rows = [[for_terminal(cell) for cell in row] for row in rows]  # conditions copied from a tree
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
    lines = []
    for row in [header] + rows:
        lines.append(indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return lines


def format_validation_table(validation: Validation) -> str:
    lines = [f"old: {for_terminal(validation.old)}", f"new: {for_terminal(validation.new)}"]
    if validation.needed is not None:
        lines.append(f"needed: {for_terminal(validation.needed)}")
    lines.append(f"model: {validation.era}")
    for result in validation.results:
        lines += ["", result.verdict()]
        header = ["configuration", "old", "new"] + (["needed"] if validation.needed else []) + [""]
        rows = []
        for row in result.rows:
            mark = "n/a" if not row.applicable else ("differs" if row.differences else "")
            needed = [row.needed] if validation.needed else []
            rows.append([row.configuration.label, row.old, row.new] + needed + [mark])
        lines += _table(header, rows)
    verdict = "safe" if validation.safe else "not safe"
    if validation.needed is None and not validation.identical:
        verdict += " (differs, and no site need was given: pass --needs to check the direction)"
    lines += ["", f"verdict: {verdict}"]
    return "\n".join(lines) + "\n"


def format_model_table(model: Model, arch: str | None = None) -> str:
    """Each arch's predicates by kernel_irqchip setting; other facts stay symbolic in the cells."""
    lines = []
    for name in [arch] if arch else model.arches:
        settings = model.valid_irqchip_settings(name)
        lines.append(f"{name} ({model.era}): kernel_irqchip {' | '.join(settings.values)} (default {settings.default})")
        for value, reason in settings.rejected.items():
            lines.append(f"  rejects {value}: {reason}")
        for value, note in settings.notes.items():
            lines.append(f"  {value}: {note}")
        others = [fact for fact in model.facts_of(name) if fact != IRQCHIP]
        if others:
            lines.append(f"  other facts: {', '.join(others)}")
        rows = [[predicate] + [_cell(model, name, predicate, setting) for setting in settings.values]
                for predicate in model.predicates]
        lines += _table(["predicate"] + list(settings.values), rows)
        lines.append("")
    return "\n".join(lines)


def _cell(model: Model, arch: str, predicate: str, setting: str) -> str:
    """The predicate's value at this setting, or its residual formula where other facts decide."""
    formula = model.formula(arch, predicate)
    if formula is None:
        return "n/a"
    configs = [c for c in model.configurations(arch) if c[IRQCHIP] == setting]
    values = {model.predicate(arch, predicate, c) for c in configs}
    if len(values) == 1:
        return ex.render(values.pop())
    return ex.render(model.evaluate(arch, f"{predicate}()", Configuration(((IRQCHIP, setting),))))
