"""Parse one C file with tree-sitter-c and extract its KVM facts.

Runs inside parser worker processes; returns only `kvmlint.source.facts` records.
Macro bodies are raw text to tree-sitter, so each `#define` body that
mentions a KVM symbol is parsed again on its own and mapped back.  Code the
preprocessor never compiles (`#if 0`, the `#else` of `#if 1`) yields no
facts, and neither do names a macro stringizes, pastes or takes as a parameter.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from dataclasses import replace
from functools import cached_property

import tree_sitter

from kvmlint.source.c_syntax import (
    MAX_PREPROCESSOR_NESTING,
    PREPROC_CONTAINERS,
    Ancestry,
    LineIndex,
    captures,
    declarator_name,
    error_nodes,
    parse,
    text,
)
from kvmlint.source.facts import (
    Assignment,
    Definition,
    FileFacts,
    Include,
    Reference,
    Span,
    StringLiteral,
)
from kvmlint.source.preprocessor import never_compiled
from kvmlint.source.qtest_arch import COMPARISON, arch_branches
from kvmlint.source.site_context import (
    MAX_EXPRESSION_WALK,
    STATEMENT_SUFFIXES,
    EvidenceReader,
    last_first,
    result_use,
    site_context,
    unique,
)

KVM_SYMBOL = re.compile(rb"^(kvm|KVM)")
KERNEL_IRQCHIP = re.compile(rb"kernel[_-]irqchip")
CAPABILITY = re.compile(rb"KVM_CAP_")
# A suppression is this, after a comment opener on the same line.  The two are
# matched apart: one pattern spanning both backtracks quadratically on a long
# line of slashes.
SUPPRESSION = re.compile(rb"kvmlint:\s*ignore(?:\[([A-Za-z0-9_,\s-]*)\])?", re.IGNORECASE)
COMMENT_OPENER = re.compile(rb"//|/\*")
# Macro bodies are re-parsed only for uses of QEMU's own kvm_* names (not KVM_* ABI constants).
QEMU_KVM_NAME = re.compile(rb"\bkvm_")
# Uses of these symbols get a SiteContext: the evidence a rule needs to decide
# what question the code is really asking.
CONTEXT_SYMBOLS = frozenset({"kvm_irqchip_in_kernel"})
MACRO_TYPES = frozenset({"preproc_def", "preproc_function_def"})
# A macro body is parsed as the body of this function; the prefix length maps offsets back.
MOSTLY_UNPARSEABLE = "mostly unparseable"
UNPLACED_NAME = re.compile(rb"\b(?:kvm|KVM)\w*")
UNPLACED_OPTION = re.compile(rb"kernel[_-]irqchip=")
MACRO_WRAPPER_PREFIX = b"void __kvmlint_macro(void){\n"
# A function-like macro of the file, for the parameters it only stringizes (`#define STR(x) #x`).
FUNCTION_LIKE_MACRO = re.compile(rb"^[ \t]*#[ \t]*define[ \t]+(\w+)\(([^)\n]*)\)((?:[^\n\\]|\\.)*)", re.MULTILINE | re.DOTALL)
# Bounds that keep absurd input linear; real code stays far below them.
OPERATOR_WINDOW = 64  # bytes of blanks looked through for a `#` or `##` next to a name


def _kvm_identifiers(root: tree_sitter.Node, data: bytes) -> list[tree_sitter.Node]:
    """The identifiers of `root` (parsed from `data`) that start with kvm or KVM, in source order.

    Found from where the bytes spell kvm/KVM, not by visiting every
    identifier: a file has a few hundred of those and many thousands of others.
    """
    found = []
    for start in sorted(_occurrences(data, b"kvm") + _occurrences(data, b"KVM")):
        node = root.descendant_for_byte_range(start, start + 3)
        if node is not None and node.type == "identifier" and node.start_byte == start:
            found.append(node)
    return found


def _occurrences(data: bytes, word: bytes) -> list[int]:
    """Where `word` starts in `data` (bytes.find: three times faster than a regex alternation)."""
    found = []
    at = data.find(word)
    while at >= 0:
        found.append(at)
        at = data.find(word, at + len(word))
    return found


def _sets_member_from(assignment: tree_sitter.Node, starts: list[int], length: int) -> bool:
    """`x.member = ...` or `x->member = ...` whose right side holds one of the words at `starts`."""
    left, right = assignment.child_by_field_name("left"), assignment.child_by_field_name("right")
    if left is None or right is None or left.type != "field_expression":
        return False
    member = left.child_by_field_name("field")
    if member is None or member.type != "field_identifier":
        return False
    first = bisect.bisect_left(starts, right.start_byte)
    return first < len(starts) and starts[first] + length <= right.end_byte


def _macro_operand(body: bytes, start: int, end: int) -> bool:
    """Whether the name at body[start:end] of a macro is an operand of `#` or `##`:
    it becomes a string or part of another name, never a use of itself."""
    before = body[max(0, start - OPERATOR_WINDOW) : start].rstrip(b" \t")
    return before.endswith(b"#") or body[end : end + OPERATOR_WINDOW].lstrip(b" \t").startswith(b"##")


def stringizing_macros(data: bytes) -> dict[str, frozenset[int]]:
    """The file's function-like macros that only stringize (or paste) some of their parameters,
    with those parameters' positions: an argument there is never evaluated (`STR(f())`)."""
    found = {}
    for match in FUNCTION_LIKE_MACRO.finditer(data):
        name, parameters, body = match.groups()
        positions = frozenset(
            position for position, parameter in enumerate(p.strip() for p in parameters.split(b","))
            if parameter and _only_operand(body, parameter)
        )
        if positions:
            found[name.decode("utf-8", "replace")] = positions
    return found


def _only_operand(body: bytes, parameter: bytes) -> bool:
    uses = list(re.finditer(rb"(?<![\w$])" + re.escape(parameter) + rb"(?![\w$])", body))
    return bool(uses) and all(_macro_operand(body, use.start(), use.end()) for use in uses)


class Extractor:
    def __init__(self, path: str, data: bytes):
        self.path = path
        self.data = data
        self.lines = LineIndex(data)
        self.facts = FileFacts(path=path, size=len(data), content_sha256=hashlib.sha256(data).hexdigest())
        self.private: set[str] = set()

    def run(self) -> FileFacts:
        tree = parse(self.data)
        root = tree.root_node
        self.ancestry = Ancestry(root)
        self.evidence = EvidenceReader(root)
        errors = error_nodes(root)
        self.facts.error_nodes = len(errors)
        mostly_unparseable = sum(e.end_byte - e.start_byte for e in errors) * 2 > len(self.data)
        if errors:
            self.facts.first_error_line = min(e.start_point[0] for e in errors) + 1
            if mostly_unparseable:
                self.facts.warnings.append(
                    f"{MOSTLY_UNPARSEABLE} ({len(errors)} syntax errors from line "
                    f"{self.facts.first_error_line}); analysed as far as possible"
                )
        try:
            self.data.decode("utf-8")
        except UnicodeDecodeError as error:
            line, _ = self.lines.position(error.start)
            self.facts.warnings.append(f"not valid UTF-8 (line {line}); analysed as bytes")
        names = [name for name in _kvm_identifiers(root, self.data) if self._compiled(name)]
        self._references(names, self.ancestry)
        self._definitions(root)
        if self.evidence.exhausted_line is not None:
            self.facts.warnings.append(
                f"too many nested uses to read all their guarded code (from line "
                f"{self.evidence.exhausted_line}); later uses have less evidence"
            )
        self._assignments([
            parent for name in names
            if name.text.startswith(b"kvm_") and (parent := self.ancestry.parent(name)) is not None
            and parent.type == "assignment_expression" and parent.child_by_field_name("left") == name
        ])
        self._capability_assignments(list(filter(self._compiled, self._member_assignments_from_capabilities(root))))
        self._strings(list(filter(self._compiled, self._option_strings(root))))
        if self.facts.strings:

            self.facts.arch_branches = arch_branches(list(filter(self._compiled, self._ifs_comparing(root, COMPARISON))))
        if self.ancestry.deep_preprocessor_line is not None:
            self.facts.warnings.append(
                f"#if nesting deeper than {MAX_PREPROCESSOR_NESTING} levels (line "
                f"{self.ancestry.deep_preprocessor_line}); the inner conditions are not recorded"
            )
        self._suppressions()
        self.facts.private_names = frozenset(self.private)
        if mostly_unparseable:
            self.facts.unparsed_names = self._unplaced_names(errors)
        return self.facts

    def _compiled(self, node: tree_sitter.Node) -> bool:
        """Whether the preprocessor compiles `node`: not under `#if 0` or the `#else` of `#if 1`."""
        return not never_compiled(self.ancestry.conditions(node))

    @cached_property
    def _stringizing_macros(self) -> dict[str, frozenset[int]]:
        return stringizing_macros(self.data)

    def _stringized_argument(self, node: tree_sitter.Node, ancestry: Ancestry) -> bool:
        """Whether `node` lies in an argument that one of the file's macros only stringizes."""
        if not self._stringizing_macros:
            return False
        child, parent = node, ancestry.parent(node)
        for _ in range(MAX_EXPRESSION_WALK):
            if parent is None or parent.type.endswith(STATEMENT_SUFFIXES):
                return False  # arguments end where the expression does
            call = ancestry.parent(parent) if parent.type == "argument_list" else None
            callee = call.child_by_field_name("function") if call is not None and call.type == "call_expression" else None
            positions = self._stringizing_macros.get(text(callee)) if callee is not None and callee.type == "identifier" else None
            if positions:
                arguments = [c for c in parent.named_children if c.type != "comment"]
                if any(arguments[position] == child for position in positions if position < len(arguments)):
                    return True
            child, parent = parent, ancestry.parent(parent)
        return False

    def _unplaced_names(self, errors: list[tree_sitter.Node]) -> frozenset[str]:
        """KVM-looking names and kernel_irqchip options inside the syntax-error
        regions for which no reference or definition was recorded: what the
        analysis of this file may have missed."""
        placed = {r.symbol for r in self.facts.references} | {d.name for d in self.facts.definitions}
        found = set()
        for error in errors:
            region = self.data[error.start_byte : error.end_byte]
            found.update(m.decode() for m in UNPLACED_NAME.findall(region))
            found.update(m.decode() for m in UNPLACED_OPTION.findall(region))
        return frozenset(found - placed)

    def _references(
        self,
        identifiers: list[tree_sitter.Node],
        ancestry: Ancestry,
        offset: int = 0,
        macro: str | None = None,
        macro_preprocessor: tuple[str, ...] = (),
    ) -> None:
        for node in identifiers:
            parent = ancestry.parent(node)
            is_call = parent is not None and parent.type == "call_expression" and parent.child_by_field_name("function") == node
            if parent is not None and parent.type in ("function_declarator", "preproc_function_def", "preproc_def", "preproc_ifdef"):
                continue  # a definition or a test of the name, not a use
            if parent is not None and parent.type == "init_declarator" and parent.child_by_field_name("value") != node:
                continue  # the name declared; as the value (`fn = kvm_x`), its address is taken
            if parent is not None and parent.type == "declaration" and parent.child_by_field_name("declarator") == node:
                continue
            if self._stringized_argument(node, ancestry):
                continue  # `STR(kvm_x())`: a string, never called
            name = text(node)
            spanned = parent if is_call else node
            span = self.lines.span(spanned.start_byte + offset, spanned.end_byte + offset)
            context = None
            if is_call and name in CONTEXT_SYMBOLS:
                context = site_context(
                    parent, ancestry, self.lines, offset, macro is not None, self.evidence
                )
                if macro is not None:
                    context = replace(context, preprocessor=macro_preprocessor)
            self.facts.references.append(
                Reference(
                    symbol=name,
                    span=span,
                    kind="call" if is_call else "identifier",
                    function=ancestry.function_name(node) if macro is None else None,
                    macro=macro,
                    context=context,
                    preprocessor=macro_preprocessor if macro is not None else ancestry.conditions(node),
                    result=result_use(parent, ancestry) if is_call else "",
                )
            )

    def _macro_body_references(self, macro: tree_sitter.Node, name: str) -> None:
        value = macro.child_by_field_name("value")
        if value is None or not QEMU_KVM_NAME.search(value.text):
            return
        parameters = macro.child_by_field_name("parameters")
        own_names = {c.text for c in parameters.named_children} if parameters is not None else set()
        # Keep byte offsets: a backslash-newline becomes two spaces.
        body = value.text.replace(b"\\\n", b"  ")
        wrapped_data = MACRO_WRAPPER_PREFIX + body + b"\n;}"
        wrapped = parse(wrapped_data).root_node
        uses = [
            name for name in _kvm_identifiers(wrapped, wrapped_data)
            # A parameter of the macro is not the global name; `#x` and `x ## y` make a string, another name.
            if name.text not in own_names and not _macro_operand(wrapped_data, name.start_byte, name.end_byte)
        ]
        self._references(
            uses,
            Ancestry(wrapped),
            offset=value.start_byte - len(MACRO_WRAPPER_PREFIX),
            macro=name,
            macro_preprocessor=self.ancestry.conditions(macro),
        )

    def _definitions(self, root: tree_sitter.Node) -> None:
        """Top-level definitions, also inside #if branches (walked without recursion)."""
        pending = [iter(root.named_children)]
        while pending:
            child = next(pending[-1], None)
            if child is None:
                pending.pop()
            elif child.type in PREPROC_CONTAINERS:
                pending.append(iter(child.named_children))
            elif not self._compiled(child):
                continue  # never compiled: defines and includes nothing
            elif child.type in MACRO_TYPES:
                name_node = child.child_by_field_name("name")
                if name_node is None:
                    continue
                name = text(name_node)
                self._macro_body_references(child, name)
                if KVM_SYMBOL.match(name_node.text):
                    self._add_definition(name, "macro", child)
            elif child.type == "preproc_include":
                target = child.child_by_field_name("path")
                if target is not None:
                    raw = text(target)
                    self.facts.includes.append(
                        Include(raw.strip('"<>'), self._span(child))
                    )
            elif child.type == "function_definition":
                name_node = declarator_name(child.child_by_field_name("declarator"))
                if name_node is not None and "static" in self._storage(child):
                    self.private.add(text(name_node))
                if name_node is not None and KVM_SYMBOL.match(name_node.text):
                    self._add_definition(text(name_node), "function", child)
            elif child.type == "declaration":
                self._declaration(child)
                self._private_types(child)
            elif child.type in ("struct_specifier", "type_definition"):
                self._private_types(child)

    def _private_types(self, node: tree_sitter.Node) -> None:
        """Struct and typedef definitions made in this file are private to it."""
        if not self.path.endswith(".c"):
            return
        if node.type == "type_definition":
            for declarator in node.children_by_field_name("declarator"):
                name_node = declarator_name(declarator)
                if name_node is not None:
                    self.private.add(text(name_node))
        specifier = node if node.type == "struct_specifier" else node.child_by_field_name("type")
        if specifier is not None and specifier.type == "struct_specifier" and specifier.child_by_field_name("body"):
            tag = specifier.child_by_field_name("name")
            if tag is not None:
                self.private.add(text(tag))

    def _declaration(self, node: tree_sitter.Node) -> None:
        storage = self._storage(node)
        for declarator in node.children_by_field_name("declarator"):
            name_node = declarator_name(declarator)
            if name_node is not None and "static" in storage:
                self.private.add(text(name_node))
            if name_node is None or not KVM_SYMBOL.match(name_node.text):
                continue
            inner = declarator
            while inner.type in ("init_declarator", "pointer_declarator", "parenthesized_declarator"):
                inner = inner.child_by_field_name("declarator")
            if inner is not None and inner.type == "function_declarator":
                kind = "prototype"
            else:
                kind = "extern" if "extern" in storage else "variable"
            self._add_definition(text(name_node), kind, node)

    def _storage(self, node: tree_sitter.Node) -> tuple[str, ...]:
        """The storage and function specifiers, then any `inline` written as a qualifier."""
        specifiers, qualifiers = [], []
        for child in node.children:
            if child.type in ("storage_class_specifier", "function_specifier"):
                specifiers.append(text(child))
            elif child.type == "type_qualifier" and child.text == b"inline":
                qualifiers.append("inline")
        return (*specifiers, *qualifiers)

    def _add_definition(self, name: str, kind: str, node: tree_sitter.Node) -> None:
        body = node.child_by_field_name("body") or node.child_by_field_name("value") or node
        found = captures("body_names", body)
        self.facts.definitions.append(
            Definition(
                name=name,
                kind=kind,
                span=self._span(node),
                text=text(node),
                storage=self._storage(node) if kind != "macro" else (),
                preprocessor=self.ancestry.conditions(node),
                capabilities=unique(
                    word.decode() for word in re.findall(rb"\bKVM_CAP_\w+", body.text or b"")
                ),
                identifiers=unique(n for n in last_first(found.get("name", [])) if n != name),
                field_access="access" in found,
                fields=unique(last_first(found.get("field", []))),
            )
        )

    def _assignments(self, assignments: list[tree_sitter.Node]) -> None:
        for node in assignments:
            left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
            if left is None or right is None or text(node.child_by_field_name("operator")) != "=":
                continue
            self.facts.assignments.append(
                Assignment(
                    text(left), text(right), self._span(node),
                    self.ancestry.function_name(node), self.ancestry.conditions(node),
                )
            )

    def _member_assignments_from_capabilities(self, root: tree_sitter.Node) -> list[tree_sitter.Node]:
        """`s->member = ...KVM_CAP_...` assignments, in source order: found from each KVM_CAP_
        upwards, each ancestor looked at once however many capabilities it holds."""
        starts = [match.start() for match in CAPABILITY.finditer(self.data)]
        candidates = []
        seen: set[int] = set()
        for start in starts:
            node = root.descendant_for_byte_range(start, start + len(CAPABILITY.pattern))
            while node is not None and node.id not in seen:
                seen.add(node.id)
                if node.type == "assignment_expression":
                    candidates.append(node)
                node = self.ancestry.parent(node)
        found = [node for node in candidates if _sets_member_from(node, starts, len(CAPABILITY.pattern))]
        return sorted(found, key=lambda node: node.start_byte)

    def _option_strings(self, root: tree_sitter.Node) -> list[tree_sitter.Node]:
        """The string literals that hold kernel_irqchip/kernel-irqchip, in source order."""
        found = {}
        for match in KERNEL_IRQCHIP.finditer(self.data):
            node = root.descendant_for_byte_range(match.start(), match.end())
            if node is not None and node.type != "string_literal":
                node = self.ancestry.parent(node)  # from its string_content
            if node is not None and node.type == "string_literal":
                found.setdefault(node.id, node)
        return list(found.values())

    def _ifs_comparing(self, root: tree_sitter.Node, comparison: re.Pattern) -> list[tree_sitter.Node]:
        """The `if` statements with a match of `comparison` in their condition, in source order."""
        found = {}
        for match in comparison.finditer(self.data):
            node = root.descendant_for_byte_range(match.start(), match.end())
            while node is not None:
                condition = node.child_by_field_name("condition") if node.type == "if_statement" else None
                if condition is not None and condition.start_byte <= match.start() < condition.end_byte:
                    found.setdefault(node.id, node)
                    break
                node = self.ancestry.parent(node)
        return sorted(found.values(), key=lambda node: node.start_byte)

    def _capability_assignments(self, assignments: list[tree_sitter.Node]) -> None:
        """Where the KVM state is initialised: which member each capability check sets."""
        for node in assignments:
            left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
            if text(node.child_by_field_name("operator")) != "=":
                continue
            member = left.child_by_field_name("field")
            self.facts.capability_assignments.append(
                Assignment(
                    text(member), text(right), self._span(node),
                    self.ancestry.function_name(node), self.ancestry.conditions(node),
                )
            )

    def _strings(self, literals: list[tree_sitter.Node]) -> None:
        for node in literals:
            self.facts.strings.append(StringLiteral(text(node)[1:-1], self._span(node), self.ancestry.function_name(node)))

    def _suppressions(self) -> None:
        if b"kvmlint" not in self.data.lower():
            return  # the pattern ignores case, which makes it slow to scan for
        first_opener_end: dict[int, int | None] = {}  # line -> end of its first comment opener
        for match in SUPPRESSION.finditer(self.data):
            line, _ = self.lines.position(match.start())
            if line not in first_opener_end:
                start = self.lines.starts[line - 1]
                end = self.data.find(b"\n", start)
                opener = COMMENT_OPENER.search(self.data, start, len(self.data) if end < 0 else end)
                first_opener_end[line] = opener.end() if opener else None
            if first_opener_end[line] is None or first_opener_end[line] > match.start():
                continue
            end_line, _ = self.lines.position(match.end())
            codes = match.group(1)
            names = frozenset(c.strip().decode() for c in codes.split(b",") if c.strip()) if codes else frozenset({"*"})
            for at in range(line, end_line + 1):
                self.facts.suppressions[at] = self.facts.suppressions.get(at, frozenset()) | names

    def _span(self, node: tree_sitter.Node) -> Span:
        return self.lines.span(node.start_byte, node.end_byte)


def extract(path: str, data: bytes) -> FileFacts:
    return Extractor(path, data).run()
