"""Text from the tree, made safe to show a human.

A file name, a build file's line, a function, macro or Kconfig name, a
string from a Python test, a compiler's message: any of them can hold any
character.  Written raw, a newline forges a finding line, an escape sequence
retitles or recolours the terminal (or worse), a bidi override makes a line
read other than it is.  Every human format (text, concise, warnings and
errors on stderr, scope, fix's lines, diff headers, tables) writes such text
through `for_terminal`.  Machine formats (JSON, SARIF, GitLab) carry the exact
names; GitHub's workflow commands have their own escaping.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls, and the bidi embeddings, overrides and isolates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """`text` with the bytes of a file name that are not UTF-8 (read as
    surrogate escapes) written `\\xNN`, so every output encoding can carry it."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _escape(match: re.Match) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def for_terminal(text: str) -> str:
    """`text` on one line, every character that acts on a terminal written as an escape
    (`\\n`, `\\x1b`, `\\u202e`), and bytes that are not UTF-8 as `\\xNN`.  Escaping again changes nothing."""
    text = printable(text)
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text


def lines_for_terminal(text: str) -> str:
    """`text` whose line breaks are its own (a compiler's output): each line escaped, the breaks kept."""
    return "\n".join(for_terminal(line) for line in text.split("\n"))


# git's C-style escapes in quoted paths; every other byte outside printable ASCII is written in octal.
_GIT_ESCAPES = {0x07: "\\a", 0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0B: "\\v", 0x0C: "\\f", 0x0D: "\\r",
                0x22: '\\"', 0x5C: "\\\\"}


def git_quoted(name: str) -> str:
    """A path as git writes it in a diff header: as is when it is printable ASCII without quotes or
    backslashes, else in double quotes with C escapes and octal bytes (core.quotePath), which `git
    apply` reads back: a name cannot end the header's line or act on a terminal."""
    raw = name.encode("utf-8", "surrogateescape")
    if all(0x20 <= byte < 0x7F and byte not in (0x22, 0x5C) for byte in raw):
        return name
    return '"' + "".join(_GIT_ESCAPES.get(byte) or (chr(byte) if 0x20 <= byte < 0x7F else f"\\{byte:03o}")
                         for byte in raw) + '"'
