"""Rename a function everywhere: definition, declarations, stubs and every use (kvmlint/index/renaming.py)."""

from __future__ import annotations

from kvmlint.codemods import each_finding
from kvmlint.codemods.engine import ChangeSet, Edit
from kvmlint.codemods.tree import file_reader, sha256
from kvmlint.errors import FixError
from kvmlint.index.renaming import sites
from kvmlint.prose import join_words

DESCRIPTION = "Rename a KVM function in its definition, declaration, stub and every caller."
RULE = "KVM003"
SERIES_TITLE = "Drop 'irqchip' from the names of interrupt injection functions"
SERIES_SUMMARY = "interrupt injection functions that work without an in-kernel irqchip lose 'irqchip' from their names"


def transform(analysis, findings):
    return each_finding(transform_one, analysis, findings)


def transform_one(analysis, finding) -> list[ChangeSet]:
    """Edit each file the rule's reading of the tree found, while it holds the bytes read then."""
    old, new = finding.fix.argument("symbol"), finding.fix.argument("new_name")
    read = file_reader(analysis.root)
    edits = []
    for path, digest in finding.fix.argument("files"):
        data = read(path)
        if sha256(data) != digest:
            raise FixError(f"{path}: changed on disk since it was read for the rename; run kvmlint fix again")
        edits.extend(Edit(path, at, at + len(old), new.encode()) for at in sites(path, data, old))
    edited = {edit.path for edit in edits}
    definitions = sorted({located.path for located in analysis.index.definitions_of(old)} & edited)
    callers = sorted(edited - set(definitions))
    body = (
        f"{old}() injects an interrupt line. That works whether or not the "
        f"interrupt controller is modelled in the kernel, so its name should not "
        f"say 'irqchip'.\n\nRename it to {new}() in {join_words(definitions)}"
        + (f", and in its callers in {join_words(callers)}" if callers else "")
        + ".\n\nNo functional change.\n"
    )
    return [
        ChangeSet(
            code=RULE, title=f"kvm: Rename {old}() to {new}()", body=body, edits=edits,
            subject_paths=tuple(definitions), applicability=finding.fix.applicability,
        )
    ]
