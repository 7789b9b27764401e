"""Replace an unsupported kernel_irqchip value with the one the target accepts.

C: a byte edit of the value inside its string literal.  Python: libcst
rewrites the string node that holds the value (formatting and comments kept)
and the edit is the changed range of the file, so both go through the engine.
One change set per file.
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import ByteSpanPositionProvider

from kvmlint.codemods.engine import ChangeSet, Edit
from kvmlint.codemods.tree import file_reader
from kvmlint.errors import FixError
from kvmlint.prose import arch_name, join_words
from kvmlint.source.discover import is_python_file

DESCRIPTION = "Replace a kernel_irqchip value the target does not accept with the one it does."
RULE = "KVM006"
SERIES_TITLE = "Use the kernel_irqchip values the targets accept"
SERIES_SUMMARY = "tests and machine code ask for kernel_irqchip values their targets accept"


def transform(analysis, findings):
    change_sets, unfixable = [], []
    by_path: dict[str, list] = {}
    for finding in findings:
        by_path.setdefault(finding.path, []).append(finding)
    read = file_reader(analysis.root)
    for path, file_findings in sorted(by_path.items()):
        replacements = {
            (f.fix.argument("start_byte"), f.fix.argument("value")): f.fix.argument("replacement") for f in file_findings
        }
        try:
            data = read(path)
            edits = _python_edits(path, data, replacements) if is_python_file(path) else _c_edits(path, data, replacements)
        except FixError as error:
            unfixable.extend((f, str(error)) for f in file_findings)
            continue
        change_sets.append(_change_set(path, file_findings, edits))
    return change_sets, unfixable


def _c_edits(path: str, data: bytes, replacements) -> list[Edit]:
    edits = []
    for (start, value), replacement in replacements.items():
        end = start + len(value.encode())
        if data[start:end] != value.encode():
            raise FixError(f"{path}: the value {value} is no longer where it was found")
        edits.append(Edit(path, start, end, replacement.encode()))
    return edits


class _ValueRewriter(cst.CSTTransformer):
    """Rewrites the values at given byte offsets inside string literals and f-string text."""

    METADATA_DEPENDENCIES = (ByteSpanPositionProvider,)

    def __init__(self, replacements, encoding: str):
        super().__init__()
        self.pending = dict(replacements)  # (byte offset, old value) -> new value
        self.encoding = encoding

    def _rewrite(self, original, updated):
        span = self.get_metadata(ByteSpanPositionProvider, original)
        raw = updated.value.encode(self.encoding)
        for (start, value), replacement in sorted(self.pending.items(), reverse=True):
            offset = start - span.start
            old = value.encode(self.encoding)
            if 0 <= offset and raw[offset:offset + len(old)] == old and offset + len(old) <= span.length:
                raw = raw[:offset] + replacement.encode(self.encoding) + raw[offset + len(old):]
                del self.pending[(start, value)]
        return updated.with_changes(value=raw.decode(self.encoding))

    def leave_SimpleString(self, original_node, updated_node):
        return self._rewrite(original_node, updated_node)

    def leave_FormattedStringText(self, original_node, updated_node):
        return self._rewrite(original_node, updated_node)


def _python_edits(path: str, data: bytes, replacements) -> list[Edit]:
    try:
        module = cst.parse_module(data)
    except cst.ParserSyntaxError as error:
        raise FixError(f"{path}: not valid Python (line {error.raw_line}); not fixed") from None
    rewriter = _ValueRewriter(replacements, module.encoding)
    new = cst.MetadataWrapper(module).visit(rewriter).bytes
    if rewriter.pending:
        raise FixError(f"{path}: the value is no longer where it was found")
    try:
        cst.parse_module(new)
    except cst.ParserSyntaxError:
        raise FixError(f"{path}: the rewritten file would not parse; not fixed") from None
    return [_changed_range(path, data, new)]


def _changed_range(path: str, old: bytes, new: bytes) -> Edit:
    """One edit covering what differs between `old` and `new` (common prefix and suffix kept)."""
    prefix = 0
    while prefix < min(len(old), len(new)) and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(old), len(new)) - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    return Edit(path, prefix, len(old) - suffix, new[prefix:len(new) - suffix])


def _change_set(path: str, findings, edits: list[Edit]) -> ChangeSet:
    changes = sorted({
        f"{f.symbol}={f.fix.argument('value')} is not a setting {arch_name(f.arch)} KVM accepts; "
        f"{f.fix.argument('replacement')} is the only one"
        for f in findings
    })
    body = (
        f"{path} asks for a kernel irqchip setting its target does not support, "
        f"so QEMU would refuse to start the guest.\n\n"
        + "\n".join(f"- {line}" for line in changes)
        + "\n\nUse the supported value instead.\n"
    )
    arches = join_words([arch_name(a) for a in sorted({f.arch for f in findings})])
    return ChangeSet(
        code=RULE, title=f"tests: Use the kernel_irqchip value {arches} accepts in {path.rsplit('/', 1)[-1]}",
        body=body, edits=edits,
    )
