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
import itertools
import re
from dataclasses import replace
from functools import cached_property, lru_cache

import tree_sitter
import tree_sitter_c

from kvmlint.source.facts import (
    Assignment,
    Definition,
    FileFacts,
    Include,
    Reference,
    SiteContext,
    Span,
    StringLiteral,
)
from kvmlint.source.preprocessor import never_compiled

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
ASSERT_FUNCTIONS = frozenset({"assert", "g_assert", "g_assert_true", "g_assert_false"})
LOOP_TYPES = frozenset({"while_statement", "do_statement", "for_statement"})
PREPROC_CONTAINERS = frozenset({"preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif", "preproc_elifdef"})
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
MAX_PREPROCESSOR_NESTING = 200  # #if conditions recorded per node
SHALLOW_DEPTH = 100  # nodes deeper than this make the whole tree be mapped top-down
MAX_EXPRESSION_WALK = 256  # levels climbed from a call to the statement that consumes it
MAX_EVIDENCE_NODES = 5000  # nodes read from one guarded branch for its evidence
EVIDENCE_NODES_PER_NODE = 4  # evidence nodes read per node of the file, all sites together


@lru_cache(maxsize=1)
def _language() -> tree_sitter.Language:
    return tree_sitter.Language(tree_sitter_c.language())


@lru_cache(maxsize=1)
def _parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(_language())


@lru_cache(maxsize=1)
def _queries() -> dict[str, tree_sitter.Query]:
    # No text predicates (#match?): tree-sitter decodes the node's text as
    # UTF-8 for them, and a non-UTF-8 byte in a string literal then raises or
    # crashes the process.  Whole files are not queried: a query walks every
    # node, and takes quadratic time on a syntax-error node with very many
    # children (a 200 KB line of `*`).
    lang = _language()
    return {
        "body_names": tree_sitter.Query(
            lang, "[(identifier) (type_identifier)] @name (field_identifier) @field (field_expression) @access"
        ),
    }


def parse(data: bytes) -> tree_sitter.Tree:
    return _parser().parse(data)


def captures(query_name: str, node: tree_sitter.Node) -> dict[str, list[tree_sitter.Node]]:
    return tree_sitter.QueryCursor(_queries()[query_name]).captures(node)


class LineIndex:
    """Byte offset -> 1-based (line, column)."""

    def __init__(self, data: bytes):
        self.starts = [0, *itertools.accumulate(len(line) + 1 for line in data.split(b"\n")[:-1])]

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


class Ancestry:
    """Parent, enclosing function and `#if` conditions of the nodes of one tree.

    tree-sitter finds a node's parent by descending from the root, so walking
    up from a node costs the square of its depth.  A node is placed by one
    descent from the root instead, which also places its ancestors.  Once a
    descent passes SHALLOW_DEPTH (absurd nesting) the whole tree is mapped in
    one top-down pass, so that many deep nodes cost no more than the tree.
    """

    def __init__(self, root: tree_sitter.Node):
        self.root = root
        self.deep_preprocessor_line: int | None = None  # where nesting passed the bound
        # node id -> (parent, enclosing function_definition, #if conditions outermost first)
        self._info: dict[int, tuple] = {root.id: (None, None, ())}
        self._branches: dict[tuple[int, bool], str] = {}  # (container id, in #else) -> condition

    def parent(self, node: tree_sitter.Node) -> tree_sitter.Node | None:
        return self._lookup(node)[0]

    def function(self, node: tree_sitter.Node) -> tree_sitter.Node | None:
        return self._lookup(node)[1]

    def function_name(self, node: tree_sitter.Node) -> str | None:
        function = self.function(node)
        if function is None:
            return None
        name = declarator_name(function.child_by_field_name("declarator"))
        return text(name) if name is not None else None

    def conditions(self, node: tree_sitter.Node) -> tuple[str, ...]:
        return self._lookup(node)[2]

    def _lookup(self, node: tree_sitter.Node) -> tuple:
        info = self._info.get(node.id)
        if info is None:
            if not self._place(node):
                self._map_tree()
            info = self._info[node.id]
        return info

    def _place(self, node: tree_sitter.Node) -> bool:
        """Descend from the root to `node`, recording each node on the way; False past SHALLOW_DEPTH."""
        parent = self.root
        for _ in range(SHALLOW_DEPTH):
            child = parent.child_with_descendant(node)
            if child is None:
                return False  # not reachable this way: the full map finds it
            if child.id not in self._info:
                in_else = parent.type in PREPROC_CONTAINERS and parent.child_by_field_name("alternative") == child
                self._enter(child, parent, "alternative" if in_else else None)
            if child == node:
                return True
            parent = child
        return False

    def _branch(self, container: tree_sitter.Node, in_else: bool) -> str:
        key = (container.id, in_else)
        if key not in self._branches:
            self._branches[key] = _branch_condition(container, in_else)
        return self._branches[key]

    def _map_tree(self) -> None:
        cursor = self.root.walk()
        path = [self.root]  # the cursor's node and its ancestors
        while True:
            if not cursor.goto_first_child():
                while not cursor.goto_next_sibling():
                    if not cursor.goto_parent():
                        return
                    path.pop()
                path.pop()
            node = cursor.node
            if node.id not in self._info:
                self._enter(node, path[-1], cursor.field_name)
            path.append(node)

    def _enter(self, node: tree_sitter.Node, parent: tree_sitter.Node, field: str | None) -> None:
        _, function, conditions = self._info[parent.id]
        if parent.type == "function_definition":
            function = parent
        elif parent.type in PREPROC_CONTAINERS:
            branch = self._branch(parent, field == "alternative")
            if branch and len(conditions) >= MAX_PREPROCESSOR_NESTING:
                if self.deep_preprocessor_line is None:
                    self.deep_preprocessor_line = node.start_point[0] + 1
            elif branch:
                conditions = (*conditions, branch)
        self._info[node.id] = (parent, function, conditions)


def _branch_condition(container: tree_sitter.Node, in_else: bool) -> str:
    """The condition under which a child of an #if container is compiled; an #else branch is negated."""
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


def _descendants(node: tree_sitter.Node, limit: int | None = None) -> list[tree_sitter.Node]:
    """`node` and the nodes below it (at most `limit`), walked without recursion."""
    found = []
    stack = [node]
    while stack and (limit is None or len(found) < limit):
        current = stack.pop()
        found.append(current)
        stack.extend(current.children)
    return found


def _callees(nodes: list[tree_sitter.Node]) -> list[str]:
    names = []
    for current in nodes:
        if current.type == "call_expression":
            function = current.child_by_field_name("function")
            if function is not None and function.type == "identifier":
                names.append(text(function))
    return names


NAME_AND_FIELD_TYPES = frozenset({"identifier", "type_identifier", "field_identifier"})


def _identifiers(nodes: list[tree_sitter.Node]) -> list[str]:
    return [text(current) for current in nodes if current.type in NAME_AND_FIELD_TYPES]


def _last_first(leaves: list[tree_sitter.Node]) -> list[str]:
    """The texts of leaf nodes, the last in the source first: the order in which
    a definition's names have always been recorded."""
    return [text(node) for node in sorted(leaves, key=lambda node: (node.start_byte, node.end_byte), reverse=True)]


def _returns(nodes: list[tree_sitter.Node]) -> list[str]:
    values = []
    for current in nodes:
        if current.type == "return_statement":
            value = [c for c in current.named_children if c.type != "comment"]
            values.append(text(value[0]) if value else "")
    return values


def error_nodes(root: tree_sitter.Node) -> list[tree_sitter.Node]:
    """The ERROR nodes of the tree, in source order.

    Only subtrees that hold an error are entered: most of a file has none,
    and a query would visit every node.
    """
    found = []
    cursor = root.walk()
    while True:
        node = cursor.node
        if node.type == "ERROR":
            found.append(node)
        if node.has_error and cursor.goto_first_child():
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return found


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


def _unique(items) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _strip_parens(node: tree_sitter.Node) -> tree_sitter.Node:
    while node.type == "parenthesized_expression" and node.named_child_count == 1:
        node = node.named_children[0]
    return node


class EvidenceReader:
    """Reads the nodes that a site's evidence comes from, within one budget for the file.

    Guarded branches nest: with thousands of nested uses, reading each
    branch whole would take quadratic time, so later sites get less once the
    budget is spent.  Each function body is read once, however many uses it has.
    """

    def __init__(self, root: tree_sitter.Node):
        self.budget = EVIDENCE_NODES_PER_NODE * root.descendant_count
        self.exhausted_line: int | None = None
        self._functions: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {}

    def nodes(self, node: tree_sitter.Node) -> list[tree_sitter.Node]:
        found = _descendants(node, max(0, min(MAX_EVIDENCE_NODES, self.budget)))
        self.budget -= len(found)
        if self.budget <= 0 and self.exhausted_line is None:
            self.exhausted_line = node.start_point[0] + 1
        return found

    def function(self, body: tree_sitter.Node) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The calls and identifiers of a function body."""
        if body.id not in self._functions:
            nodes = _descendants(body)
            self._functions[body.id] = (_unique(_callees(nodes)), _unique(_identifiers(nodes)))
        return self._functions[body.id]


def site_context(
    call: tree_sitter.Node,
    ancestry: Ancestry,
    lines: LineIndex,
    offset: int,
    in_macro: bool,
    evidence: EvidenceReader,
) -> SiteContext:
    """Describe how the expression around `call` is consumed and what it guards."""
    negated = False
    condition = call
    child, parent = call, ancestry.parent(call)
    statement, guarded = "expression", []
    following: list[tree_sitter.Node] = []  # statements after an early exit: controlled too
    for _ in range(MAX_EXPRESSION_WALK):
        if parent is None:
            break
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
        elif kind == "argument_list":
            owner = ancestry.parent(parent)
            if owner is not None and owner.type == "call_expression":
                callee = owner.child_by_field_name("function")
                if callee is not None and text(callee) in ASSERT_FUNCTIONS:
                    statement = "assert"
                break
            break
        elif kind == "return_statement":
            statement = "return"
            break
        else:
            break
        condition = parent if kind != "parenthesized_expression" else condition
        child, parent = parent, ancestry.parent(parent)
    if in_macro and statement == "expression":
        statement = "macro"
    condition = _strip_parens(condition)
    guarded_nodes = [node for g in guarded if g is not None for node in evidence.nodes(g)]
    following_nodes = [node for statement in following for node in evidence.nodes(statement)]
    function = ancestry.function(call)
    function_body = function.child_by_field_name("body") if function is not None else None
    function_calls, function_identifiers = evidence.function(function_body) if function_body is not None else ((), ())
    start, end = condition.start_byte + offset, condition.end_byte + offset
    return SiteContext(
        function=ancestry.function_name(call) if not in_macro else None,
        statement=statement,
        negated=negated,
        condition=text(condition),
        condition_span=lines.span(start, end),
        guarded_calls=_unique(_callees(guarded_nodes + following_nodes)),
        guarded_returns=_unique(_returns(guarded_nodes)),
        guarded_identifiers=_unique(
            [*_identifiers(evidence.nodes(condition)), *_identifiers(guarded_nodes + following_nodes)]
        ),
        function_calls=function_calls,
        function_identifiers=function_identifiers,
        preprocessor=ancestry.conditions(call),
    )


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


EXIT_TYPES = frozenset({"return_statement", "goto_statement"})
# Node types that end an expression: climbing from a name past one leaves every argument list it is in.
STATEMENT_SUFFIXES = ("statement", "declaration", "definition", "translation_unit", "declarator")


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
            from kvmlint.source.qtest_arch import COMPARISON, arch_branches  # imports this module: only needed here

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
            if parent is not None and parent.type in ("function_declarator", "preproc_function_def", "preproc_def", "preproc_ifdef", "init_declarator"):
                continue  # a definition or a test of the name, not a use
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
                capabilities=_unique(
                    word.decode() for word in re.findall(rb"\bKVM_CAP_\w+", body.text or b"")
                ),
                identifiers=_unique(n for n in _last_first(found.get("name", [])) if n != name),
                field_access="access" in found,
                fields=_unique(_last_first(found.get("field", []))),
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
