"""Make a predicate that returns `int` return `bool`: its declaration, definition and stubs."""

from __future__ import annotations

import re

from kvmlint.codemods import each_finding
from kvmlint.codemods.engine import ChangeSet, Edit, Replacement
from kvmlint.codemods.tree import file_reader
from kvmlint.errors import FixError
from kvmlint.prose import join_words

DESCRIPTION = "Make a KVM predicate return bool rather than int, in its declaration, definition and stubs."
RULE = "KVM004"
SERIES_TITLE = "Make KVM predicates return bool"
SERIES_SUMMARY = "predicates that return int, though every return is a truth value, return bool"


def transform(analysis, findings):
    return each_finding(transform_one, analysis, findings)


def transform_one(analysis, finding) -> list[ChangeSet]:
    """`int` becomes `bool` before the name in each place the rule read (path, start and end byte)."""
    symbol, places = finding.fix.argument("symbol"), finding.fix.argument("places")
    read = file_reader(analysis.root)
    edits = []
    for path, start, end in places:
        at = int_before_name(read(path)[start:end], symbol)
        if at is None:
            raise FixError(f"{path}: {symbol}() does not return int there any more; run kvmlint check again")
        edits.append(Edit(path, start + at, start + at + len(b"int"), b"bool"))
    paths = sorted({path for path, _, _ in places})
    return [_change_set(symbol, paths, finding.fix.applicability, finding.fix.unsafe_reason, edits=edits)]


def follow_up(symbol: str, written: list[tuple[str, bytes]], applicability: str, unsafe_reason: str) -> ChangeSet:
    """The same change on the declarations another change set of this run writes (a move), whose
    offsets are not known yet: each text it writes, found whole, with its `int` made `bool`."""
    replacements = []
    for path, text in written:
        at = int_before_name(text, symbol)
        if at is not None:
            replacements.append(Replacement(path, text, text[:at] + b"bool" + text[at + len(b"int"):]))
    paths = sorted({replacement.path for replacement in replacements})
    return _change_set(symbol, paths, applicability, unsafe_reason, replacements=replacements)


def int_before_name(text: bytes, symbol: str) -> int | None:
    """The offset of the `int` return type of `symbol` in its declaration or definition `text`."""
    head = text.split(b"{", 1)[0]  # a leading doc comment may name it too: the last spelling is the code's
    found = list(re.finditer(rb"(?:^|(?<=\s))int\s+" + re.escape(symbol.encode()) + rb"\s*\(", head))
    return found[-1].start() if found else None


def _change_set(symbol: str, paths: list[str], applicability: str, unsafe_reason: str, **changes) -> ChangeSet:
    check = (f"\n\nCallers to check by hand: {unsafe_reason}.") if applicability != "safe" and unsafe_reason else ""
    return ChangeSet(
        code=RULE,
        title=f"kvm: Make {symbol}() return bool",
        body=(
            f"{symbol}() is a predicate: every return statement yields a truth "
            f"value. Make it return bool rather than int, as QEMU's other "
            f"predicates do, in {join_words(paths)}.{check}\n\nNo functional change.\n"
        ),
        applicability=applicability,
        subject_paths=tuple(paths),
        **changes,
    )
