"""The targets a qtest's code runs for, from the test's own `qtest_get_arch()` checks.

A qtest is common code by path (tests/qtest/), but its command lines are
often only for some targets:

    if (g_str_equal(arch, "i386") || g_str_equal(arch, "x86_64")) {
        qtest_add_func("acpi/q35/kvm/dmar", test_acpi_q35_kvm_dmar);
    }

A string inside such a branch, or in a function the branch registers, runs
only for those targets.  Only branches whose whole condition is a disjunction
of equality tests on the arch are read; anything else says nothing.
Extraction reads the branches (from the tree it already has) only for the few
C files that hold a kernel_irqchip string.
"""

from __future__ import annotations

import re

import tree_sitter

from kvmlint.source.c_syntax import text
from kvmlint.source.facts import ArchBranch

EQUALITY_FUNCTIONS = frozenset({"g_str_equal", "g_strcmp0", "strcmp"})  # g_strcmp0/strcmp: == 0 or !
# Where a comparison can be: extraction looks at the `if`s these sit in the condition of, not at every node.
COMPARISON = re.compile(rb"\b(?:" + b"|".join(name.encode() for name in sorted(EQUALITY_FUNCTIONS)) + rb")\b")
ARCH_SOURCES = ("arch", "qtest_get_arch()")


def arch_branches(if_statements: list[tree_sitter.Node]) -> list[ArchBranch]:
    """The branches among these `if` statements whose condition tests the arch."""
    branches = []
    for node in if_statements:
        condition, body = node.child_by_field_name("condition"), node.child_by_field_name("consequence")
        targets = _targets(condition) if condition is not None else None
        if targets and body is not None:
            names = frozenset(text(n) for n in _walk(body) if n.type == "identifier")
            branches.append(ArchBranch(body.start_byte, body.end_byte, frozenset(targets), names))
    return branches


def _walk(node: tree_sitter.Node):
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(current.children)


def _strip(node: tree_sitter.Node) -> tree_sitter.Node:
    while node.type in ("parenthesized_expression", "condition_clause") and node.named_child_count == 1:
        node = node.named_children[0]
    return node


def _targets(node: tree_sitter.Node) -> set[str] | None:
    """The targets a condition tests for, when it is `arch is A || arch is B || ...`."""
    node = _strip(node)
    if node.type == "binary_expression" and text(node.child_by_field_name("operator")) == "||":
        left, right = _targets(node.child_by_field_name("left")), _targets(node.child_by_field_name("right"))
        return left | right if left is not None and right is not None else None
    target = _equality_target(node)
    return {target} if target is not None else None


def _equality_target(node: tree_sitter.Node) -> str | None:
    negated = False
    if node.type == "unary_expression" and text(node.child_by_field_name("operator")) == "!":
        negated, node = True, _strip(node.child_by_field_name("argument"))
    elif node.type == "binary_expression" and text(node.child_by_field_name("operator")) == "==":
        right = node.child_by_field_name("right")
        if right is None or text(right) != "0":
            return None
        negated, node = True, _strip(node.child_by_field_name("left"))
    if node.type != "call_expression":
        return None
    callee = text(node.child_by_field_name("function"))
    if callee not in EQUALITY_FUNCTIONS or negated != (callee != "g_str_equal"):
        return None  # strcmp() alone means "differs"; !g_str_equal() too
    arguments = [a for a in node.child_by_field_name("arguments").named_children if a.type != "comment"]
    if len(arguments) != 2:
        return None
    subjects = [a for a in arguments if text(a) in ARCH_SOURCES]
    literals = [a for a in arguments if a.type == "string_literal"]
    if len(subjects) != 1 or len(literals) != 1:
        return None
    return text(literals[0])[1:-1]
