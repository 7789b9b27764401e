"""What is the site asking?  Match evidence.toml's patterns against a SiteContext and propose.

The strongest matching category wins only if no other category matches at all: evidence for two
different questions is a conflict, and a person must decide (None), as is no evidence.  A
category without a predicate (the site creates an in-kernel interrupt controller, or the
function is one arch's own concept) is a legitimate irqchip question: no proposal either.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from functools import lru_cache

from kvmlint.model import expression as ex
from kvmlint.model.semantics import Model
from kvmlint.model.validation import Validation, validate
from kvmlint.model.vocabulary import concept_arch, load_toml
from kvmlint.source.facts import SiteContext


@dataclass(frozen=True)
class Proposal:
    predicate: str
    replacement: str  # replaces the proxy call itself, e.g. "kvm_irqfds_enabled()"
    new_condition: str  # the whole condition, rewritten
    evidence: tuple[str, ...]  # human-readable, e.g. "guarded code calls msix_unset_vector_notifiers()"
    confidence: str  # "high" | "medium" | "low"
    validation: Validation
    safe: bool
    verdict: str  # one line per arch, for the finding message


def _values(context: SiteContext, field: str) -> tuple[str, ...]:
    value = getattr(context, field)
    if value is None:
        return ()
    if isinstance(value, bool):
        return ("true",) if value else ()
    return (value,) if isinstance(value, str) else tuple(value)


def _first_match(context: SiteContext, test: dict) -> str | None:
    for value in _values(context, test["field"]):
        if test.get("concept") and concept_arch(value):
            return value
        if any(fnmatchcase(value, glob) for glob in test.get("match", ())):
            return value
    return None


def _matches(context: SiteContext, pattern: dict) -> str | None:
    """The evidence sentence when `pattern` holds at this site."""
    value = _first_match(context, pattern)
    if value is None:
        return None
    if not all(_first_match(context, test) for test in pattern.get("also", ())):
        return None
    if any(_first_match(context, test) for test in pattern.get("unless", ())):
        return None
    says = pattern["says"].format(value=value)
    if pattern.get("concept"):
        says += f" ({concept_arch(value)})"
    return says


def _scores(context: SiteContext) -> tuple[tuple[int, dict, tuple[str, ...]], ...]:
    # Every site is scored up to three times (legitimate? proposal? candidates?), and the sites
    # of one function mostly share their surroundings: score each distinct one once.
    return _scores_of(replace(context, condition_span=None))


@lru_cache(maxsize=4096)
def _scores_of(context: SiteContext) -> tuple[tuple[int, dict, tuple[str, ...]], ...]:
    found = []
    for category in load_toml("evidence.toml")["category"]:
        score, says = 0, []
        for pattern in category["pattern"]:
            sentence = _matches(context, pattern)
            if sentence:
                score += pattern["weight"]
                says.append(sentence)
        if score:
            found.append((score, category, tuple(says)))
    return tuple(sorted(found, key=lambda item: -item[0]))


def legitimate_question(context: SiteContext) -> tuple[str, tuple[str, ...]] | None:
    """(question, evidence) when the best evidence says the site rightly asks about the
    irqchip (which interrupt controller model to use), else None."""
    found = _scores(context)
    if not found or not found[0][1].get("legitimate"):
        return None
    score, category, says = found[0]
    # Silencing a site needs at least the evidence a medium-confidence proposal needs.
    if score < load_toml("evidence.toml")["medium"]:
        return None
    return category["question"], says


def propose(model: Model, context: SiteContext, era: str | None = None) -> Proposal | None:
    """The precise predicate for one proxy site, validated; None when a person must decide."""
    era = era or model.era
    found = _scores(context)
    if not found or "predicate" not in found[0][1]:
        return None
    predicates = {category.get("predicate", {}).get(era) for _, category, _ in found}
    if len(predicates) > 1:
        return None  # evidence for different questions (or a legitimate irqchip use): conflict
    score, category, says = found[0]
    table = load_toml("evidence.toml")
    predicate = category["predicate"][era]
    replacement = f"{predicate}()"
    new_condition = ex.replace_call(context.condition, table["proxy"], replacement)
    needed = ex.replace_call(context.condition, table["proxy"], f"{category['needs']}()")
    validation = _validated(model, context.condition, new_condition, needed)
    if validation is None:
        return None
    confidence = "high" if score >= table["high"] else "medium" if score >= table["medium"] else "low"
    return Proposal(
        predicate=predicate,
        replacement=replacement,
        new_condition=new_condition,
        evidence=says,
        confidence=confidence,
        validation=validation,
        safe=validation.safe,
        verdict=validation.verdict(),
    )


def candidates(model: Model, context: SiteContext, era: str | None = None) -> list[tuple[str, str, Validation]]:
    """For a site without a single answer: (predicate, question, validation of the
    rewrite to it) for each predicate the evidence points at, or for every
    question the model knows when there is no evidence at all."""
    era = era or model.era
    try:
        ex.parse(context.condition)
    except ex.ExpressionError:
        return []  # no rewrite of it can be validated: not one is written out (a condition may be huge)
    table = load_toml("evidence.toml")
    matched = [category for _, category, _ in _scores(context) if "predicate" in category]
    chosen = matched or [category for category in table["category"] if "predicate" in category]
    result, seen = [], set()
    for category in chosen:
        predicate = category["predicate"][era]
        if predicate in seen:
            continue
        seen.add(predicate)
        new_condition = ex.replace_call(context.condition, table["proxy"], f"{predicate}()")
        validation = _validated(model, context.condition, new_condition)
        if validation is not None:
            result.append((predicate, category["question"], validation))
    return result


def _validated(model: Model, old: str, new: str, needed: str | None = None) -> Validation | None:
    """The rewrite's validation; None when the model cannot read the condition (bytes that a
    syntax error left in it, or more unknowns than it enumerates): then a person decides."""
    try:
        return validate(model, old, new, needed=needed)
    except ex.ExpressionError:
        return None
