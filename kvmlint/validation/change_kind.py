"""What a change to a C file is: declarations, macros, or code.

The build check compiles every unit a change reaches.  A unit whose own
source is unchanged, and whose changed headers changed only in declarations,
is checked by the compiler's front end alone (`-fsyntax-only`, see
`kvmlint.validation.compile_runner`).  Declarations here are function prototypes, `extern`
variables and forward `struct`/`typedef` declarations, with their comments,
blank lines and `#include`s.  Every error such a change can cause is found by
the front end: an undeclared or conflicting function, an unknown type, or a
missing header.  The optimiser's diagnostics (`-Wmaybe-uninitialized`,
`-Wreturn-type`, `qemu_build_not_reached()`) come from function bodies, and
the unit's bodies did not change.

A changed `#define` or `#undef` is named: it changes nothing in a unit that
neither expands nor tests that macro, which the preprocessor itself tells
(`-E -dU`).  Anything else that could reach the optimiser makes the change
code, checked with the whole recorded command: an inline function, a
conditional directive, a removed `#include`, or an attribute on a prototype
(`__attribute__`, or a macro such as `G_NORETURN`, which does not parse as C).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import tree_sitter

from kvmlint.source.c_syntax import PREPROC_CONTAINERS, parse

# Line kinds a declaration-only change may touch.
BLANK, COMMENT, DECLARATION, INCLUDE, GUARD, MACRO, CODE = (
    "blank", "comment", "declaration", "include", "guard", "macro", "code")
HARMLESS = frozenset({BLANK, COMMENT, DECLARATION, GUARD})
# Which kind a line with two items on it takes: a trailing comment must not hide an #include.
PRECEDENCE = {kind: rank for rank, kind in enumerate((BLANK, COMMENT, GUARD, DECLARATION, MACRO, INCLUDE, CODE))}
IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
# __attribute__, __asm__ and the like: what they say reaches the optimiser.
COMPILER_KEYWORD = re.compile(rb"\b__[A-Za-z]")


@dataclass(frozen=True)
class AddedInclude:
    name: str
    quoted: bool  # "name" (searched beside the including file first), not <name>


@dataclass(frozen=True)
class ChangeKind:
    no_code: bool  # only declarations and the macros named changed
    added_includes: tuple[AddedInclude, ...] = ()  # the rest is meaningful only when no_code
    macros: frozenset[str] = frozenset()  # macros defined, redefined or undefined


CODE_CHANGE = ChangeKind(False)


def classify(before: bytes | None, after: bytes) -> ChangeKind:
    """How `after` differs from `before` (None: a new file)."""
    old_lines = before.split(b"\n") if before is not None else []
    new_lines = after.split(b"\n")
    old_kinds = _line_kinds(before, old_lines) if before is not None else []
    new_kinds = _line_kinds(after, new_lines)
    includes, macros = [], set()
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for tag, old_start, old_end, new_start, new_end in matcher.get_opcodes():
        if tag == "equal":
            continue
        for kind, node in old_kinds[old_start:old_end]:
            if kind == MACRO:
                macros.add(_macro_name(node))
            elif kind not in HARMLESS:
                return CODE_CHANGE  # a removed include can take away a macro an #ifdef tests
        for kind, node in new_kinds[new_start:new_end]:
            if kind == INCLUDE:
                include = _include_of(node)
                if include is None:
                    return CODE_CHANGE
                includes.append(include)
            elif kind == MACRO:
                macros.add(_macro_name(node))
            elif kind not in HARMLESS:
                return CODE_CHANGE
    return ChangeKind(True, tuple(dict.fromkeys(includes)), frozenset(macros))


def _line_kinds(data: bytes, lines: list[bytes]) -> list[tuple[str, tree_sitter.Node | None]]:
    """Each line's kind, and for an include line its node.  A line no item covers
    (a conditional directive, text tree-sitter cannot place) is code unless blank."""
    kinds: list[tuple[str, tree_sitter.Node | None]] = [(CODE if line.strip() else BLANK, None) for line in lines]
    placed = [BLANK] * len(lines)  # the strongest item kind on each line so far
    code_lines: set[int] = set()  # conditional directives: code whatever shares their line

    def mark(node: tree_sitter.Node, kind: str) -> None:
        for line in range(node.start_point[0], min(_last_line(node), len(lines) - 1) + 1):
            if PRECEDENCE[kind] >= PRECEDENCE[placed[line]]:
                placed[line] = kind
                kinds[line] = (kind, node)

    containers = [parse(data).root_node]
    while containers:
        container = containers.pop()
        guard_define = _guard_define(container)
        conditions = {container.child_by_field_name("name"), container.child_by_field_name("condition")}
        if container.type in PREPROC_CONTAINERS:
            directive_lines = {container.start_point[0], *(c.start_point[0] for c in container.children
                                                           if c.type == "#endif")}
            directive_lines.update(line for c in conditions if c is not None
                                   for line in range(c.start_point[0], _last_line(c) + 1))
            if guard_define is not None:
                for line in directive_lines:
                    kinds[line] = (GUARD, None)
            else:
                code_lines.update(directive_lines)  # a trailing comment does not make #endif harmless
        for child in container.named_children:
            if child.type in PREPROC_CONTAINERS:
                containers.append(child)
            elif child not in conditions:
                mark(child, GUARD if child == guard_define else _item_kind(child))
    for line in code_lines:
        kinds[line] = (CODE, None)
    return kinds


def _last_line(node: tree_sitter.Node) -> int:
    """The last line a node has text on (a directive's node ends at the next line's start)."""
    end_row, end_column = node.end_point
    return end_row - 1 if end_column == 0 and end_row > node.start_point[0] else end_row


def _guard_define(container: tree_sitter.Node) -> tree_sitter.Node | None:
    """The bare `#define NAME` of an include guard `#ifndef NAME`, if `container` is one."""
    if container.type != "preproc_ifdef" or container.children[0].type != "#ifndef":
        return None
    name = container.child_by_field_name("name")
    first = next((c for c in container.named_children if c != name and c.type != "comment"), None)
    if first is None or first.type != "preproc_def" or first.child_by_field_name("value") is not None:
        return None
    return first if name is not None and first.child_by_field_name("name").text == name.text else None


def _item_kind(node: tree_sitter.Node) -> str:
    if node.type == "comment":
        return COMMENT
    if node.type == "preproc_include":
        return INCLUDE
    if node.type in ("preproc_def", "preproc_function_def") or _undefined_name(node) is not None:
        return MACRO
    if node.has_error or COMPILER_KEYWORD.search(node.text):
        return CODE  # attribute macros do not parse; __attribute__ and asm labels reach the optimiser
    if node.type == "declaration" and _declares_only_names(node):
        return DECLARATION
    if node.type == "type_definition" and _is_forward(node.child_by_field_name("type")):
        return DECLARATION
    if node.type in ("struct_specifier", "union_specifier", "enum_specifier") and _is_forward(node):
        return DECLARATION  # `struct X;`: the `;` is a sibling token, not named
    return CODE


def _declares_only_names(declaration: tree_sitter.Node) -> bool:
    """A prototype or an `extern` variable: no initializer, no storage, no body."""
    storage = {c.text for c in declaration.named_children if c.type == "storage_class_specifier"}
    if storage - {b"extern"}:
        return False  # static or inline declarations belong with their definition's unit
    declarators = declaration.children_by_field_name("declarator")
    if not declarators:
        return _is_forward(declaration.child_by_field_name("type"))
    return all(_is_function(d) or (b"extern" in storage and d.type in ("identifier", "pointer_declarator",
                                                                      "array_declarator"))
               for d in declarators)


def _is_function(declarator: tree_sitter.Node) -> bool:
    """`name(...)` or `*name(...)`; not a pointer to a function, which is a variable."""
    while declarator.type == "pointer_declarator":
        declarator = declarator.child_by_field_name("declarator")
    return declarator.type == "function_declarator" and declarator.child_by_field_name("declarator").type == "identifier"


def _is_forward(specifier: tree_sitter.Node | None) -> bool:
    return (specifier is not None and specifier.type in ("struct_specifier", "union_specifier", "enum_specifier")
            and specifier.child_by_field_name("body") is None)


def _undefined_name(node: tree_sitter.Node) -> str | None:
    """NAME, for `#undef NAME`."""
    if node.type != "preproc_call" or node.child_by_field_name("directive").text.strip() != b"#undef":
        return None
    argument = node.child_by_field_name("argument")
    name = argument.text.decode("utf-8", "surrogateescape").strip() if argument is not None else ""
    return name if IDENTIFIER.fullmatch(name) else None


def _macro_name(node: tree_sitter.Node) -> str:
    name = node.child_by_field_name("name")
    return name.text.decode("utf-8", "surrogateescape") if name is not None else _undefined_name(node)


def _include_of(node: tree_sitter.Node) -> AddedInclude | None:
    path = node.child_by_field_name("path")
    if path is None or path.type not in ("string_literal", "system_lib_string"):
        return None  # `#include MACRO`
    name = path.text.decode("utf-8", "surrogateescape")[1:-1]
    return AddedInclude(name, quoted=path.type == "string_literal")
