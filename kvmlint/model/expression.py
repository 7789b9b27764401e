"""C boolean expressions: parse with tree-sitter-c, reduce against the model, render back.

One small language serves both sides: the conditions found in QEMU code and the
formulas in the model's TOML data (`irqchip != "off" && KVM_CAP_IRQ_ROUTING`).
Anything the language does not model (`env->halted`, `qemu_cpu_has_work(env)`,
`rfd != -1`) becomes a leaf that a resolver may leave free.

Values are `True`/`False`, ints (C truthiness), strings (enumerated facts) or
`NA` ("not applicable": an arch-specific predicate asked on another arch).
`reduce` folds what the resolver knows and returns either a value or the
residual expression over the free leaves.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterator, Union


class ExpressionError(ValueError):
    """The text is not a C expression this module can read."""


class _TooDeep(Exception):
    pass


class _NotApplicable:
    def __repr__(self) -> str:
        return "n/a"

    __str__ = __repr__


NA = _NotApplicable()


@dataclass(frozen=True)
class Const:
    value: bool | int


@dataclass(frozen=True)
class Str:
    value: str


@dataclass(frozen=True)
class Leaf:
    """A call or a name: `kind` is "call" (with `name` the callee) or "name"."""

    kind: str
    name: str
    text: str


@dataclass(frozen=True)
class Not:
    operand: "Node"


@dataclass(frozen=True)
class And:
    left: "Node"
    right: "Node"


@dataclass(frozen=True)
class Or:
    left: "Node"
    right: "Node"


@dataclass(frozen=True)
class Cond:
    test: "Node"
    then: "Node"
    otherwise: "Node"


@dataclass(frozen=True)
class Cmp:
    """`==`/`!=` with a literal on at least one side (other comparisons are leaves)."""

    op: str
    left: "Node"
    right: "Node"


Node = Union[Const, Str, Leaf, Not, And, Or, Cond, Cmp]
Value = Union[bool, int, str, _NotApplicable]
Resolver = Callable[[Leaf], "Value | Node | None"]  # None: keep the leaf free

_WRAPPER = "int __kvmlint_expr = ({});"
# A deeper expression is refused: reading, reducing and rendering one recurse once a level, and no
# condition in real code comes near it (a chain `a && b && ...` is one level a term).
MAX_NESTING = 200
# A longer one is refused before it is parsed: a site's condition is read once per rewrite of each
# of its calls, so a condition of thousands of calls would cost their square.
MAX_EXPRESSION_CHARS = 4096


def _text(node) -> str:
    return " ".join(node.text.decode("utf-8", "replace").split())


@lru_cache(maxsize=4096)
def parse(text: str) -> Node:
    """Parse one C expression; raise ExpressionError when it is not one, or too long or deep to read."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"longer than {MAX_EXPRESSION_CHARS} characters: {_excerpt(text)}")
    source = _WRAPPER.format(text).encode("utf-8")
    from kvmlint.source import c_syntax  # tree-sitter loads when the first expression is read

    tree = c_syntax.parse(source)
    if tree.root_node.has_error:
        raise ExpressionError(f"not a C expression: {_excerpt(text)}")
    declaration = tree.root_node.named_children[0]
    value = declaration.child_by_field_name("declarator").child_by_field_name("value")
    try:
        return _convert(value, 0)
    except _TooDeep:
        raise ExpressionError(f"nested more than {MAX_NESTING} levels deep: {_excerpt(text)}") from None


def _excerpt(text: str, limit: int = 60) -> str:
    """The text as an error message quotes it: on one line, and not thousands of characters."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _convert(node, depth: int) -> Node:
    if depth > MAX_NESTING:
        raise _TooDeep
    depth += 1
    kind = node.type
    if kind in ("parenthesized_expression", "cast_expression"):
        return _convert(node.named_children[-1], depth)
    if kind == "true":
        return Const(True)
    if kind == "false":
        return Const(False)
    if kind == "number_literal":
        try:
            return Const(int(node.text.decode().rstrip("uUlL"), 0))
        except ValueError:
            return Leaf("name", _text(node), _text(node))
    if kind == "string_literal":
        return Str("".join(child.text.decode() for child in node.named_children))
    if kind == "unary_expression" and node.child_by_field_name("operator").type == "!":
        return Not(_convert(node.child_by_field_name("argument"), depth))
    if kind == "binary_expression":
        op = node.child_by_field_name("operator").type
        if op in ("&&", "||"):
            left = _convert(node.child_by_field_name("left"), depth)
            right = _convert(node.child_by_field_name("right"), depth)
            return And(left, right) if op == "&&" else Or(left, right)
        if op in ("==", "!="):
            left = _convert(node.child_by_field_name("left"), depth)
            right = _convert(node.child_by_field_name("right"), depth)
            if isinstance(left, (Const, Str)) or isinstance(right, (Const, Str)):
                return Cmp(op, left, right)
    if kind == "conditional_expression":
        return Cond(
            _convert(node.child_by_field_name("condition"), depth),
            _convert(node.child_by_field_name("consequence"), depth),
            _convert(node.child_by_field_name("alternative"), depth),
        )
    if kind == "call_expression":
        callee = node.child_by_field_name("function")
        if callee.type == "identifier":
            return Leaf("call", callee.text.decode(), _text(node))
    return Leaf("name", _text(node), _text(node))


# --- reduction -------------------------------------------------------------------------


def _truth(value: Value) -> bool:
    return bool(value)


def _is_value(item) -> bool:
    return isinstance(item, (bool, int, str, _NotApplicable))


def reduce(node: Node, resolve: Resolver) -> Value | Node:
    """Fold everything `resolve` knows; return a value or the residual expression."""
    if isinstance(node, Const):
        return node.value
    if isinstance(node, Str):
        return node.value
    if isinstance(node, Leaf):
        known = resolve(node)
        return node if known is None else known
    if isinstance(node, Not):
        operand = reduce(node.operand, resolve)
        if operand is NA:
            return NA
        return (not _truth(operand)) if _is_value(operand) else _negate(operand)
    if isinstance(node, (And, Or)):
        return _junction(type(node), reduce(node.left, resolve), reduce(node.right, resolve))
    if isinstance(node, Cond):
        test = reduce(node.test, resolve)
        if test is NA:
            return NA
        if _is_value(test):
            return reduce(node.then if _truth(test) else node.otherwise, resolve)
        then, otherwise = reduce(node.then, resolve), reduce(node.otherwise, resolve)
        if _is_value(then) and _is_value(otherwise) and then == otherwise:
            return then
        return Cond(test, _as_node(then), _as_node(otherwise))
    if isinstance(node, Cmp):
        return _compare(node.op, reduce(node.left, resolve), reduce(node.right, resolve))
    raise TypeError(node)


def _junction(kind, left, right):
    absorbing = kind is Or  # true absorbs ||, false absorbs &&
    for side in (left, right):
        if _is_value(side) and side is not NA and _truth(side) == absorbing:
            return absorbing
    if left is NA or right is NA:
        return NA
    if _is_value(left):
        return right
    if _is_value(right):
        return left
    return kind(left, right)


def _compare(op: str, left, right):
    if left is NA or right is NA:
        return NA
    if _is_value(left) and _is_value(right):
        equal = left == right if isinstance(left, str) or isinstance(right, str) else int(left) == int(right)
        return equal if op == "==" else not equal
    residual, literal = (left, right) if _is_value(right) else (right, left)
    if isinstance(literal, bool) or literal in (0, 1):
        # a free leaf is a C truth value: `x == 0` is `!x`, `x != 0` and `x == 1` are `x`
        keeps_truth = (op == "==") == bool(literal)
        return residual if keeps_truth else _negate(residual)
    return Cmp(op, _as_node(left), _as_node(right))


def _negate(node: Node) -> Node:
    return node.operand if isinstance(node, Not) else Not(node)


def _as_node(item) -> Node:
    if isinstance(item, str):
        return Str(item)
    if _is_value(item):
        return Const(item)
    return item


# --- free leaves -----------------------------------------------------------------------


def leaves(node) -> Iterator[Leaf]:
    """Every leaf (call or name) of an expression, left to right (with a stack: nested
    generators would cost each leaf a step per level above it)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Leaf):
            yield item
        elif isinstance(item, Not):
            stack.append(item.operand)
        elif isinstance(item, (And, Or, Cmp)):
            stack += (item.right, item.left)
        elif isinstance(item, Cond):
            stack += (item.otherwise, item.then, item.test)


def assignments(symbols: list[str]) -> Iterator[dict[str, bool]]:
    """Every true/false assignment of the free symbols (one empty one when there are none)."""
    for values in itertools.product((False, True), repeat=len(symbols)):
        yield dict(zip(symbols, values))


def evaluate(item, assignment: dict[str, bool]) -> Value:
    """The value of a reduced expression once every free leaf has a value."""
    if _is_value(item):
        return item
    return reduce(item, lambda leaf: assignment[leaf.text])


# --- rendering -------------------------------------------------------------------------

_PRECEDENCE = {Cond: 1, Or: 2, And: 3, Cmp: 4, Not: 5}


def render(item) -> str:
    """C text of a value or a residual expression, with only the parentheses it needs."""
    if item is NA:
        return "n/a"
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, str):
        return f'"{item}"'
    return _render(item)


def _render(node: Node, outer: int = 0) -> str:
    if isinstance(node, Const):
        return render(node.value)
    if isinstance(node, Str):
        return f'"{node.value}"'
    if isinstance(node, Leaf):
        return node.text
    mine = _PRECEDENCE[type(node)]
    if isinstance(node, Not):
        text = "!" + _render(node.operand, mine)
    elif isinstance(node, And):
        text = f"{_render(node.left, mine)} && {_render(node.right, mine + 1)}"
    elif isinstance(node, Or):
        text = f"{_render(node.left, mine)} || {_render(node.right, mine + 1)}"
    elif isinstance(node, Cmp):
        text = f"{_render(node.left, mine + 1)} {node.op} {_render(node.right, mine + 1)}"
    else:
        text = f"{_render(node.test, mine + 1)} ? {_render(node.then)} : {_render(node.otherwise, mine)}"
    return f"({text})" if mine < outer else text


def replace_call(text: str, callee: str, replacement: str) -> str:
    """`text` with every zero-argument call `callee()` replaced by `replacement`."""
    return re.sub(rf"\b{re.escape(callee)}\s*\(\s*\)", replacement, text)
