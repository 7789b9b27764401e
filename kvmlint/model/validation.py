"""Validate a rewrite `old -> new` arch by arch, configuration by configuration.

Both expressions are reduced on every configuration of every architecture (projected onto the
facts they depend on); what the model does not know stays a free leaf, and the free leaves are
enumerated.  Where the old expression is n/a (it asks an arch-specific predicate on another arch)
the code cannot run there, so that configuration is skipped; a new expression that is n/a where
the old one was defined is a difference that no site needs.

Safety: identical on x86, where the proxy came from, and every difference elsewhere
in the direction the site needs.  What the site needs is `needed`: the condition with the proxy
replaced by the predicate the evidence says the site asks about; the model's value of it is the
truth there, so a difference is "as needed" exactly when new == needed.  Without `needed`, only a
rewrite identical everywhere is safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

from kvmlint.model import expression as ex
from kvmlint.model.semantics import Configuration, Model

MAX_FREE_SYMBOLS = 12  # 4096 assignments per configuration: real conditions have a handful
REFERENCE_ARCH = "x86"


@dataclass(frozen=True)
class Difference:
    arch: str
    configuration: Configuration
    assignment: tuple[tuple[str, bool], ...]  # free symbol -> value
    old: object
    new: object
    needed: object = None  # the model's truth here; None when the site's need is unknown

    @property
    def as_needed(self) -> bool:
        return self.needed is not None and self.new is not ex.NA and _same(self.new, self.needed)

    def describe(self) -> str:
        where = [self.configuration.label] + [f"{name}={int(value)}" for name, value in self.assignment]
        return f"{', '.join(where)}: {ex.render(_truth(self.old))} -> {ex.render(_truth(self.new))}"


@dataclass(frozen=True)
class Row:
    configuration: Configuration
    old: str  # the reduced old expression: a value, or the residual over free symbols
    new: str
    needed: str | None
    differences: tuple[Difference, ...]
    applicable: bool = True  # False where the old expression is n/a: the code cannot run there


@dataclass(frozen=True)
class ArchResult:
    """One arch's rows.  Results are shared by every site that validates the same rewrite
    (see `validate`), so what is derived from the rows is computed once."""

    arch: str
    rows: tuple[Row, ...]

    @cached_property
    def differences(self) -> tuple[Difference, ...]:
        return tuple(d for row in self.rows for d in row.differences)

    @property
    def identical(self) -> bool:
        return not self.differences

    @cached_property
    def applicable(self) -> bool:
        return any(row.applicable for row in self.rows)

    @cached_property
    def as_needed(self) -> bool:
        return all(d.as_needed for d in self.differences)

    def verdict(self) -> str:
        return self._verdict

    @cached_property
    def _verdict(self) -> str:
        total = sum(row.applicable for row in self.rows)
        if not self.applicable:
            return f"{self.arch}: n/a (the old expression does not apply to {self.arch})"
        if self.identical:
            return f"{self.arch}: identical in all {total} configuration{'s' * (total != 1)}"
        differing = [row for row in self.rows if row.differences]
        shown = "; ".join(row.differences[0].describe() for row in differing[:2])
        more = f"; and {len(differing) - 2} more" if len(differing) > 2 else ""
        text = f"{self.arch}: differs in {len(differing)} of {total}: {shown}{more}"
        if differing[0].differences[0].needed is not None:
            text += " (as the site needs)" if self.as_needed else " (NOT as the site needs)"
        return text


@dataclass(frozen=True)
class Validation:
    era: str
    old: str
    new: str
    needed: str | None
    results: tuple[ArchResult, ...]

    def result(self, arch: str) -> ArchResult:
        for result in self.results:
            if result.arch == arch:
                return result
        raise KeyError(arch)

    def identical_on(self, arch: str) -> bool:
        return self.result(arch).identical

    @property
    def identical(self) -> bool:
        return all(result.identical for result in self.results)

    @property
    def safe(self) -> bool:
        if self.needed is None:
            return self.identical
        return all(
            result.identical if result.arch == REFERENCE_ARCH else result.as_needed
            for result in self.results
        )

    def differences(self) -> tuple[Difference, ...]:
        return tuple(d for result in self.results for d in result.differences)

    @property
    def unsafe_reason(self) -> str:
        """Why the rewrite is not safe, as a clause; "" when it is."""
        if self.safe:
            return ""
        changed = [r.arch for r in self.results if r.applicable and not r.identical]
        if REFERENCE_ARCH in changed:
            return f"the rewrite changes the answer on {REFERENCE_ARCH}, where the old one is right"
        if self.needed is None:
            return f"the model cannot tell what the site needs, and the rewrite changes {', '.join(changed)}"
        wrong = [r.arch for r in self.results if r.arch != REFERENCE_ARCH and not r.as_needed]
        return f"on {', '.join(wrong)} the rewrite changes the answer otherwise than the site needs"

    def verdict(self) -> str:
        """One line for a finding message: each arch, briefly."""
        return self._verdict

    @cached_property
    def _verdict(self) -> str:
        parts = []
        for result in self.results:
            if not result.applicable:
                parts.append(f"{result.arch} n/a")
            elif result.identical:
                parts.append(f"{result.arch} identical")
            else:
                count = sum(bool(row.differences) for row in result.rows)
                note = "" if self.needed is None else (" as needed" if result.as_needed else " NOT as needed")
                parts.append(f"{result.arch} differs in {count} configuration{'s' * (count != 1)}{note}")
        return ("safe: " if self.safe else "unsafe: ") + ", ".join(parts)


def validate(model: Model, old: str, new: str, arches=None, needed: str | None = None) -> Validation:
    """Compare `old` and `new` on every configuration of `arches` (default: all of the era's).

    Validations are immutable and depend only on these inputs, so a tree with thousands of
    sites asking the same condition pays for it once."""
    return _validate(model, old, new, None if arches is None else tuple(arches), needed)


@lru_cache(maxsize=4096)
def _validate(model: Model, old: str, new: str, arches: tuple[str, ...] | None, needed: str | None) -> Validation:
    for text in (old, new) if needed is None else (old, new, needed):
        ex.parse(text)  # reject bad input before any work
    results = []
    for arch in arches or model.arches:
        if arch not in model.arches:
            raise ValueError(f"no {arch!r} in the {model.era} model: expected one of {', '.join(model.arches)}")
        used = model.facts_used(arch, old) | model.facts_used(arch, new)
        if needed is not None:
            used |= model.facts_used(arch, needed)
        rows = tuple(_row(model, arch, config, old, new, needed) for config in model.configurations(arch, used))
        results.append(ArchResult(arch, rows))
    return Validation(model.era, old, new, needed, tuple(results))


def _row(model: Model, arch: str, config: Configuration, old: str, new: str, needed: str | None) -> Row:
    reduced_old = model.evaluate(arch, old, config)
    reduced_new = model.evaluate(arch, new, config)
    reduced_needed = None if needed is None else model.evaluate(arch, needed, config)
    rendered = (ex.render(reduced_old), ex.render(reduced_new),
                None if needed is None else ex.render(reduced_needed))
    if reduced_old is ex.NA:
        return Row(config, *rendered, differences=(), applicable=False)
    symbols = _free_symbols(reduced_old, reduced_new, reduced_needed)
    differences = []
    for assignment in ex.assignments(symbols):
        old_value = ex.evaluate(reduced_old, assignment)
        new_value = ex.evaluate(reduced_new, assignment)
        if new_value is ex.NA or not _same(old_value, new_value):
            needed_value = None if needed is None else ex.evaluate(reduced_needed, assignment)
            differences.append(Difference(arch, config, tuple(assignment.items()), old_value, new_value, needed_value))
    return Row(config, *rendered, differences=tuple(differences))


def _free_symbols(*items) -> list[str]:
    symbols: dict[str, None] = {}
    for item in items:
        if item is not None and not isinstance(item, (bool, int, str, type(ex.NA))):
            symbols.update((leaf.text, None) for leaf in ex.leaves(item))
    if len(symbols) > MAX_FREE_SYMBOLS:
        raise ex.ExpressionError(f"too many free symbols to enumerate ({len(symbols)}): {', '.join(symbols)}")
    return list(symbols)


def _truth(value):
    return value if value is ex.NA else bool(value)


def _same(left, right) -> bool:
    return _truth(left) == _truth(right) if ex.NA not in (left, right) else left is right
