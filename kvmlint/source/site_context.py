"""What a use's guarded code says: the evidence a rule reads to tell which question a site asks.

For a use of a context symbol (`kvm_irqchip_in_kernel()`), the condition it
sits in, the branch it guards or the early exit it leads to, and the calls,
names, fields and returns found there, read from a bounded number of nodes.
"""

from __future__ import annotations

import tree_sitter

from kvmlint.source.c_syntax import Ancestry, LineIndex, text
from kvmlint.source.facts import SiteContext

ASSERT_FUNCTIONS = frozenset({"assert", "g_assert", "g_assert_true", "g_assert_false"})
LOOP_TYPES = frozenset({"while_statement", "do_statement", "for_statement"})
MAX_EVIDENCE_NODES = 5000  # nodes read from one guarded branch for its evidence
EVIDENCE_NODES_PER_NODE = 4  # evidence nodes read per node of the file, all sites together
MAX_EXPRESSION_WALK = 256  # levels climbed from a call to the statement that consumes it


def unique(items) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


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


def last_first(leaves: list[tree_sitter.Node]) -> list[str]:
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
            self._functions[body.id] = (unique(_callees(nodes)), unique(_identifiers(nodes)))
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
        guarded_calls=unique(_callees(guarded_nodes + following_nodes)),
        guarded_returns=unique(_returns(guarded_nodes)),
        guarded_identifiers=unique(
            [*_identifiers(evidence.nodes(condition)), *_identifiers(guarded_nodes + following_nodes)]
        ),
        function_calls=function_calls,
        function_identifiers=function_identifiers,
        preprocessor=ancestry.conditions(call),
    )


# How a call's value is consumed (`Reference.result`): "truth" where only its truth
# value counts, "number" where its value does, "stored", "argument", "returned",
# "discarded", or "" when it is none of those.
TRUTH_OPERATORS = frozenset({"!", "&&", "||"})
EQUALITY_OPERATORS = frozenset({"==", "!="})
TRUTH_LITERALS = frozenset({"0", "false", "true"})
CONDITION_OWNERS = frozenset({"if_statement", "while_statement", "do_statement", "for_statement", "conditional_expression"})


def result_use(call: tree_sitter.Node, ancestry: Ancestry) -> str:
    """How the value of `call` is used: a predicate's callers that all ask for "truth" would
    read it the same as a bool."""
    child, parent = call, ancestry.parent(call)
    for _ in range(MAX_EXPRESSION_WALK):
        if parent is None:
            return ""
        kind = parent.type
        if kind == "parenthesized_expression":
            child, parent = parent, ancestry.parent(parent)
            continue
        operator = parent.child_by_field_name("operator")
        if kind == "unary_expression":
            return "truth" if text(operator) == "!" else "number"
        if kind == "binary_expression":
            if text(operator) in TRUTH_OPERATORS:
                return "truth"
            other = parent.child_by_field_name("right" if parent.child_by_field_name("left") == child else "left")
            compared_with_truth = other is not None and text(_strip_parens(other)) in TRUTH_LITERALS
            return "truth" if text(operator) in EQUALITY_OPERATORS and compared_with_truth else "number"
        if kind in CONDITION_OWNERS:
            return "truth" if parent.child_by_field_name("condition") == child else ""
        if kind == "argument_list":
            owner = ancestry.parent(parent)
            callee = owner.child_by_field_name("function") if owner is not None and owner.type == "call_expression" else None
            return "truth" if callee is not None and text(callee) in ASSERT_FUNCTIONS else "argument"
        if kind == "init_declarator":
            declaration = ancestry.parent(parent)
            declared = declaration.child_by_field_name("type") if declaration is not None else None
            return "truth" if declared is not None and text(declared) in ("bool", "_Bool") else "stored"
        if kind == "assignment_expression":
            return "stored" if parent.child_by_field_name("right") == child else ""
        if kind == "return_statement":
            function = ancestry.function(call)
            returned = function.child_by_field_name("type") if function is not None else None
            return "truth" if returned is not None and text(returned) in ("bool", "_Bool") else "returned"
        if kind == "expression_statement":
            return "discarded"
        return ""
    return ""


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
