"""The one edit engine every code-mod goes through.

A code-mod turns a finding into a `ChangeSet`: byte-range edits in existing
files plus new files.  The engine plans change sets against the files as
read, refuses what it cannot do safely, and only then writes:

- overlapping edits are a conflict: the later change set is refused whole;
- no edit may touch a syntax-error region of the original file, except one
  that puts a whole name in place of another (a rename's: its place comes
  from the tokens, not from a syntax tree that could not read the region);
- every changed file is re-parsed, and a change set that adds parse errors
  is rolled back;
- a change set whose edits change nothing is a no-op (so fixing twice is);
- every file is read once, through the fix's snapshot, and must still hold
  the bytes the analysis parsed (the findings' offsets point into those);
- inserted lines take the file's line ending (CRLF files stay CRLF);
- change sets that share a file are written together, each such group all
  or nothing (see `transaction`): temporary files first, then renames, each
  file compared with what was planned against right before its rename; a
  read-only file, a file changed on disk or a failed write leaves the
  group's files as they were, and nothing outside the root is ever written.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from kvmlint.codemods import transaction
from kvmlint.codemods.tree import snapshot
from kvmlint.errors import FixError
from kvmlint.git.commits import blob_id, object_format
from kvmlint.source.c_syntax import error_nodes, parse
from kvmlint.source.discover import is_c_file
from kvmlint.terminal import git_quoted


NAME = re.compile(rb"[A-Za-z_$][\w$]*\Z")
NAME_BYTE = re.compile(rb"[\w$]")


@dataclass(frozen=True)
class Edit:
    path: str  # root-relative
    start: int  # byte offsets into the file as read
    end: int
    replacement: bytes


@dataclass(frozen=True)
class Replacement:
    """Replace the one occurrence of `old` in a file as earlier change sets leave it.

    For a follow-up to text an earlier change set moved or created (its byte
    offsets are not known in advance); such change sets are planned last.
    """

    path: str
    old: bytes
    new: bytes


@dataclass(frozen=True)
class NewFile:
    path: str
    content: bytes


@dataclass
class ChangeSet:
    code: str  # the rule it fixes
    title: str  # patch subject, "kvm: ..."
    body: str  # why, for the patch mail
    applicability: str = "safe"  # "safe" | "unsafe"
    edits: list[Edit] = field(default_factory=list)
    new_files: list[NewFile] = field(default_factory=list)
    replacements: list[Replacement] = field(default_factory=list)
    # (old, new) expressions this change set rewrites, for the model to check again
    expression_checks: list[tuple[str, str]] = field(default_factory=list)
    # For the patch mails: the files the subject prefix is taken from (default: every
    # file changed), and (arch, what changes there) as the model says, for the cover letter.
    subject_paths: tuple[str, ...] = ()
    arch_effects: tuple[tuple[str, str], ...] = ()

    def paths(self) -> set[str]:
        return {e.path for e in self.edits} | {n.path for n in self.new_files} | {r.path for r in self.replacements}


@dataclass
class Refusal:
    change_set: ChangeSet
    reason: str


@dataclass
class Plan:
    root: Path
    originals: dict[str, bytes]  # as read, for every existing file an accepted change set touches
    accepted: list[ChangeSet] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)

    def contents_after(self, change_sets: list[ChangeSet]) -> dict[str, bytes]:
        """Every touched file's bytes once `change_sets` are applied (new files included).

        An edit of a file that an earlier change set creates is relative to the
        content it is created with, as edits of existing files are to the originals.
        """
        return {path: changed.content for path, changed in self.file_edits(change_sets).items()}

    def file_edits(self, change_sets: list[ChangeSet]) -> dict[str, FileEdits]:
        """Every touched file as edits of its original bytes that give what `change_sets` make of it.

        These are the change sets' own edits, in the line ending the file takes,
        with a text replacement folded into the edit it falls in (or made an edit
        of its own); a file a change set creates is one insertion of its final
        content.  Edits that touch are one edit, so the order of applying them
        cannot matter.
        """
        created: dict[str, bytes] = {}
        edits_by_path: dict[str, list[Edit]] = {}
        for change_set in change_sets:
            # A new file's lines end as those of the files its change set edits.
            edited = b"".join(self.originals.get(e.path, b"") for e in change_set.edits)
            for new_file in change_set.new_files:
                content = with_line_ending(new_file.content, line_ending(edited)) if edited else new_file.content
                created[new_file.path] = content
                edits_by_path.setdefault(new_file.path, [])
            for edit in change_set.edits:
                edits_by_path.setdefault(edit.path, []).append(edit)
        result: dict[str, list[Edit]] = {}
        for path, edits in edits_by_path.items():
            base = created[path] if path in created else self.originals[path]
            result[path] = _joined(base, [_with_ending(edit, line_ending(base)) for edit in edits])
        for change_set in change_sets:
            for replacement in change_set.replacements:
                path = replacement.path
                base = created[path] if path in created else self.originals.get(path, b"")
                edits = result.get(path, [])
                current = _applied(base, edits)
                ending = line_ending(current)
                old, new = (with_line_ending(text, ending) for text in (replacement.old, replacement.new))
                at = current.find(old)
                result[path] = edits if at < 0 else _replaced(path, base, edits, current, at, at + len(old), new)
        files = {}
        for path, edits in result.items():
            if path in created:
                files[path] = FileEdits(path, None, (Edit(path, 0, 0, _applied(created[path], edits)),))
            else:
                files[path] = FileEdits(path, self.originals.get(path, b""), tuple(edits))
        return files


@dataclass(frozen=True)
class FileEdits:
    """A file's change: edits of its original bytes, ascending, none overlapping or touching another."""

    path: str
    original: bytes | None  # None: the file is new, and its one edit inserts all of it
    edits: tuple[Edit, ...]

    @property
    def content(self) -> bytes:
        return _applied(self.original or b"", self.edits)


def _applied(data: bytes, edits) -> bytes:
    """`data` with ascending, non-overlapping edits applied."""
    pieces, position = [], 0
    for edit in edits:
        pieces.extend((data[position : edit.start], edit.replacement))
        position = edit.end
    pieces.append(data[position:])
    return b"".join(pieces)


def _joined(data: bytes, edits: list[Edit]) -> list[Edit]:
    """Non-overlapping `edits` of `data`, ascending, each run of touching edits made one: inserts
    at one offset keep their given order, and an edit identical to an earlier one, or one that
    changes nothing, is dropped."""
    ordered = [edit for _, edit in sorted(enumerate(dict.fromkeys(edits)), key=lambda item: (item[1].start, item[1].end, item[0]))]
    joined: list[Edit] = []
    for edit in ordered:
        last = joined[-1] if joined else None
        if last is not None and edit.start <= last.end:  # touching: non-overlapping edits meet at one offset
            joined[-1] = Edit(edit.path, last.start, edit.end, last.replacement + edit.replacement)
        else:
            joined.append(edit)
    return [edit for edit in joined if data[edit.start : edit.end] != edit.replacement]


def _replaced(path: str, data: bytes, edits: list[Edit], current: bytes, start: int, end: int, text: bytes) -> list[Edit]:
    """`edits` of `data` (which give `current`) changed so that they give `current` with its
    bytes [start, end) made `text`: the edits that range overlaps or touches become one with it."""
    before, met, after = [], [], []
    shift = 0  # an offset in `current` minus the offset in `data` it comes from, left of the edit at hand
    for edit in edits:
        first = edit.start + shift
        last = first + len(edit.replacement)
        (before if last < start else after if first > end else met).append((edit, first, last))
        shift += len(edit.replacement) - (edit.end - edit.start)

    def growth(positioned) -> int:
        return sum(len(edit.replacement) - (edit.end - edit.start) for edit, _, _ in positioned)

    if met and met[0][1] <= start:
        data_start, current_start = met[0][0].start, met[0][1]
    else:
        data_start, current_start = start - growth(before), start
    if met and met[-1][2] >= end:
        data_end, current_end = met[-1][0].end, met[-1][2]
    else:
        data_end, current_end = end - growth(before) - growth(met), end
    merged = Edit(path, data_start, data_end, current[current_start:start] + text + current[end:current_end])
    return _joined(data, [*(e for e, _, _ in before), merged, *(e for e, _, _ in after)])


def line_ending(data: bytes) -> bytes:
    """The line ending most of a file's lines have."""
    crlf = data.count(b"\r\n")
    return b"\r\n" if crlf > data.count(b"\n") - crlf else b"\n"


def with_line_ending(text: bytes, ending: bytes) -> bytes:
    return text.replace(b"\r\n", b"\n").replace(b"\n", ending) if ending == b"\r\n" else text.replace(b"\r\n", b"\n")


def _with_ending(edit: Edit, ending: bytes) -> Edit:
    return Edit(edit.path, edit.start, edit.end, with_line_ending(edit.replacement, ending))


def _overlaps(a: Edit, b: Edit) -> bool:
    """Two edits clash when their ranges share a byte, or an insert falls strictly inside a range."""
    if a.path != b.path:
        return False
    if a.start == a.end and b.start == b.end:
        return False  # inserts at one offset stack in order
    if a.start == a.end:
        return b.start < a.start < b.end
    if b.start == b.end:
        return a.start < b.start < a.end
    return a.start < b.end and b.start < a.end


def _error_regions(path: str, data: bytes) -> list[tuple[int, int]]:
    """Syntax-error regions of a C file: its ERROR nodes, and each token the parser had to assume
    (an edit that drops a `)` leaves a MISSING one, and no ERROR node).  Build files are not C
    and have none to check."""
    if not is_c_file(path):
        return []
    root = parse(data).root_node
    regions = [(e.start_byte, e.end_byte) for e in error_nodes(root)]
    if root.has_error:
        regions.extend((m.start_byte, m.end_byte) for m in _missing_nodes(root))
    return regions


def _missing_nodes(root) -> list:
    """The MISSING nodes under `root`, entering only subtrees that hold an error (as error_nodes does)."""
    found, pending = [], [root]
    while pending:
        node = pending.pop()
        if node.is_missing:
            found.append(node)
        elif node.has_error:
            pending.extend(node.children)
    return found


def _swaps_a_name(data: bytes, edit: Edit) -> bool:
    """Whether the edit replaces one whole name with another."""
    before, after = data[edit.start - 1 : edit.start] if edit.start else b"", data[edit.end : edit.end + 1]
    return (
        NAME.match(data[edit.start : edit.end]) is not None and NAME.match(edit.replacement) is not None
        and not NAME_BYTE.match(before) and not NAME_BYTE.match(after)
    )


def _inside_root(root: Path, relpath: str) -> bool:
    target = (root / relpath).resolve()
    return target == root.resolve() or root.resolve() in target.parents


def plan(root: Path, change_sets: list[ChangeSet]) -> Plan:
    result = Plan(root=root, originals={})
    read = snapshot(root).read
    error_regions: dict[str, list[tuple[int, int]]] = {}
    error_counts: dict[str, int] = {}
    change_sets = [_through_links(root, change_set) for change_set in change_sets]
    # Text replacements apply to what the byte-range edits leave, so they go last.
    ordered = sorted(change_sets, key=lambda change_set: bool(change_set.replacements))
    for change_set in ordered:
        reason = _check(result, change_set, read, error_regions, error_counts)
        if reason:
            result.refused.append(Refusal(change_set, reason))
        else:
            result.accepted.append(change_set)
    return result


def _through_links(root: Path, change_set: ChangeSet) -> ChangeSet:
    """The change set with each symlink inside the root replaced by the file it leads to,
    so that a file reached by two paths is planned (and written) as one, the link kept."""
    real_root = root.resolve()

    def real(path: str) -> str:
        target = (root / path).resolve()
        return target.relative_to(real_root).as_posix() if real_root in target.parents else path

    if all(real(path) == path for path in change_set.paths()):
        return change_set
    return replace(
        change_set,
        edits=list(dict.fromkeys(replace(e, path=real(e.path)) for e in change_set.edits)),  # one edit per file
        new_files=[replace(n, path=real(n.path)) for n in change_set.new_files],
        replacements=[replace(r, path=real(r.path)) for r in change_set.replacements],
    )


def _check(result: Plan, change_set: ChangeSet, read, error_regions, error_counts) -> str | None:
    root = result.root
    for path in change_set.paths():
        if not _inside_root(root, path):
            return f"{path} is outside {root}"
    for new_file in change_set.new_files:
        if (root / new_file.path).exists():
            return f"{new_file.path} already exists"
        if any(new_file.path in c.paths() for c in result.accepted):
            return f"{new_file.path} is created by another change set"
    accepted_edits = [e for c in result.accepted for e in c.edits]
    created = {n.path: n.content for c in result.accepted for n in c.new_files}
    for edit in change_set.edits:
        if edit.path in created:
            base = created[edit.path]
            error_regions.setdefault(edit.path, [])
        else:
            if edit.path not in result.originals:
                try:
                    result.originals[edit.path] = read(edit.path)
                except FixError as error:
                    return str(error)
                error_regions[edit.path] = _error_regions(edit.path, result.originals[edit.path])
                error_counts[edit.path] = len(error_regions[edit.path])
            base = result.originals[edit.path]
        size = len(base)
        if not 0 <= edit.start <= edit.end <= size:
            return f"{edit.path}: edit out of range"
        inside_error = any(start < edit.end and edit.start < end for start, end in error_regions[edit.path])
        if inside_error and not _swaps_a_name(base, edit):
            return f"{edit.path}: edit inside a region the parser could not read"
        clash = next((other for other in accepted_edits if _overlaps(edit, other)), None)
        if clash is not None:
            return f"{edit.path}: overlaps another fix at byte {clash.start}"
    for i, edit in enumerate(change_set.edits):
        if any(_overlaps(edit, other) for other in change_set.edits[i + 1 :]):
            return f"{edit.path}: overlapping edits within one fix"
    if change_set.replacements:
        if change_set.edits or change_set.new_files:
            return "a change set mixes byte-range edits with text replacements"
        for replacement in change_set.replacements:
            if replacement.path not in result.originals and replacement.path not in created:
                try:
                    result.originals[replacement.path] = read(replacement.path)
                except FixError as error:
                    return str(error)
                error_counts[replacement.path] = len(_error_regions(replacement.path, result.originals[replacement.path]))
        before = result.contents_after(result.accepted)
        for replacement in change_set.replacements:
            current = before.get(replacement.path, result.originals.get(replacement.path, b""))
            if current.count(replacement.old) != 1:
                return f"{replacement.path}: '{replacement.old.decode(errors='replace')}' is not there exactly once"
    # Re-parse what this change set produces (on top of those already accepted).
    after = result.contents_after([*result.accepted, change_set])
    for path in change_set.paths():
        before_errors = error_counts.get(path, 0)
        if len(_error_regions(path, after[path])) > before_errors:
            return f"{path}: the change would add syntax errors; rolled back"
    if all(result.originals.get(p) == data for p, data in after.items() if p in change_set.paths()):
        return "already applied (no change)"
    return None


def unified_diff(plan_: Plan, change_sets: list[ChangeSet] | None = None, before: list[ChangeSet] | None = None) -> str:
    """The diff of `change_sets` applied on top of `before` (default: all accepted, on the originals),
    in git's format: `index` lines with the blob ids of the real pre- and post-images (so
    `git am -3` can fall back to a three-way merge) and git's function context in hunk headers."""
    change_sets = plan_.accepted if change_sets is None else change_sets
    before = before or []
    old = plan_.contents_after(before)
    new = plan_.contents_after([*before, *change_sets])
    chunks = []
    algorithm = object_format(plan_.root)  # the ids `git am -3` looks up in a sha256 repository are sha256
    for path in sorted(new):
        old_data = old.get(path, plan_.originals.get(path))
        if old_data == new[path]:
            continue
        chunks.append(_file_diff(path, old_data, new[path], _git_mode(plan_.root / path), algorithm))
    return "".join(chunks)


# Abbreviated as QEMU's own patches are; long enough to stay unique in a large repository.
ABBREVIATED_ID = 12


def _git_mode(target: Path) -> str:
    try:
        executable = target.stat().st_mode & 0o111
    except OSError:
        return "100644"  # a file the series creates
    return "100755" if executable else "100644"


def _file_diff(path: str, old: bytes | None, new: bytes, mode: str = "100644", algorithm: str = "sha1") -> str:
    old_lines = old.decode("utf-8", "surrogateescape").splitlines(keepends=True) if old is not None else []
    new_lines = new.decode("utf-8", "surrogateescape").splitlines(keepends=True)
    old_id = blob_id(old, algorithm)[:ABBREVIATED_ID] if old is not None else "0" * ABBREVIATED_ID
    new_id = blob_id(new, algorithm)[:ABBREVIATED_ID]
    before, after = git_quoted("a/" + path), git_quoted("b/" + path)
    header = f"diff --git {before} {after}\n"
    if old is None:
        header += f"new file mode {mode}\nindex {old_id}..{new_id}\n"
    else:
        header += f"index {old_id}..{new_id} {mode}\n"
    header += f"--- {'/dev/null' if old is None else before}\n+++ {after}\n"
    return header + "".join(_hunks(old_lines, new_lines))


def _hunks(old: list[str], new: list[str], context: int = 3):
    """Unified-diff hunks like git's: without difflib's autojunk, which treats
    frequent lines such as `}` as noise and so misaligns C diffs; each header
    carries git's default function context."""
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        old_start, old_len = first[1], last[2] - first[1]
        new_start, new_len = first[3], last[4] - first[3]
        function = _function_line(old, old_start)
        yield f"@@ -{_range(old_start, old_len)} +{_range(new_start, new_len)} @@{' ' + function if function else ''}\n"
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                yield from (_line(" ", line) for line in old[i1:i2])
                continue
            yield from (_line("-", line) for line in old[i1:i2])
            yield from (_line("+", line) for line in new[j1:j2])


FUNCTION_CONTEXT_BYTES = 80  # git's buffer for the hunk header's function line


def _function_line(old: list[str], hunk_start: int) -> str:
    """git's default function context (xdiff's def_ff): the nearest line above
    the hunk that starts with a letter, `_` or `$`, cut to 80 bytes, trailing
    blanks removed."""
    for line in reversed(old[:hunk_start]):
        if line[:1].isascii() and (line[:1].isalpha() or line[:1] in "_$"):
            cut = line.encode("utf-8", "surrogateescape")[:FUNCTION_CONTEXT_BYTES]
            return cut.decode("utf-8", "surrogateescape").rstrip()
    return ""


def _range(start: int, length: int) -> str:
    first = start + 1 if length else start
    return f"{first}" if length == 1 else f"{first},{length}"


def _line(prefix: str, line: str) -> str:
    return prefix + line if line.endswith("\n") else prefix + line + "\n\\ No newline at end of file\n"


@dataclass
class WriteReport:
    written: list[str] = field(default_factory=list)
    applied: list[ChangeSet] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (change set title, why)


def write(plan_: Plan) -> WriteReport:
    """Write the accepted change sets; those that share a file, together and all or nothing.

    A group that cannot be written whole (a file changed on disk since the
    analysis or during the write, a read-only file or directory) is skipped
    whole, its files left as they were.
    """
    report = WriteReport()
    for group in _groups_sharing_files(plan_.accepted):
        after = plan_.contents_after(group)
        changes = [
            transaction.FileChange(path, plan_.originals.get(path), data)
            for path, data in sorted(after.items())
            if plan_.originals.get(path) != data
        ]
        try:
            transaction.commit(plan_.root, changes)
        except transaction.NotWritten as why:
            report.skipped.extend((change_set.title, f"{why}; not written") for change_set in group)
            continue
        report.written.extend(change.path for change in changes)
        report.applied.extend(group)
    report.written.sort()
    return report


def materialise(plan_: Plan, written: list[ChangeSet], change_sets: list[ChangeSet]) -> None:
    """Make the files `written` touched hold exactly what `change_sets` (a subset) produce,
    all or nothing, through the same journal as `write` (transaction.NotWritten says why
    not); `[]` puts the originals back and removes the files they created."""
    after = plan_.contents_after(change_sets)
    changes, created = [], []
    for path in sorted({p for s in written for p in s.paths()}):
        target = plan_.root / path
        wanted = after.get(path, plan_.originals.get(path))
        current = target.read_bytes() if target.exists() else None
        if wanted is None:
            if current is not None:
                created.append(target)  # a new file of a change set left out
        elif current != wanted:
            changes.append(transaction.FileChange(path, current, wanted))
    if changes:
        transaction.commit(plan_.root, changes)
    for target in created:
        target.unlink()


def _groups_sharing_files(change_sets: list[ChangeSet]) -> list[list[ChangeSet]]:
    """Change sets linked by a file they both touch, each group in plan order."""
    group_of: dict[str, int] = {}  # path -> index of its group
    groups: list[list[ChangeSet]] = []
    for change_set in change_sets:
        joined = sorted({group_of[p] for p in change_set.paths() if p in group_of})
        target = joined[0] if joined else len(groups)
        if not joined:
            groups.append([])
        for other in joined[1:]:
            groups[target].extend(groups[other])
            groups[other] = []
        groups[target].append(change_set)
        for change in groups[target]:
            for path in change.paths():
                group_of[path] = target
    order = {id(change_set): i for i, change_set in enumerate(change_sets)}
    return [sorted(group, key=lambda c: order[id(c)]) for group in groups if group]
