"""Small, byte-exact helpers the C code-mods share: lines, includes, guards."""

from __future__ import annotations

import re

from kvmlint.codemods.engine import Edit
from kvmlint.source.c_syntax import parse

INCLUDE_LINE = re.compile(rb'^#\s*include\s+(["<])([^">]+)[">][^\n]*\n', re.MULTILINE)
GUARD = re.compile(rb"^#ifndef\s+(\w+)\s*\n#define\s+\1\b", re.MULTILINE)


def line_start(data: bytes, offset: int) -> int:
    return data.rfind(b"\n", 0, offset) + 1


def line_end(data: bytes, offset: int) -> int:
    """Offset just past the newline that ends the line holding `offset - 1`."""
    newline = data.find(b"\n", max(offset - 1, 0))
    return len(data) if newline < 0 else newline + 1


def _blank_line_at(data: bytes, offset: int) -> bool:
    end = data.find(b"\n", offset)
    return end >= 0 and not data[offset:end].strip()


def leading_comment_start(data: bytes, start: int) -> int:
    """Where a comment that directly precedes `start` (no blank line between) begins."""
    begin = line_start(data, start)
    before = data[:begin].rstrip(b" \t")
    if before.endswith((b"*/\n", b"*/\r\n")):
        opener = before.rfind(b"/*")
        between = data[opener:begin].replace(b"\r\n", b"\n")
        if opener >= 0 and b"\n\n" not in between and before[opener - 1 : opener] in (b"", b"\n"):
            return opener
    return begin


def removal(path: str, data: bytes, start: int, end: int) -> Edit:
    """Delete whole lines from `start` to `end`, with its doc comment and one blank line.

    A blank line is taken with it only when one also stands before it, so the
    surrounding code keeps its spacing.
    """
    begin = leading_comment_start(data, start)
    finish = line_end(data, end)
    before_blank = begin == 0 or _blank_line_at(data, line_start(data, begin - 1))
    if before_blank and _blank_line_at(data, finish):
        finish = line_end(data, finish + 1)
    elif before_blank and begin > 0 and not data[finish:].strip():
        begin = line_start(data, begin - 1)  # the last definition goes: so does the blank line above it
    return Edit(path, begin, finish, b"")


def block_text(data: bytes, start: int, end: int) -> bytes:
    """The lines of a definition, with its doc comment, ending in a newline."""
    return data[leading_comment_start(data, start) : line_end(data, end)]


def include_edit(path: str, data: bytes, spelling: str, after_basename: str | None) -> Edit | None:
    """Add `#include "spelling"` after the include of `after_basename` (else after the last include)."""
    includes = list(INCLUDE_LINE.finditer(data))

    def basename(match) -> str:
        return match.group(2).decode(errors="replace").rsplit("/", 1)[-1]

    if any(basename(m) == spelling.rsplit("/", 1)[-1] for m in includes):
        return None
    # The project's own header is a quoted include; <linux/kvm.h> is the kernel's.
    anchor = next(
        (m for m in includes if after_basename and m.group(1) == b'"' and basename(m) == after_basename),
        includes[-1] if includes else None,
    )
    line = f'#include "{spelling}"\n'.encode()
    if anchor is None:
        return Edit(path, 0, 0, line)
    return Edit(path, anchor.end(), anchor.end(), line)


def first_function_start(data: bytes) -> int | None:
    """Start of the first top-level function definition (or the comment above it)."""
    for node in parse(data).root_node.named_children:
        if node.type == "function_definition":
            return leading_comment_start(data, node.start_byte)
    return None


def guard_name(data: bytes) -> str | None:
    match = GUARD.search(data)
    return match.group(1).decode() if match else None


def final_endif(data: bytes) -> int | None:
    """Start of the line holding the last `#endif` (the include guard's)."""
    index = data.rstrip().rfind(b"#endif")
    return line_start(data, index) if index >= 0 else None


def license_lines(data: bytes) -> list[str]:
    """The licence sentences of a file's leading comment block, as ` * ...` lines."""
    match = re.match(rb"\s*/\*(.*?)\*/", data, re.DOTALL)
    if not match:
        return []
    lines = [line.rstrip() for line in match.group(1).decode(errors="replace").splitlines()]
    start = next((i for i, line in enumerate(lines) if "licen" in line.lower()), None)
    if start is None:
        return []
    kept = []
    for line in lines[start:]:
        if not line.strip(" *"):
            break
        kept.append(line if line.startswith(" *") else " * " + line.strip())
    return kept


def declaration_text(definition_text: str) -> str:
    """`int f(void)\\n{...}` -> `int f(void);` (the prototype of a function definition)."""
    tree = parse(definition_text.encode())
    function = next((n for n in tree.root_node.named_children if n.type == "function_definition"), None)
    if function is None:
        return definition_text
    body = function.child_by_field_name("body")
    head = definition_text.encode()[: body.start_byte].decode().rstrip()
    return " ".join(head.split()) + ";"

