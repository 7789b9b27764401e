"""Rename a function everywhere: definition, declarations, stubs and every use."""

from __future__ import annotations

import re

from kvmlint.codemods import each_finding
from kvmlint.codemods.engine import ChangeSet, Edit
from kvmlint.codemods.tree import file_reader
from kvmlint.errors import FixError
from kvmlint.prose import join_words

DESCRIPTION = "Rename a KVM function in its definition, declaration, stub and every caller."
RULE = "KVM003"
SERIES_TITLE = "Drop 'irqchip' from the names of interrupt injection functions"
SERIES_SUMMARY = "interrupt injection functions that work without an in-kernel irqchip lose 'irqchip' from their names"


def transform(analysis, findings):
    return each_finding(transform_one, analysis, findings)


def transform_one(analysis, finding) -> list[ChangeSet]:
    old, new = finding.fix.argument("symbol"), finding.fix.argument("new_name")
    read = file_reader(analysis.root)
    word = re.compile(rb"\b" + re.escape(old.encode()) + rb"\b")
    edits = []
    for located in analysis.index.definitions_of(old):
        data = read(located.path)
        span = located.item.span
        match = word.search(data, span.start_byte, span.end_byte)
        if match is None:
            raise FixError(f"{located.path}:{span.line}: cannot find {old} in its definition")
        edits.append(Edit(located.path, match.start(), match.end(), new.encode()))
    for located in analysis.index.callers_of(old):
        start = located.item.span.start_byte  # a use's span starts at the name
        edits.append(Edit(located.path, start, start + len(old), new.encode()))
    definitions = sorted({located.path for located in analysis.index.definitions_of(old)})
    callers = sorted({located.path for located in analysis.index.callers_of(old)} - set(definitions))
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
            subject_paths=tuple(definitions),
        )
    ]

