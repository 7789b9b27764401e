"""The C syntax tree: tree-sitter-c's parser and queries, positions, and each node's ancestry.

Shared by extraction and by every later reader of C (the rename's tree-wide
scan, the build check's change kinds, the code-mods' edits), so that the tree
is walked one way everywhere: without recursion, in time linear in the tree.
It is also the one place that knows which tree-sitter is installed (0.23 on
Python 3.9, 0.25 on later ones).
"""

from __future__ import annotations

import bisect
import itertools
import re
from functools import lru_cache

import tree_sitter
import tree_sitter_c

from kvmlint.source.facts import Span

PREPROC_CONTAINERS = frozenset({"preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif", "preproc_elifdef"})
MAX_PREPROCESSOR_NESTING = 200  # #if conditions recorded per node
SHALLOW_DEPTH = 100  # nodes deeper than this make the whole tree be mapped top-down


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
    query = _queries()[query_name]
    if hasattr(tree_sitter, "QueryCursor"):  # tree-sitter 0.25 on
        return tree_sitter.QueryCursor(query).captures(node)
    return query.captures(node)


def child_with_descendant(parent: tree_sitter.Node, node: tree_sitter.Node) -> tree_sitter.Node | None:
    """The child of `parent` that is `node` or holds it; None when there is none, or when it
    cannot be told by position (tree-sitter 0.23, on a zero-width node)."""
    if hasattr(parent, "child_with_descendant"):  # tree-sitter 0.24 on
        return parent.child_with_descendant(node)
    # 0.23's child_containing_descendant refuses every Node.  A child that holds a node of
    # any width is the one child whose range holds the node's: siblings do not overlap.
    if node.start_byte == node.end_byte:
        return None
    cursor = parent.walk()
    if cursor.goto_first_child_for_byte(node.start_byte) is None:
        return None
    child = cursor.node
    return child if child.start_byte <= node.start_byte and node.end_byte <= child.end_byte else None


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
            child = child_with_descendant(parent, node)
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
