"""Stage 8, reporters: each output format is a module with `render(report) -> str`.

Takes the findings that survived validation and what the fixes did (a
`Report`); hands on text for the terminal, a file or a CI system.  Nothing
here analyses: a reporter only formats the records it is given.
"""

from __future__ import annotations

import codecs
import hashlib
import importlib
import os
import re
import stat
import tempfile
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

from kvmlint.errors import UsageError
from kvmlint.files import Overlay, read_only_refusal
from kvmlint.findings import Finding
from kvmlint.terminal import printable

FORMATS = ("text", "concise", "json", "sarif", "gitlab", "github")
# The formats that carry each finding's fix as edits: only for them are the fixes planned.
FORMATS_WITH_FIXES = ("json", "sarif")


@dataclass
class Report:
    findings: list[Finding]
    root: Path
    display_base: Path  # JSON's paths are relative to this (the one folder named, else the root)
    working_directory: Path  # text and concise paths are relative to this
    files: int
    parsed: int
    seconds: float
    color: bool = False
    # Findings a `kvmlint: ignore` comment silenced; formats that can mark a
    # result as suppressed list them when `show_suppressed` is set.
    suppressed: tuple[Finding, ...] = ()
    show_suppressed: bool = False
    # Findings a baseline holds (kvmlint/reporters/baseline.py): not reported, but they keep their
    # fingerprints, so the findings that are reported have the ones a run without the baseline gives.
    baselined: tuple[Finding, ...] = ()
    overlay: Overlay = field(default_factory=dict)  # the content analysed instead of the disk's (kvmlint/files.py)
    # Finding -> its fix as edits (validation/finding_fixes.py), for FORMATS_WITH_FIXES.
    fixes: dict = field(default_factory=dict)
    # The lines of the file last asked about: findings come in path order, and no other file's bytes stay.
    _lines: tuple[str, list[bytes] | None] = field(default=("", None), repr=False)
    _columns: tuple[tuple[str, int], list[int] | None] = field(default=(("", 0), None), repr=False)
    _normalized: tuple[tuple[str, int], str] = field(default=(("", 0), ""), repr=False)

    def display_path(self, finding: Finding) -> str:
        return self.display_name(finding.path)

    def display_name(self, path: str) -> str:
        """A root-relative path relative to where the user named the tree, raw: each format escapes it its way."""
        return Path(os.path.relpath(self.root / path, self.display_base)).as_posix()

    def location_path(self, finding: Finding) -> str:
        """The path text and concise print, so that an editor's quickfix opens the file (ruff's way):
        relative to the working directory when the file is under it, else absolute."""
        absolute = self.root / finding.path
        try:
            shown = absolute.relative_to(self.working_directory)
        except ValueError:
            shown = absolute
        return printable(shown.as_posix())

    def source_line(self, path: str, line: int) -> bytes | None:
        """Line `line` (1-based) of a root-relative file, without its newline."""
        if self._lines[0] != path:
            try:
                data = self.overlay[path] if path in self.overlay else (self.root / path).read_bytes()
                self._lines = (path, None if data is None else data.splitlines())
            except OSError:
                self._lines = (path, None)
        lines = self._lines[1]
        return lines[line - 1] if lines is not None and 0 < line <= len(lines) else None

    def code_point_column(self, path: str, line: int, byte_column: int) -> int:
        """The 1-based column in code points of a byte column, as SARIF counts them.  Thousands of
        findings can share one long line: each line is decoded once, not once per finding."""
        key = (path, line)
        if self._columns[0] != key:
            text = self.source_line(path, line)
            self._columns = (key, None if text is None or text.isascii() else _code_points_before(text))
        starts = self._columns[1]
        if starts is None:
            return byte_column
        return starts[min(max(byte_column - 1, 0), len(starts) - 1)] + 1

    def _normalized_line(self, path: str, line: int) -> str:
        """The line's text with runs of white space made one space, for fingerprints; asked per
        finding, in order, so the last line is kept."""
        if self._normalized[0] != (path, line):
            text = self.source_line(path, line) or b""
            self._normalized = ((path, line), " ".join(text.decode("utf-8", "replace").split()))
        return self._normalized[1]

    @cached_property
    def fingerprints(self) -> dict[Finding, str]:
        """A stable identity per finding for CI systems that track findings over time.

        It hashes what the finding is about and the text of its line, not the
        line number, so edits elsewhere in the file leave it unchanged; the
        occurrence count tells apart identical lines in one function.
        """
        seen: Counter[str] = Counter()
        result = {}
        for finding in sorted({*self.findings, *self.suppressed, *self.baselined}, key=Finding.sort_key):
            text = self._normalized_line(finding.path, finding.line)
            key = "\0".join((finding.code, finding.path, finding.function or "", finding.symbol or "", text))
            seen[key] += 1
            result[finding] = hashlib.sha256(f"{key}\0{seen[key]}".encode("utf-8", "surrogateescape")).hexdigest()
        return result


# A backslash, and a byte of a file name that is not UTF-8 (read as a surrogate escape).
_NOT_KEPT_IN_NAMES = re.compile("[\\\\\udc80-\udcff]")


def exact_path(path: str) -> str:
    """A file name as JSON and GitLab carry it, lossless and valid Unicode: each character as it
    is, except a backslash, written `\\\\`, and each byte that is not UTF-8, written `\\xNN`.  Two
    different names never read the same; a name that is UTF-8 without a backslash is unchanged."""
    return _NOT_KEPT_IN_NAMES.sub(_escape_in_name, path) if _NOT_KEPT_IN_NAMES.search(path) else path


def _escape_in_name(match: re.Match) -> str:
    char = match.group()
    return "\\\\" if char == "\\" else f"\\x{ord(char) - 0xDC00:02x}"


def _code_points_before(line: bytes) -> list[int]:
    """For each byte offset of `line`, the length of `line[:offset]` decoded with errors replaced."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    starts, decoded = [0], 0
    for offset in range(len(line)):
        decoded += len(decoder.decode(line[offset:offset + 1]))
        starts.append(decoded + bool(decoder.getstate()[0]))  # a cut character decodes as one U+FFFD
    return starts


def render(format_name: str, report: Report) -> str:
    module = importlib.import_module(f"kvmlint.reporters.{format_name}_format")
    # Messages name files; paths stay raw for reading the files, and each format prints them its way.
    findings = [replace(f, message=printable(f.message)) for f in report.findings]
    report = replace(
        report,
        findings=findings,
        suppressed=tuple(replace(f, message=printable(f.message)) for f in report.suppressed),
        fixes={shown: report.fixes[f] for f, shown in zip(report.findings, findings) if f in report.fixes},
    )
    return module.render(report)


def render_statistics(findings: list[Finding]) -> str:
    """`count  CODE  fixable  name` per rule, most frequent first; fixable counts the safe fixes
    (`kvmlint fix`), `+N` the unsafe ones (`--unsafe-fixes`)."""
    if not findings:
        return ""
    counts = Counter((finding.code, finding.name) for finding in findings)
    safe = Counter((f.code, f.name) for f in findings if f.fix is not None and f.fix.safe)
    unsafe = Counter((f.code, f.name) for f in findings if f.fix is not None and not f.fix.safe)
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    lines = [f"{'count':>5}  {'code':<6}  {'fixable':<7}  name\n"]
    for key, count in ordered:
        fixable = f"{safe[key]}" + (f"+{unsafe[key]}" if unsafe[key] else "")
        lines.append(f"{count:>5}  {key[0]:<6}  {fixable:<7}  {key[1]}\n")
    return "".join(lines)


def write_atomically(path: Path, text: str, in_tree: bool = False) -> None:
    """Readers of `path` see the old content or the new, never a partial file.

    A symlink outside the tree is written through: its target gets the
    report, the link stays.  A device, FIFO or terminal (`/dev/stdout`,
    `/dev/full`) is written into, never renamed over: only a regular file is
    replaced.  A path `in_tree` (the tree's configuration names it, or the
    user names a place inside the checked tree) is written only as a regular
    file: a symlink or a FIFO there may be the tree's, and is refused.
    """
    if in_tree:
        _refuse_unless_regular_or_absent(path, "the report")
    try:
        special = not stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        special = False
    if special:
        with open(path, "w", encoding="utf-8") as stream:
            stream.write(text)
        return
    path = Path(os.path.realpath(path))
    write_files_atomically(path.parent if str(path.parent) else Path("."), [(path.name, text)])


def write_files_atomically(directory: Path, files: list[tuple[str, str]]) -> None:
    """Each (name, text) written as a file of `directory`, none of them partly.

    Each text goes to a temporary file of an unpredictable name, created anew
    (never through a link), then renamed over its name: an existing regular
    file is replaced, never written into, so a link or hard link there leads
    nowhere.  A name that is a symlink or not a regular file, and a folder or
    file whose mode says read-only (root too keeps it), is refused before
    anything is written.
    """
    for name, _ in files:
        _refuse_unless_regular_or_absent(directory / name, "it")
        refusal = read_only_refusal(directory / name)
        if refusal is not None:
            raise UsageError(f"{refusal} (nothing written)")
    umask = os.umask(0)
    os.umask(umask)
    temporaries: list[str] = []
    try:
        for name, text in files:
            descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
            temporaries.append(temporary)
            os.fchmod(descriptor, 0o666 & ~umask)  # mkstemp makes it private; a report is not
            with os.fdopen(descriptor, "w", encoding="utf-8", errors="surrogateescape") as stream:
                stream.write(text)
        for (name, _), temporary in zip(files, temporaries):
            os.replace(temporary, directory / name)
    except BaseException:
        for temporary in temporaries:
            if os.path.lexists(temporary):
                os.unlink(temporary)
        raise


def _refuse_unless_regular_or_absent(path: Path, what: str) -> None:
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(status.st_mode):
        raise UsageError(f"{path} is a symlink; kvmlint does not write {what} through it (nothing written)")
    if not stat.S_ISREG(status.st_mode):
        raise UsageError(f"{path} is not a regular file; kvmlint does not write {what} there (nothing written)")
