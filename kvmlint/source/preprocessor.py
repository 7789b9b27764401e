"""Which `#if` conditions are constant: code the preprocessor never compiles.

`#if 0` (and the `#else` of `#if 1`) is how C parks dead code; it does not
exist for the compiler, so neither is it a use or a definition of anything.
A condition is evaluated with C's `#if` arithmetic (every value an intmax_t
or a uintmax_t of 64 bits, the usual arithmetic conversions: one unsigned
operand makes the operation unsigned, so `-1 > 0u` is true) and only as far
as it is exact.  `defined(X)` is an unknown 0 or 1, so `#if 0 && defined(X)`
is dead while `#if defined(NEVER)` and `#ifdef X` are not.  Anything else
the evaluator cannot decide exactly makes the whole condition unknown, which
counts as compiled: a macro name (its expansion may hold operators that
regroup the expression), overflow of a signed value, a shift by a negative
count or by 64 or more, a shift of a negative value, division by zero, a
literal too large for its type, a character or a string.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Integer literals (with the suffixes C allows), names, and every operator an #if may hold.
TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:0[xX][0-9a-fA-F]+|0[bB][01]+|[0-9]+)"
    r"(?:[uU](?:ll|LL|[lL])?|(?:ll|LL|[lL])[uU]?)?)(?![\w.])"
    r"|(?P<name>[A-Za-z_$][\w$]*)"
    r"|(?P<operator>&&|\|\||<<|>>|<=|>=|==|!=|[-+*/%<>&^|!~?:()]))"
)
BINARY = {  # operator -> precedence (higher binds tighter)
    "||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6,
    "<": 7, ">": 7, "<=": 7, ">=": 7, "<<": 8, ">>": 8, "+": 9, "-": 9, "*": 10, "/": 10, "%": 10,
}
WIDTH = 64  # intmax_t and uintmax_t
UNSIGNED_MASK = (1 << WIDTH) - 1
SIGNED_MAX = (1 << (WIDTH - 1)) - 1
SIGNED_MIN = -(1 << (WIDTH - 1))
COMPARISONS = ("==", "!=", "<", ">", "<=", ">=")  # each gives a signed 0 or 1
UNKNOWN = None  # a value the condition alone does not decide
MAX_TOKENS = 400  # longer conditions are not evaluated (unknown)

# A value of an #if expression: the number (None when unknown) and whether its type is unsigned.
# The type is always known: C decides it from the operands' types, not their values.
Value = tuple  # (int | None, bool)


def never_compiled(conditions: tuple[str, ...]) -> bool:
    """Whether code under these enclosing conditions (outermost first) is never compiled."""
    return any(constant_value(condition) == 0 for condition in conditions)


@lru_cache(maxsize=4096)  # a file repeats a few conditions on every node under them
def constant_value(condition: str) -> int | None:
    """The value of an #if condition when it is decided exactly, else None."""
    tokens = _tokens(condition)
    if tokens is None:
        return UNKNOWN
    parser = _Parser(tokens)
    try:
        value, _ = parser.conditional()
    except _Unreadable:
        return UNKNOWN
    return value if parser.at_end() else UNKNOWN


def _tokens(condition: str) -> list[tuple[str, str]] | None:
    # Spliced lines are one line, and comments inside the condition are not part of it.
    condition = re.sub(r"\\\r?\n", "", condition)
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
    """The condition is not decided exactly: it is unknown as a whole."""


class _Parser:
    """Precedence climbing over the tokens; unknown values (None) carry their type through."""

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

    def conditional(self) -> Value:
        value = self.binary(1)
        if self._peek() != "?":
            return value
        self._take()
        test = value[0]
        then = self.conditional()
        self._expect(":")
        otherwise = self.conditional()
        # The result has the converted type of both branches, whichever is taken.
        unsigned = then[1] or otherwise[1]
        then, otherwise = _converted(then, unsigned), _converted(otherwise, unsigned)
        if test is UNKNOWN:
            return then if then == otherwise else (UNKNOWN, unsigned)
        return then if test else otherwise

    def binary(self, lowest: int) -> Value:
        left = self.unary()
        while True:
            operator = self._peek()
            precedence = BINARY.get(operator or "")
            if precedence is None or precedence < lowest:
                return left
            self._take()
            right = self.binary(precedence + 1)
            left = _apply(operator, left, right)

    def unary(self) -> Value:
        kind, text = self._take()
        if kind == "number":
            return _literal(text)
        if kind == "name":
            if text != "defined":
                raise _Unreadable  # a macro: its expansion is not known here
            # `defined X` or `defined(X)`: whether X is a macro is not known here
            if self._peek() == "(":
                self._take()
                self._name()
                self._expect(")")
            else:
                self._name()
            return UNKNOWN, False
        if text == "(":
            value = self.conditional()
            self._expect(")")
            return value
        if text in ("!", "~", "-", "+"):
            number, unsigned = self.unary()
            if text == "!":
                return (UNKNOWN if number is UNKNOWN else int(number == 0)), False
            if number is UNKNOWN:
                return UNKNOWN, unsigned
            return _result({"~": ~number, "-": -number, "+": number}[text], unsigned)
        raise _Unreadable

    def _name(self) -> None:
        if self._take()[0] != "name":
            raise _Unreadable


def _literal(text: str) -> Value:
    digits = text.rstrip("uUlL")
    unsigned = "u" in text[len(digits):].lower()
    try:
        if digits[:2].lower() in ("0x", "0b"):
            number, decimal = int(digits, 0), False
        elif digits.startswith("0"):
            number, decimal = int(digits, 8), False
        else:
            number, decimal = int(digits), True
    except ValueError:  # 089
        raise _Unreadable from None
    if number > UNSIGNED_MASK or (number > SIGNED_MAX and decimal and not unsigned):
        raise _Unreadable  # too large for any type C gives it
    return number, unsigned or number > SIGNED_MAX  # a hexadecimal or octal beyond intmax_t is uintmax_t


def _converted(value: Value, unsigned: bool) -> Value:
    number, _ = value
    if unsigned and number is not UNKNOWN:
        number &= UNSIGNED_MASK
    return number, unsigned


def _result(number: int, unsigned: bool) -> Value:
    """An operation's exact value in its type: unsigned wraps, signed overflow is not exact."""
    if unsigned:
        return number & UNSIGNED_MASK, True
    if not SIGNED_MIN <= number <= SIGNED_MAX:
        raise _Unreadable
    return number, False


def _apply(operator: str, left: Value, right: Value) -> Value:
    if operator in ("&&", "||"):
        return _logical(operator, left[0], right[0]), False
    if operator in ("<<", ">>"):
        return _shift(operator, left, right)
    unsigned = left[1] or right[1]  # the usual arithmetic conversions
    (a, _), (b, _) = _converted(left, unsigned), _converted(right, unsigned)
    if operator == "*" and 0 in (a, b):
        return 0, unsigned
    if UNKNOWN in (a, b):
        return UNKNOWN, unsigned and operator not in COMPARISONS
    if operator in COMPARISONS:
        return int({"==": a == b, "!=": a != b, "<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[operator]), False
    if operator in ("/", "%"):
        if b == 0:
            raise _Unreadable
        quotient = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)  # C truncates toward zero
        return _result(quotient if operator == "/" else a - b * quotient, unsigned)
    return _result({"|": a | b, "^": a ^ b, "&": a & b, "+": a + b, "-": a - b, "*": a * b}[operator], unsigned)


def _logical(operator: str, a: int | None, b: int | None) -> int | None:
    if operator == "&&":
        if a == 0 or b == 0:
            return 0
        return UNKNOWN if UNKNOWN in (a, b) else 1
    if (a is not UNKNOWN and a) or (b is not UNKNOWN and b):
        return 1
    return UNKNOWN if UNKNOWN in (a, b) else 0


def _shift(operator: str, left: Value, right: Value) -> Value:
    # A shift has the type of its left operand; the count is not converted with it.
    (number, unsigned), (count, _) = left, right
    if count is not UNKNOWN and not 0 <= count < WIDTH:
        raise _Unreadable
    if number is UNKNOWN or count is UNKNOWN:
        return UNKNOWN, unsigned
    if number < 0:
        raise _Unreadable  # undefined (<<) or implementation-defined (>>)
    return _result(number << count if operator == "<<" else number >> count, unsigned)
