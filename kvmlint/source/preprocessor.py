"""Which `#if` conditions are constant: code the preprocessor never compiles.

`#if 0` (and the `#else` of `#if 1`) is how C parks dead code; it does not
exist for the compiler, so neither is it a use or a definition of anything.
A condition is evaluated only as far as its literals decide it: a macro name,
`defined(X)` or anything not understood is unknown, so `#if defined(NEVER)`
and `#ifdef X` are never taken as dead, while `#if 0 && defined(X)` is.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Integer literals (with their suffixes), names, and every operator an #if may hold.
TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:0[xX][0-9a-fA-F]+|0[bB][01]+|[0-9]+)[uUlL]*)(?![\w.])"
    r"|(?P<name>[A-Za-z_$][\w$]*)"
    r"|(?P<operator>&&|\|\||<<|>>|<=|>=|==|!=|[-+*/%<>&^|!~?:()]))"
)
BINARY = {  # operator -> precedence (higher binds tighter)
    "||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6,
    "<": 7, ">": 7, "<=": 7, ">=": 7, "<<": 8, ">>": 8, "+": 9, "-": 9, "*": 10, "/": 10, "%": 10,
}
UNKNOWN = None  # a value the literals alone do not decide
MAX_TOKENS = 400  # longer conditions are not evaluated (unknown)


def never_compiled(conditions: tuple[str, ...]) -> bool:
    """Whether code under these enclosing conditions (outermost first) is never compiled."""
    return any(constant_value(condition) == 0 for condition in conditions)


@lru_cache(maxsize=4096)  # a file repeats a few conditions on every node under them
def constant_value(condition: str) -> int | None:
    """The value of an #if condition when its literals decide it, else None."""
    tokens = _tokens(condition)
    if tokens is None:
        return UNKNOWN
    parser = _Parser(tokens)
    try:
        value = parser.conditional()
    except _Unreadable:
        return UNKNOWN
    return value if parser.at_end() else UNKNOWN


def _tokens(condition: str) -> list[tuple[str, str]] | None:
    # Comments inside the condition are not part of it.
    condition = re.sub(r"/\*.*?\*/|//.*", " ", condition, flags=re.DOTALL)
    tokens, at = [], 0
    while at < len(condition):
        match = TOKEN.match(condition, at)
        if match is None:
            if condition[at:].strip():
                return None  # a string, a char literal, a float: not evaluated
            break
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        at = match.end()
        if len(tokens) > MAX_TOKENS:
            return None
    return tokens


class _Unreadable(Exception):
    pass


class _Parser:
    """Precedence climbing over the tokens, with unknown values (None) carried through."""

    def __init__(self, tokens: list[tuple[str, str]]):
        self.tokens = tokens
        self.at = 0

    def at_end(self) -> bool:
        return self.at == len(self.tokens)

    def _peek(self) -> str | None:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        if self.at >= len(self.tokens):
            raise _Unreadable
        self.at += 1
        return self.tokens[self.at - 1]

    def _expect(self, text: str) -> None:
        if self._take()[1] != text:
            raise _Unreadable

    def conditional(self) -> int | None:
        test = self.binary(1)
        if self._peek() != "?":
            return test
        self._take()
        then = self.conditional()
        self._expect(":")
        otherwise = self.conditional()
        if test is UNKNOWN:
            return then if then == otherwise else UNKNOWN
        return then if test else otherwise

    def binary(self, lowest: int) -> int | None:
        left = self.unary()
        while True:
            operator = self._peek()
            precedence = BINARY.get(operator or "")
            if precedence is None or precedence < lowest:
                return left
            self._take()
            right = self.binary(precedence + 1)
            left = _apply(operator, left, right)

    def unary(self) -> int | None:
        kind, text = self._take()
        if kind == "number":
            return _integer(text.rstrip("uUlL"))
        if kind == "name":
            if text == "defined":  # `defined X` or `defined(X)`: whether X is a macro is not known here
                if self._peek() == "(":
                    self._take()
                    self._name()
                    self._expect(")")
                else:
                    self._name()
            return UNKNOWN  # a macro, or a name the preprocessor turns into 0: not known here
        if text == "(":
            value = self.conditional()
            self._expect(")")
            return value
        if text in ("!", "~", "-", "+"):
            value = self.unary()
            if value is UNKNOWN:
                return UNKNOWN
            return {"!": int(not value), "~": ~value, "-": -value, "+": value}[text]
        raise _Unreadable

    def _name(self) -> None:
        if self._take()[0] != "name":
            raise _Unreadable


def _integer(digits: str) -> int:
    try:
        if digits[:2].lower() in ("0x", "0b"):
            return int(digits, 0)
        return int(digits, 8) if digits.startswith("0") else int(digits)
    except ValueError:  # 089, or more digits than Python converts
        raise _Unreadable from None


def _apply(operator: str, left: int | None, right: int | None) -> int | None:
    if operator == "&&":
        if left == 0 or right == 0:
            return 0
        return UNKNOWN if UNKNOWN in (left, right) else 1
    if operator == "||":
        if (left is not UNKNOWN and left) or (right is not UNKNOWN and right):
            return 1
        return UNKNOWN if UNKNOWN in (left, right) else 0
    if operator == "*" and 0 in (left, right):
        return 0
    if UNKNOWN in (left, right):
        return UNKNOWN
    if operator in ("/", "%") and right == 0:
        return UNKNOWN
    if operator in ("<<", ">>") and not 0 <= right < 64:
        return UNKNOWN
    return {
        "|": lambda: left | right, "^": lambda: left ^ right, "&": lambda: left & right,
        "==": lambda: int(left == right), "!=": lambda: int(left != right),
        "<": lambda: int(left < right), ">": lambda: int(left > right),
        "<=": lambda: int(left <= right), ">=": lambda: int(left >= right),
        "<<": lambda: left << right, ">>": lambda: left >> right,
        "+": lambda: left + right, "-": lambda: left - right, "*": lambda: left * right,
        "/": lambda: int(left / right), "%": lambda: left - right * int(left / right),
    }[operator]()
