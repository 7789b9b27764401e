"""What a fix leaves: which findings stay unfixed and which files stay changed, once validation kept some change sets.

The command line reports from these; a change set rolled back or refused
takes its findings back to "not fixed".
"""

from __future__ import annotations


def findings_without_fix(findings, planned, kept) -> list:
    """Findings no code-mod can fix, except those inside code a `kept` fix removes
    (a proxy use inside a helper that moves into its target)."""
    removed: dict[str, list[tuple[int, int]]] = {}
    for change_set in kept:
        for edit in change_set.edits:
            data = planned.originals.get(edit.path)
            if data is not None and edit.end > edit.start:
                first, last = data.count(b"\n", 0, edit.start) + 1, data.count(b"\n", 0, edit.end)
                removed.setdefault(edit.path, []).append((first, last))
    return [
        f for f in findings
        if f.fix is None and not any(a <= f.line and f.end_line <= b for a, b in removed.get(f.path, []))
    ]


def _edited_lines(planned, edit) -> tuple[int, int] | None:
    """The first and last line of the original text an edit touches (None in a new file)."""
    data = planned.originals.get(edit.path)
    if data is None:
        return None
    return data.count(b"\n", 0, edit.start) + 1, data.count(b"\n", 0, max(edit.start, edit.end - 1)) + 1


def findings_fixed_by(findings, planned, change_set) -> list:
    """The findings of `change_set`'s rule whose lines its edits rewrite."""
    spans = [(e.path, _edited_lines(planned, e)) for e in change_set.edits]
    return [
        f for f in findings
        if f.fix is not None and f.code == change_set.code
        and any(path == f.path and lines and lines[0] <= f.line <= lines[1] for path, lines in spans)
    ]


def still_changed(planned, kept, written: list[str]) -> list[str]:
    """Those `written` files that differ from the originals once only `kept` change sets apply."""
    after = planned.contents_after(kept)
    return [path for path in written if after.get(path, planned.originals.get(path)) != planned.originals.get(path)]
