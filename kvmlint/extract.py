"""Parse one C file with tree-sitter-c and extract its KVM facts.

Runs inside parser worker processes; returns only `kvmlint.facts` records.
Macro bodies are raw text to tree-sitter, so each `#define` body that
mentions a KVM symbol is parsed again on its own and mapped back.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import replace
from functools import lru_cache

import tree_sitter
import tree_sitter_c

from kvmlint.facts import (
    Assignment,
    Definition,
    FileFacts,
    Include,
    Reference,
    SiteContext,
    Span,
    StringLiteral,
)

KVM_SYMBOL = re.compile(rb"^(kvm|KVM)")
SUPPRESSION = re.compile(
    rb"(?://|/\*)[^\n]*?kvmlint:\s*ignore(?:\[([A-Za-z0-9_,\s-]*)\])?", re.IGNORECASE
)
# Macro bodies are re-parsed only for uses of QEMU's own kvm_* names (not KVM_* ABI constants).
QEMU_KVM_NAME = re.compile(rb"\bkvm_")
# Uses of these symbols get a SiteContext: the evidence a rule needs to decide
# what question the code is really asking.
CONTEXT_SYMBOLS = frozenset({"kvm_irqchip_in_kernel"})
ASSERT_FUNCTIONS = frozenset({"assert", "g_assert", "g_assert_true", "g_assert_false"})
LOOP_TYPES = frozenset({"while_statement", "do_statement", "for_statement"})
PREPROC_CONTAINERS = frozenset({"preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif", "preproc_elifdef"})
MACRO_TYPES = frozenset({"preproc_def", "preproc_function_def"})
# A macro body is parsed as the body of this function; the prefix length maps offsets back.
MOSTLY_UNPARSEABLE = "mostly unparseable"
UNPLACED_NAME = re.compile(rb"\b(?:kvm|KVM)\w*")
UNPLACED_OPTION = re.compile(rb"kernel[_-]irqchip=")
MACRO_WRAPPER_PREFIX = b"void __kvmlint_macro(void){\n"


@lru_cache(maxsize=1)
def _language() -> tree_sitter.Language:
    return tree_sitter.Language(tree_sitter_c.language())


@lru_cache(maxsize=1)
def _parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(_language())


@lru_cache(maxsize=1)
def _queries() -> dict[str, tree_sitter.Query]:
    lang = _language()
    symbols = r'((identifier) @id (#match? @id "^(kvm|KVM)"))'
    errors = "(ERROR) @error"
    # Every query walks the whole tree, so the extractor asks everything in one.
    facts = "\n".join(
        [
            symbols,
            errors,
            r'((string_literal) @s (#match? @s "kernel[_-]irqchip"))',
            r'(assignment_expression left: (identifier) @lhs (#match? @lhs "^kvm_")) @assign',
            r'(assignment_expression left: (field_expression field: (field_identifier) @member)'
            r' right: (_) @capability (#match? @capability "KVM_CAP_")) @member_assign',
        ]
    )
    return {
        "symbols": tree_sitter.Query(lang, symbols),
        "errors": tree_sitter.Query(lang, errors),
        "facts": tree_sitter.Query(lang, facts),
    }


def parse(data: bytes) -> tree_sitter.Tree:
    return _parser().parse(data)


def captures(query_name: str, node: tree_sitter.Node) -> dict[str, list[tree_sitter.Node]]:
    return tree_sitter.QueryCursor(_queries()[query_name]).captures(node)


class LineIndex:
    """Byte offset -> 1-based (line, column)."""

    def __init__(self, data: bytes):
        self.starts = [0] + [m.end() for m in re.finditer(rb"\n", data)]

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, offset) - 1
        return line + 1, offset - self.starts[line] + 1

    def span(self, start: int, end: int) -> Span:
        line, column = self.position(start)
        end_line, end_column = self.position(end)
        return Span(start, end, line, column, end_line, end_column)


def text(node: tree_sitter.Node) -> str:
    return node.text.decode("utf-8", "replace")


def declarator_name(node: tree_sitter.Node | None) -> tree_sitter.Node | None:
    """The identifier a (possibly nested) declarator declares."""
    while node is not None:
        if node.type in ("identifier", "field_identifier"):
            return node
        node = node.child_by_field_name("declarator")
    return None


def enclosing_function(node: tree_sitter.Node) -> str | None:
    parent = node.parent
    while parent is not None:
        if parent.type == "function_definition":
            name = declarator_name(parent.child_by_field_name("declarator"))
            return text(name) if name is not None else None
        parent = parent.parent
    return None


def preprocessor_conditions(node: tree_sitter.Node) -> tuple[str, ...]:
    """Enclosing #if conditions, outermost first; an #else branch is negated."""
    conditions = []
    child, parent = node, node.parent
    while parent is not None:
        if parent.type in PREPROC_CONTAINERS:
            conditions.append(_branch_condition(parent, child))
        child, parent = parent, parent.parent
    return tuple(reversed([c for c in conditions if c]))


def _branch_condition(container: tree_sitter.Node, child: tree_sitter.Node) -> str:
    in_else = container.child_by_field_name("alternative") == child
    if container.type in ("preproc_else",):
        return ""  # the owning #if records the negation
    if container.type == "preproc_ifdef":
        name = container.child_by_field_name("name")
        negative = container.children[0].type == "#ifndef"
        condition = ("!" if negative else "") + (text(name) if name is not None else "?")
    else:
        cond = container.child_by_field_name("condition")
        condition = text(cond) if cond is not None else "?"
    return negate_condition(condition) if in_else else condition


def negate_condition(condition: str) -> str:
    if condition.startswith("!") and re.fullmatch(r"!\w+", condition):
        return condition[1:]
    return "!" + condition if re.fullmatch(r"\w+", condition) else f"!({condition})"


def _callees(node: tree_sitter.Node) -> list[str]:
    names = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == "call_expression":
            function = current.child_by_field_name("function")
            if function is not None and function.type == "identifier":
                names.append(text(function))
        stack.extend(current.children)
    return names


NAME_TYPES = frozenset({"identifier", "type_identifier"})
FIELD_TYPES = frozenset({"field_identifier"})
NAME_AND_FIELD_TYPES = NAME_TYPES | FIELD_TYPES


def _identifiers(node: tree_sitter.Node, kinds: frozenset[str] = NAME_AND_FIELD_TYPES) -> list[str]:
    names = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type in kinds:
            names.append(text(current))
        stack.extend(current.children)
    return names


def _returns(node: tree_sitter.Node) -> list[str]:
    values = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == "return_statement":
            value = [c for c in current.named_children if c.type != "comment"]
            values.append(text(value[0]) if value else "")
        stack.extend(current.children)
    return values


def _contains(node: tree_sitter.Node, node_type: str) -> bool:
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == node_type:
            return True
        stack.extend(current.children)
    return False


def _unique(items) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _strip_parens(node: tree_sitter.Node) -> tree_sitter.Node:
    while node.type == "parenthesized_expression" and node.named_child_count == 1:
        node = node.named_children[0]
    return node


def site_context(call: tree_sitter.Node, lines: LineIndex, offset: int, in_macro: bool) -> SiteContext:
    """Describe how the expression around `call` is consumed and what it guards."""
    negated = False
    condition = call
    child, parent = call, call.parent
    statement, guarded = "expression", []
    following: list[tree_sitter.Node] = []  # statements after an early exit: controlled too
    while parent is not None:
        kind = parent.type
        if kind == "unary_expression" and text(parent.child_by_field_name("operator")) == "!":
            negated = not negated
        elif kind in ("parenthesized_expression", "binary_expression"):
            pass
        elif kind == "if_statement" and parent.child_by_field_name("condition") == child:
            statement = "if"
            guarded = [parent.child_by_field_name("consequence"), parent.child_by_field_name("alternative")]
            following = _after_early_exit(parent)
            break
        elif kind in LOOP_TYPES and parent.child_by_field_name("condition") == child:
            statement = "while"
            guarded = [parent.child_by_field_name("body")]
            break
        elif kind == "conditional_expression" and parent.child_by_field_name("condition") == child:
            statement = "ternary"
            guarded = [parent.child_by_field_name("consequence"), parent.child_by_field_name("alternative")]
            break
        elif kind == "argument_list" and parent.parent is not None and parent.parent.type == "call_expression":
            callee = parent.parent.child_by_field_name("function")
            if callee is not None and text(callee) in ASSERT_FUNCTIONS:
                statement = "assert"
            break
        elif kind == "return_statement":
            statement = "return"
            break
        else:
            break
        condition = parent if kind != "parenthesized_expression" else condition
        child, parent = parent, parent.parent
    if in_macro and statement == "expression":
        statement = "macro"
    condition = _strip_parens(condition)
    guarded = [g for g in guarded if g is not None]
    function_body = _function_body(call)
    start, end = condition.start_byte + offset, condition.end_byte + offset
    return SiteContext(
        function=enclosing_function(call) if not in_macro else None,
        statement=statement,
        negated=negated,
        condition=text(condition),
        condition_span=lines.span(start, end),
        guarded_calls=_unique(name for g in guarded + following for name in _callees(g)),
        guarded_returns=_unique(value for g in guarded for value in _returns(g)),
        guarded_identifiers=_unique(
            [*(_identifiers(condition)), *(name for g in guarded + following for name in _identifiers(g))]
        ),
        function_calls=_unique(_callees(function_body)) if function_body is not None else (),
        function_identifiers=_unique(_identifiers(function_body)) if function_body is not None else (),
        preprocessor=preprocessor_conditions(call),
    )


EXIT_TYPES = frozenset({"return_statement", "goto_statement"})


def _after_early_exit(if_statement: tree_sitter.Node) -> list[tree_sitter.Node]:
    """`if (c) { return; }` with no else: the statements after it run only when c is false,
    so the condition controls them too."""
    if if_statement.child_by_field_name("alternative") is not None:
        return []
    body = if_statement.child_by_field_name("consequence")
    statements = [c for c in body.named_children if c.type != "comment"] if body.type == "compound_statement" else [body]
    if not statements or any(statement.type not in EXIT_TYPES for statement in statements):
        return []
    following = []
    sibling = if_statement.next_named_sibling
    while sibling is not None:
        following.append(sibling)
        sibling = sibling.next_named_sibling
    return following


def _function_body(node: tree_sitter.Node) -> tree_sitter.Node | None:
    parent = node.parent
    while parent is not None:
        if parent.type == "function_definition":
            return parent.child_by_field_name("body")
        parent = parent.parent
    return None


class Extractor:
    def __init__(self, path: str, data: bytes):
        self.path = path
        self.data = data
        self.lines = LineIndex(data)
        self.facts = FileFacts(path=path, size=len(data))
        self.private: set[str] = set()

    def run(self) -> FileFacts:
        tree = parse(self.data)
        root = tree.root_node
        found = captures("facts", root)
        errors = found.get("error", [])
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
        self._references(found.get("id", []))
        self._definitions(root)
        self._assignments(found.get("assign", []))
        self._capability_assignments(found.get("member_assign", []))
        self._strings(found.get("s", []))
        self._suppressions()
        self.facts.private_names = frozenset(self.private)
        if mostly_unparseable:
            self.facts.unparsed_names = self._unplaced_names(errors)
        return self.facts

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
        offset: int = 0,
        macro: str | None = None,
        macro_preprocessor: tuple[str, ...] = (),
    ) -> None:
        for node in identifiers:
            parent = node.parent
            is_call = parent is not None and parent.type == "call_expression" and parent.child_by_field_name("function") == node
            if parent is not None and parent.type in ("function_declarator", "preproc_function_def", "preproc_def", "preproc_ifdef", "init_declarator"):
                continue  # a definition or a test of the name, not a use
            if parent is not None and parent.type == "declaration" and parent.child_by_field_name("declarator") == node:
                continue
            name = text(node)
            spanned = parent if is_call else node
            span = self.lines.span(spanned.start_byte + offset, spanned.end_byte + offset)
            context = None
            if is_call and name in CONTEXT_SYMBOLS:
                context = site_context(parent, self.lines, offset, in_macro=macro is not None)
                if macro is not None:
                    context = replace(context, preprocessor=macro_preprocessor)
            self.facts.references.append(
                Reference(
                    symbol=name,
                    span=span,
                    kind="call" if is_call else "identifier",
                    function=enclosing_function(node) if macro is None else None,
                    macro=macro,
                    context=context,
                    preprocessor=macro_preprocessor if macro is not None else preprocessor_conditions(node),
                )
            )

    def _macro_body_references(self, macro: tree_sitter.Node, name: str) -> None:
        value = macro.child_by_field_name("value")
        if value is None or not QEMU_KVM_NAME.search(value.text):
            return
        # Keep byte offsets: a backslash-newline becomes two spaces.
        body = value.text.replace(b"\\\n", b"  ")
        wrapped = MACRO_WRAPPER_PREFIX + body + b"\n;}"
        self._references(
            captures("symbols", parse(wrapped).root_node).get("id", []),
            offset=value.start_byte - len(MACRO_WRAPPER_PREFIX),
            macro=name,
            macro_preprocessor=preprocessor_conditions(macro),
        )

    def _definitions(self, node: tree_sitter.Node) -> None:
        for child in node.named_children:
            if child.type in PREPROC_CONTAINERS:
                self._definitions(child)
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
        return tuple(
            text(c) for c in node.children if c.type in ("storage_class_specifier", "function_specifier")
        ) + tuple(text(c) for c in node.children if c.type == "type_qualifier" and text(c) == "inline")

    def _add_definition(self, name: str, kind: str, node: tree_sitter.Node) -> None:
        body = node.child_by_field_name("body") or node.child_by_field_name("value") or node
        self.facts.definitions.append(
            Definition(
                name=name,
                kind=kind,
                span=self._span(node),
                text=text(node),
                storage=self._storage(node) if kind != "macro" else (),
                preprocessor=preprocessor_conditions(node),
                capabilities=_unique(
                    word.decode() for word in re.findall(rb"\bKVM_CAP_\w+", body.text or b"")
                ),
                identifiers=_unique(n for n in _identifiers(body, NAME_TYPES) if n != name),
                field_access=_contains(body, "field_expression"),
                fields=_unique(_identifiers(body, FIELD_TYPES)),
            )
        )

    def _assignments(self, assignments: list[tree_sitter.Node]) -> None:
        for node in assignments:
            left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
            if left is None or right is None or text(node.child_by_field_name("operator")) != "=":
                continue
            self.facts.assignments.append(
                Assignment(text(left), text(right), self._span(node), enclosing_function(node), preprocessor_conditions(node))
            )

    def _capability_assignments(self, assignments: list[tree_sitter.Node]) -> None:
        """Where the KVM state is initialised: which member each capability check sets."""
        for node in assignments:
            left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
            if text(node.child_by_field_name("operator")) != "=":
                continue
            member = left.child_by_field_name("field")
            self.facts.capability_assignments.append(
                Assignment(text(member), text(right), self._span(node), enclosing_function(node), preprocessor_conditions(node))
            )

    def _strings(self, literals: list[tree_sitter.Node]) -> None:
        for node in literals:
            self.facts.strings.append(StringLiteral(text(node)[1:-1], self._span(node), enclosing_function(node)))

    def _suppressions(self) -> None:
        for match in SUPPRESSION.finditer(self.data):
            line, _ = self.lines.position(match.start())
            end_line, _ = self.lines.position(match.end())
            codes = match.group(1)
            names = frozenset(c.strip().decode() for c in codes.split(b",") if c.strip()) if codes else frozenset({"*"})
            for at in range(line, end_line + 1):
                self.facts.suppressions[at] = self.facts.suppressions.get(at, frozenset()) | names

    def _span(self, node: tree_sitter.Node) -> Span:
        return self.lines.span(node.start_byte, node.end_byte)


def extract(path: str, data: bytes) -> FileFacts:
    return Extractor(path, data).run()
