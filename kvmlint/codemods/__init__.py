"""Stage 6, code-mods: one module per code-mod (libcst's way).

Takes the rules' fixable findings; hands on `ChangeSet`s (the edits of every
file a fix touches) for validation to prove.

Each module has a `DESCRIPTION`, the `RULE` whose findings it fixes, and
`transform(analysis, findings) -> list[ChangeSet]`, given all of its rule's
fixable findings at once (one change set may fix several, as a patch series
would); `transform_one(analysis, finding)` raising `FixError` is the usual
way to build it.  The registry is derived from the modules.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from functools import lru_cache
from types import ModuleType

from kvmlint.codemods.engine import ChangeSet
from kvmlint.errors import FixError
from kvmlint.findings import Finding

INFRASTRUCTURE = {"engine", "ctext", "tree", "transaction"}


@lru_cache(maxsize=1)
def codemods_by_rule() -> dict[str, ModuleType]:
    found = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name in INFRASTRUCTURE:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found[module.RULE] = module
    return found


@dataclass
class Proposed:
    change_sets: list[ChangeSet] = field(default_factory=list)
    unfixable: list[tuple[Finding, str]] = field(default_factory=list)


def propose_changes(analysis, findings: list[Finding], unsafe: bool = False) -> Proposed:
    proposed = Proposed()
    by_rule = codemods_by_rule()
    fixable: dict[str, list[Finding]] = {}
    for finding in findings:
        if finding.fix is None or finding.code not in by_rule:
            continue
        if finding.fix.applicability != "safe" and not unsafe:
            proposed.unfixable.append((finding, "the fix is unsafe; --unsafe-fixes applies it"))
            continue
        fixable.setdefault(finding.code, []).append(finding)
    for code, rule_findings in fixable.items():
        change_sets, unfixable = by_rule[code].transform(analysis, rule_findings)
        # A code-mod may offer an unsafe follow-up of its own (a labelled, separate change).
        proposed.change_sets.extend(c for c in change_sets if c.applicability == "safe" or unsafe)
        proposed.unfixable.extend(unfixable)
    return proposed


def each_finding(transform_one, analysis, findings):
    """Build one code-mod's change sets finding by finding; a FixError leaves that one unfixed."""
    change_sets, unfixable = [], []
    for finding in findings:
        try:
            change_sets.extend(transform_one(analysis, finding))
        except FixError as error:
            unfixable.append((finding, str(error)))
    return change_sets, unfixable
