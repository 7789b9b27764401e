"""Read QEMU's Python tests with libcst: their literal kernel_irqchip settings and target hints.

libcst is slow to import and to run, so the analysis imports this module,
and parses a file, only when the file's bytes mention the option at all.
Each string expression (literal, implicit or `+` concatenation, f-string,
`"..." % x`) is rendered to text with the non-constant parts as
`cmdline.PLACEHOLDER`, then read by `kvmlint.source.cmdline`.
Returns `kvmlint.source.facts` records only, like the C extractor.
"""

from __future__ import annotations

import ast
import hashlib
import re
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import ByteSpanPositionProvider

from kvmlint.source.c_syntax import LineIndex
from kvmlint.source.cmdline import PLACEHOLDER, find_settings, list_machine, machines_in, option_context, targets_in
from kvmlint.source.facts import ArchHint, FileFacts, IrqchipOption

SUPPRESSION = re.compile(rb"#[^\n]*?kvmlint:\s*ignore(?:\[([A-Za-z0-9_,\s-]*)\])?", re.IGNORECASE)
# tests/functional/<target>/test_*.py runs qemu-system-<target>
TARGET_FOLDER = re.compile(r"(?:^|/)tests/functional/([^/]+)/")
MACHINE_SETTERS = frozenset({"set_machine"})
FOLDER_RANK, OWN_MACHINE_RANK, SCOPE_RANK = 0, 1, 2
# Syntax-tree depth libcst can walk within Python's default recursion limit.
MAX_NESTING = 150


def extract(path: str, data: bytes) -> FileFacts:
    facts = FileFacts(path=path, size=len(data), content_sha256=hashlib.sha256(data).hexdigest())
    lines = LineIndex(data)
    too_deep = _too_deep(data)
    if too_deep is not None:
        facts.warnings.append(f"nested more than {MAX_NESTING} levels deep ({too_deep}); skipped")
        return facts
    try:
        # The parsed module is ours alone: no defensive deep copy.
        wrapper = cst.MetadataWrapper(cst.parse_module(data), unsafe_skip_copy=True)
    except cst.ParserSyntaxError as error:
        facts.warnings.append(f"not valid Python (line {error.raw_line}: {error.message.splitlines()[0]}); skipped")
        return facts
    except (SyntaxError, UnicodeDecodeError, LookupError) as error:  # bytes or coding cookie Python cannot decode
        facts.warnings.append(f"cannot be decoded as Python source ({str(error).splitlines()[0]}); skipped")
        return facts
    reader = _SettingsReader(path, lines, wrapper.module.encoding)
    wrapper.visit(reader)
    facts.irqchip_options = reader.options()
    facts.suppressions = _suppressions(data, lines)
    return facts


def _too_deep(data: bytes) -> str | None:
    """Where the syntax tree passes MAX_NESTING levels ("line N"), or None.

    libcst walks the tree recursively, several Python frames a level: a
    600-term `a + b + ...` would exhaust the interpreter's stack.  Python's
    own parser goes deeper, and its tree is walked here without recursion.
    """
    try:
        tree = ast.parse(data)
    except (RecursionError, MemoryError):
        return "deeper than Python's own parser goes"
    except (SyntaxError, ValueError):
        return None  # libcst says what is wrong with it
    pending = [(tree, 0)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_NESTING:
            return f"line {getattr(node, 'lineno', 1)}"
        pending.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return None


def _suppressions(data: bytes, lines: LineIndex) -> dict[int, frozenset[str]]:
    found: dict[int, frozenset[str]] = {}
    for match in SUPPRESSION.finditer(data):
        line, _ = lines.position(match.start())
        codes = match.group(1)
        names = frozenset(c.strip().decode() for c in codes.split(b",") if c.strip()) if codes else frozenset({"*"})
        found[line] = found.get(line, frozenset()) | names
    return found


@dataclass
class _Rendered:
    """A string expression as text, with where each literal part starts in the file (bytes)."""

    parts: list[tuple[str, int | None]]  # (text, byte offset of its first character; None: not literal)
    encoding: str

    @property
    def text(self) -> str:
        return "".join(text for text, _ in self.parts)

    def source_span(self, start: int, end: int) -> tuple[int, int] | None:
        """Byte range in the file of text[start:end], when it lies within one literal part."""
        offset = 0
        for text, source in self.parts:
            if offset <= start and end <= offset + len(text):
                if source is None:
                    return None
                before = len(text[: start - offset].encode(self.encoding))
                return source + before, source + before + len(text[start - offset:end - offset].encode(self.encoding))
            offset += len(text)
        return None

    def __add__(self, other: _Rendered) -> _Rendered:
        return _Rendered(self.parts + other.parts, self.encoding)


@dataclass
class _Pending:
    value: str
    spelling: str
    context: str
    start: int
    end: int
    machine: str | None
    scopes: tuple[int, ...]  # keys of the enclosing functions and classes, innermost first


class _SettingsReader(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (ByteSpanPositionProvider,)

    def __init__(self, path: str, lines: LineIndex, encoding: str):
        super().__init__()
        self.path = path
        self.lines = lines
        self.encoding = encoding
        self.pending: list[_Pending] = []
        self.scope_stack: list[int] = []
        self.scope_hints: dict[int, dict[tuple[str, str], str]] = {}  # scope -> (kind, name) -> origin
        self.module_hints: dict[tuple[str, str], str] = {}
        self.contexts: dict[int, str] = {}  # id(argument node) -> the option it is the value of

    # --- scopes: hints found anywhere inside a function or class belong to it ------------

    def _enter(self, node: cst.CSTNode) -> None:
        self.scope_stack.append(id(node))
        self.scope_hints[id(node)] = {}

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._enter(node)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.scope_stack.pop()

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._enter(node)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self.scope_stack.pop()

    def _hint(self, kind: str, name: str, origin: str) -> None:
        for scope in [*self.scope_stack, None]:
            hints = self.module_hints if scope is None else self.scope_hints[scope]
            hints.setdefault((kind, name), origin)

    # --- where a string stands: after '-machine' in an argument list, in set_machine() -----

    def visit_Call(self, node: cst.Call) -> None:
        values = [arg.value for arg in node.args if not arg.keyword and not arg.star]
        self._sequence(values)
        name = _simple_name(node.func)
        if name in MACHINE_SETTERS and values:
            self.contexts[id(values[0])] = "-machine"
            argument = _constant(values[0])
            machine = list_machine(argument) if argument else None
            if machine:
                self._hint("machine", machine, f"{name}('{argument}')")

    def visit_List(self, node: cst.List) -> None:
        self._sequence([element.value for element in node.elements])

    def visit_Tuple(self, node: cst.Tuple) -> None:
        self._sequence([element.value for element in node.elements])

    def _sequence(self, values: list[cst.BaseExpression]) -> None:
        for option, value in zip(values, values[1:]):
            context = option_context(_constant(option) or "")
            if context is None:
                continue
            self.contexts[id(value)] = context
            text = _constant(value)
            machine = list_machine(text) if context == "-machine" and text else None
            if machine:
                self._hint("machine", machine, _shorten(f"{_constant(option)} {text}"))

    def visit_Assign(self, node: cst.Assign) -> None:
        """`arch = 'aarch64'` (a test's arch attribute)."""
        text = _constant(node.value)
        if text and any(_simple_name(target.target) == "arch" for target in node.targets):
            self._hint("target", text, f"arch = '{text}'")

    # --- string expressions ----------------------------------------------------------------

    def visit_SimpleString(self, node: cst.SimpleString) -> bool:
        return self._string(node)

    def visit_ConcatenatedString(self, node: cst.ConcatenatedString) -> bool:
        return self._string(node)

    def visit_FormattedString(self, node: cst.FormattedString) -> bool:
        return self._string(node)

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> bool:
        return self._string(node)

    def _string(self, node: cst.BaseExpression) -> bool:
        """Read a whole string expression once; False stops libcst descending into its parts."""
        rendered = self._render(node)
        if rendered is None:
            return True
        text = rendered.text
        for machine, origin in machines_in(text):
            self._hint("machine", machine, _shorten(origin))
        for target, origin in targets_in(text):
            self._hint("target", target, origin)
        for setting in find_settings(text):
            span = rendered.source_span(setting.start, setting.end)
            if span is None:
                continue  # the value is not constant
            context = self.contexts.get(id(node), setting.context) if setting.context == "options" else setting.context
            self.pending.append(_Pending(
                setting.value, setting.spelling, context, *span, setting.machine(context),
                tuple(reversed(self.scope_stack)),
            ))
        return False

    def _render(self, node: cst.BaseExpression) -> _Rendered | None:
        if isinstance(node, cst.SimpleString):
            start = self.get_metadata(ByteSpanPositionProvider, node).start
            opening = len(node.prefix) + len(node.quote)
            return _Rendered([(node.value[opening:-len(node.quote)], start + opening)], self.encoding)
        if isinstance(node, cst.ConcatenatedString):
            left, right = self._render(node.left), self._render(node.right)
            return left + right if left is not None and right is not None else None
        if isinstance(node, cst.FormattedString):
            parts = []
            for part in node.parts:
                if isinstance(part, cst.FormattedStringText):
                    parts.append((part.value, self.get_metadata(ByteSpanPositionProvider, part).start))
                else:
                    parts.append((PLACEHOLDER, None))
            return _Rendered(parts, self.encoding)
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add):
            left, right = self._render(node.left), self._render(node.right)
            if left is None and right is None:
                return None
            unknown = _Rendered([(PLACEHOLDER, None)], self.encoding)
            return (left or unknown) + (right or unknown)
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Modulo):
            return self._render(node.left)  # "kvm,%s" % args: the format string's own text
        return None

    # --- results ---------------------------------------------------------------------------

    def options(self) -> list[IrqchipOption]:
        folder = TARGET_FOLDER.search(self.path)
        return [
            IrqchipOption(
                pending.value, pending.spelling, pending.context, self.lines.span(pending.start, pending.end),
                self._hints_for(pending, folder),
            )
            for pending in self.pending
        ]

    def _hints_for(self, pending: _Pending, folder: re.Match | None) -> tuple[ArchHint, ...]:
        hints = []
        if folder:
            hints.append(ArchHint("target", folder.group(1), f"tests/functional/{folder.group(1)}/", FOLDER_RANK))
        if pending.machine:
            hints.append(ArchHint("machine", pending.machine, f"{pending.context} {pending.machine}", OWN_MACHINE_RANK))
        levels = [self.scope_hints[scope] for scope in pending.scopes] + [self.module_hints]
        for rank, level in enumerate(levels, SCOPE_RANK):
            hints.extend(ArchHint(kind, name, origin, rank) for (kind, name), origin in level.items())
        return tuple(hints)


def _constant(node: cst.BaseExpression) -> str | None:
    """The value of a plain string literal (or implicit concatenation of them)."""
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def _simple_name(node: cst.BaseExpression) -> str | None:
    """`name` or the last part of `obj.name`: how a call or an assignment target is known."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return None


def _shorten(text: str, limit: int = 40) -> str:
    text = text.replace(PLACEHOLDER, "{…}")
    return text if len(text) <= limit else text[: limit - 1] + "…"
