"""Each finding's own fix, exactly as `kvmlint fix FILE:LINE` writes it, for the formats that carry fixes.

A finding's fix is planned alone, by its rule's code-mod, through the edit
engine and the model check, as `fix` plans it: the files `kvmlint fix
FILE:LINE` (with `--unsafe-fixes` when asked) writes for that one finding,
as edits of the checked tree.  A fix only `--unsafe-fixes` writes is carried
marked unsafe; a fix the engine or the model refuses is not carried at all.

Each fix is against the original tree, so the fixes of two findings can
overlap: two sites whose predicate the tree lacks both introduce it.  Applied
one at a time, with a check in between (as ruff applies overlapping fixes),
they make what `kvmlint fix` makes in one run.

`check` and `fix` both analyse the whole checkout (excluded files too: a move
or a rename edits them), so the fixes are planned on check's own analysis
(`kvmlint/analysis.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from kvmlint.codemods import codemods_by_rule, propose_changes
from kvmlint.codemods.engine import FileEdits, plan
from kvmlint.codemods.tree import reading_as_analysed
from kvmlint.findings import Finding
from kvmlint.validation.model_check import validate_plan


@dataclass(frozen=True)
class FindingFix:
    applicability: str  # "safe" | "unsafe"
    description: str
    files: tuple[FileEdits, ...]  # every file the fix changes or creates, by path


def finding_fixes(analysis, findings: list[Finding], unsafe: bool = False) -> dict[Finding, FindingFix]:
    """Each finding's fix, planned alone against the analysed tree (read once for all of them)."""
    by_rule = codemods_by_rule()
    fixes = {}
    with reading_as_analysed(analysis.root, analysis.facts):
        for finding in findings:
            if finding.fix is not None and finding.code in by_rule:
                fix = _fix_of(analysis, finding, unsafe)
                if fix is not None:
                    fixes[finding] = fix
    return fixes


def _fix_of(analysis, finding: Finding, unsafe: bool) -> FindingFix | None:
    safe = _written(analysis, finding, unsafe=False) if finding.fix.applicability == "safe" else ()
    if safe and not unsafe:
        return FindingFix("safe", finding.fix.description, safe)
    with_unsafe = _written(analysis, finding, unsafe=True)
    if not with_unsafe or with_unsafe == safe:
        return FindingFix("safe", finding.fix.description, safe) if safe else None
    return FindingFix("unsafe", finding.fix.description, with_unsafe)


def _written(analysis, finding: Finding, unsafe: bool) -> tuple[FileEdits, ...]:
    """What `kvmlint fix FILE:LINE [--unsafe-fixes]` writes for this finding alone."""
    proposed = propose_changes(analysis, [finding], unsafe=unsafe)
    if not proposed.change_sets:
        return ()
    planned = validate_plan(plan(analysis.root, proposed.change_sets), analysis, unsafe=unsafe)
    files = planned.file_edits(planned.accepted)
    return tuple(files[path] for path in sorted(files) if files[path].content != files[path].original)
