"""Where a name stands as a C token: outside comments, string and character literals.

A tree-wide rename must see every place the preprocessor reads the name,
also in files tree-sitter does not parse as C (x-macro `.def` files,
assembly) and in macro bodies.  This is the preprocessor's view, one linear
pass over the bytes; what the name means at each place is for the parser.
"""

from __future__ import annotations

import re
from functools import lru_cache

IDENTIFIER_BYTE = rb"[A-Za-z0-9_$]"
# Comments, strings and character literals, each matched whole (an unterminated one ends at
# the end of its line, or of the file for a comment) so that a pass stays linear.
SKIPPED = rb"//(?:[^\\\n]|\\.)*|/\*.*?(?:\*/|\Z)|\"(?:[^\"\\\n]|\\.)*\"?|'(?:[^'\\\n]|\\.)*'?"
MEMBER_OPERATOR = re.compile(rb"(?:\.|->)(?:\s|\\\n)*\Z")
LINE_CONTINUATION = re.compile(rb"\\\r?\n")
MACRO_DEFINITION = re.compile(rb"[ \t]*#[ \t]*define[ \t]+[A-Za-z_$][\w$]*(\([^)]*\))?")
PASTE_CHAIN = re.compile(rb"[\w$]+(?:[ \t]*##[ \t]*[\w$]+)+")
PASTE_OPERATOR = re.compile(rb"[ \t]*##[ \t]*")
MIN_PASTED_LITERAL = 3  # letters and digits a paste chain must spell itself to be taken as building a name
LOOK_BEHIND = 256  # bytes looked at before a name for a member operator


@lru_cache(maxsize=16)
def _pattern(word: bytes) -> re.Pattern:
    return re.compile(
        SKIPPED + rb"|(?P<word>(?<!" + IDENTIFIER_BYTE + rb")" + re.escape(word) + rb"(?!" + IDENTIFIER_BYTE + rb"))",
        re.DOTALL,
    )


@lru_cache(maxsize=16)
def _bare(word: bytes) -> re.Pattern:
    return re.compile(rb"(?<!" + IDENTIFIER_BYTE + rb")" + re.escape(word) + rb"(?!" + IDENTIFIER_BYTE + rb")")


def token_offsets(data: bytes, word: str) -> list[int]:
    """Where `word` starts as a whole identifier token, outside comments and literals."""
    encoded = word.encode()
    if encoded not in data:
        return []
    return [match.start() for match in _pattern(encoded).finditer(data) if match.lastgroup == "word"]


def string_offsets(data: bytes, word: str) -> list[int]:
    """Where `word` stands as a whole word inside a string literal (`alias("kvm_x")`, `asm("call kvm_x")`)."""
    encoded = word.encode()
    if encoded not in data:
        return []
    pattern, bare = _pattern(encoded), _bare(encoded)
    return [match.start() + inside.start()
            for match in pattern.finditer(data) if match.group().startswith(b'"')
            for inside in bare.finditer(match.group())]


def names_word(data: bytes, word: str) -> bool:
    """Whether `word` stands in `data` as a whole word at all (comments and prose too)."""
    encoded = word.encode()
    return encoded in data and _bare(encoded).search(data) is not None


def first_word_line(data: bytes, word: str) -> int:
    match = _bare(word.encode()).search(data)
    return data.count(b"\n", 0, match.start()) + 1 if match else 1


def split_by_continuation(data: bytes, word: str) -> int | None:
    """The line where a backslash-newline splits `word` (`kvm_irq\\<newline>chip`), if one does:
    the preprocessor joins the lines, so the name is there though no line spells it."""
    if b"\\\n" not in data and b"\\\r\n" not in data:
        return None
    joined = LINE_CONTINUATION.sub(b"", data)
    pattern = _bare(word.encode())
    if len(pattern.findall(joined)) <= len(pattern.findall(data)):
        return None
    for continuation in LINE_CONTINUATION.finditer(data):
        start = max(0, continuation.start() - len(word))
        window = data[start : continuation.end() + len(word)]
        if pattern.search(LINE_CONTINUATION.sub(b"", window)) and not pattern.search(window):
            return data.count(b"\n", 0, continuation.start()) + 1
    return 1


def after_member_operator(data: bytes, offset: int) -> bool:
    """Whether the name at `offset` follows `.` or `->`: a struct member, or a designator."""
    return MEMBER_OPERATOR.search(data, max(0, offset - LOOK_BEHIND), offset) is not None


def next_to_paste(data: bytes, start: int, end: int) -> bool:
    """Whether the token at data[start:end] is an operand of `##`."""
    return data[max(0, start - LOOK_BEHIND) : start].rstrip(b" \t").endswith(b"##") or data[end:end + LOOK_BEHIND].lstrip(b" \t").startswith(b"##")


def pasted_parts(data: bytes, words: tuple[str, ...]) -> dict[str, int]:
    """For each of `words` that a macro's `##` may build where no token spells it
    (`kvm_irqchip_ ## how`), the line of the first such macro.

    A chain of pasted operands builds a word when its literal parts match it, a
    macro parameter standing for any name.  A chain of parameters and
    underscores only (a generic `glue(a, b)`, `reg ## _ ## field`) is left:
    what it builds is at its callers.
    """
    found: dict[str, int] = {}
    if b"##" not in data:
        return found
    encoded = [word.encode() for word in words]
    seen: set[int] = set()
    at = data.find(b"##")
    while at >= 0 and len(found) < len(words):
        start = _logical_line_start(data, at)
        if start not in seen:
            seen.add(start)
            for word, built in zip(words, encoded):
                if word not in found and _macro_may_build(_logical_line(data, start), built):
                    found[word] = data.count(b"\n", 0, start) + 1
        at = data.find(b"##", at + 2)
    return found


def _logical_line_start(data: bytes, offset: int) -> int:
    start = data.rfind(b"\n", 0, offset) + 1
    while start >= 2 and data[start - 2 : start] == b"\\\n":
        start = data.rfind(b"\n", 0, start - 2) + 1
    return start


def _logical_line(data: bytes, start: int) -> bytes:
    end = data.find(b"\n", start)
    while end > 0 and data[end - 1 : end] == b"\\":
        end = data.find(b"\n", end + 1)
    return LINE_CONTINUATION.sub(b" ", data[start : len(data) if end < 0 else end])


def _macro_may_build(line: bytes, word: bytes) -> bool:
    definition = MACRO_DEFINITION.match(line)
    if definition is None:
        return False
    parameters = set(re.findall(rb"[A-Za-z_$][\w$]*|\.\.\.", definition.group(1) or b""))
    if b"..." in parameters:
        parameters.add(b"__VA_ARGS__")
    for chain in PASTE_CHAIN.finditer(line, definition.end()):
        parts = PASTE_OPERATOR.split(chain.group())
        literals = [part for part in parts if part not in parameters]
        if len(b"".join(literals).replace(b"_", b"")) < MIN_PASTED_LITERAL or not all(part in word for part in literals):
            continue  # `reg ## _ ## field`: the parameters make the name
        pattern = b"".join(rb"[\w$]*" if part in parameters else re.escape(part) for part in parts)
        if re.fullmatch(pattern, word):
            return True
    return False
