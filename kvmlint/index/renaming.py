"""How far a tree-wide rename of a function reaches, and what makes it unsafe (KVM003's fix).

The compiler reads more than the files kvmlint analyses: headers of any
suffix that C files include (x-macro `.def` and `.inc` files), assembly,
files the configuration excludes from the report, files outside the paths
a run was given.  So a rename reads the whole tree (git's file list in a
work tree, else a walk; build directories left out), not the analysis:

- Every file that spells the old name as a token is edited when it is C
  preprocessor input: a C source or header (`.c`, `.h`, `.c.inc`, `.h.inc`,
  `.inc`, `.def`), Objective-C (`.m`), preprocessed assembly (`.S`), or any
  file a C file of the tree includes.  A member of that spelling (`s->name`,
  `.name =`, a field) and a label are other names, and stay.
- Documentation (`.rst`, `.md`, `.txt`, ...) is prose the build never
  reads: it is not changed, and the finding lists where it names the function.
- Any other text that spells it (a script, a build or linker file) may turn
  it into a reference kvmlint cannot see: the rename is then not safe
  (`--unsafe-fixes` applies it and leaves those files alone).
  So is a string literal in C that names it as a word: an alias
  (`__attribute__((alias("name")))`), an asm name or label, a symbol in
  inline assembly or one looked up by name keeps the old name, which then
  names nothing (a message that names it goes stale).
  So is a file that cannot be read, a name split by a line continuation, a
  `##` next to the name, and a macro whose `##` may paste the name together
  (its literal parts spell pieces of it: `kvm_irqchip_ ## how`).
- The new name must not be declared where the rename brings it, or the tree
  no longer compiles: at file scope anywhere (a function, variable, typedef
  or enum constant: the renamed prototype reaches every file that includes
  its header), as a macro anywhere (function-like or object-like: macros
  travel through headers), in a block or parameter list that holds a
  renamed use (in any block, when a renamed use is in a macro body, which
  may expand anywhere), or pasted together by a macro.  A use of the new
  name outside a local declaration of it means it already names something.
  A label, a struct member or tag, and a local in a function the rename does
  not enter are harmless, and code the preprocessor never compiles declares
  nothing.  Any of these: no fix, and the reason names the place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import tree_sitter

from kvmlint.source import ctokens
from kvmlint.source.c_syntax import Ancestry, parse
from kvmlint.source.discover import C_SUFFIXES, TreeListing, scan_text, tree_files
from kvmlint.source.preprocessor import never_compiled

C_INPUT_SUFFIXES = (*C_SUFFIXES, ".inc", ".def", ".m", ".S")
PROSE_SUFFIXES = (".rst", ".md", ".txt", ".texi", ".html", ".adoc")
LEXED_ONLY_SUFFIXES = (".S",)  # assembly: no C syntax tree to ask what a name is
INCLUDE = re.compile(rb'#[ \t]*include[ \t]*["<]([^">\n]+)[">]')
OTHER_NAMESPACES = frozenset({"field_identifier", "statement_identifier"})  # members and labels
DECLARATOR_TYPES = frozenset({
    "pointer_declarator", "array_declarator", "function_declarator", "parenthesized_declarator",
    "init_declarator", "attributed_declarator",
})
BLOCK_TYPES = frozenset({"compound_statement", "for_statement", "function_definition"})
MACRO_TYPES = frozenset({"preproc_def", "preproc_function_def"})
TAGGED_TYPES = frozenset({"struct_specifier", "union_specifier", "enum_specifier"})
# Names in their own namespace or scope, which a renamed function never meets.
HARMLESS_DECLARATIONS = frozenset({"a tag", "a prototype's parameter"})


@dataclass(frozen=True)
class Obstacle:
    path: str
    line: int | None
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.why}" if self.line else f"{self.path}: {self.why}"


@dataclass
class Reach:
    files: dict[str, bytes] = field(default_factory=dict)  # the files the rename edits, as read
    conflicts: list[Obstacle] = field(default_factory=list)  # the new name is taken: no fix
    unseen: list[Obstacle] = field(default_factory=list)  # what the rename cannot edit or read: not safe
    prose: list[Obstacle] = field(default_factory=list)  # documentation that names the old name: left as it is


def reach(root: Path, old: str, new: str, listing: TreeListing | None = None) -> Reach:
    """Read the tree for a rename of `old` to `new`."""
    result = Reach()
    files, skipped = tree_files(root, listing)
    included: set[str] = set()  # the base names C files include

    def wanted(path: str, data: bytes) -> bool:
        if path.endswith(C_INPUT_SUFFIXES):
            included.update(m.group(1).decode("utf-8", "replace").rsplit("/", 1)[-1] for m in INCLUDE.finditer(data))
            pasted = ctokens.pasted_parts(data, (old, new))
            for word, found in ((old, result.unseen), (new, result.conflicts)):
                if word in pasted:
                    found.append(Obstacle(path, pasted[word], f"a ## here may paste {word} together"))
        return ctokens.names_word(data, old) or ctokens.names_word(data, new)

    scan = scan_text(root, files, wanted)
    result.unseen.extend(Obstacle(path, None, problem) for path, problem in [*skipped, *scan.unread])
    sources = {}
    for path, data in sorted(scan.found.items()):
        if path.endswith(C_INPUT_SUFFIXES) or path.rsplit("/", 1)[-1] in included:
            sources[path] = _Source(path, data)
        elif ctokens.names_word(data, old) and path.endswith(PROSE_SUFFIXES):
            result.prose.append(Obstacle(path, ctokens.first_word_line(data, old), f"documentation names {old}"))
        elif ctokens.names_word(data, old):
            result.unseen.append(Obstacle(
                path, ctokens.first_word_line(data, old),
                f"names {old} but is not C that kvmlint can edit (a script, a build or linker file?)",
            ))
    renamed = {}
    for path, source in sources.items():
        for word, found in ((old, result.unseen), (new, result.conflicts)):
            split = ctokens.split_by_continuation(source.data, word)
            if split is not None:
                found.append(Obstacle(path, split, f"a line continuation splits {word}"))
        result.unseen.extend(source.strings_naming(old))
        offsets = source.sites(old)
        result.unseen.extend(
            Obstacle(path, source.line(at), f"{old} is pasted with ## here")
            for at in offsets if ctokens.next_to_paste(source.data, at, at + len(old))
        )
        if offsets:
            renamed[path] = offsets
            result.files[path] = source.data
    in_any_block = any(source.in_macro_body(at) for path, source in sources.items() for at in renamed.get(path, ()))
    for path, source in sources.items():
        result.conflicts.extend(source.conflicts(new, renamed.get(path, []), in_any_block))
    return result


def sites(path: str, data: bytes, old: str) -> list[int]:
    """Where a rename edits `old` in one file (byte offsets)."""
    return _Source(path, data).sites(old)


class _Source:
    """One file of C preprocessor input, and what its names are."""

    def __init__(self, path: str, data: bytes):
        self.path = path
        self.data = data
        self.parsed = not path.endswith(LEXED_ONLY_SUFFIXES)

    @cached_property
    def ancestry(self) -> Ancestry:
        return Ancestry(parse(self.data).root_node)

    def line(self, offset: int) -> int:
        return self.data.count(b"\n", 0, offset) + 1

    def node(self, offset: int, length: int) -> tree_sitter.Node | None:
        return self.ancestry.root.descendant_for_byte_range(offset, offset + length) if self.parsed else None

    def sites(self, old: str) -> list[int]:
        """Each token of `old`, except the members and labels of that spelling."""
        kept = []
        for at in ctokens.token_offsets(self.data, old):
            if ctokens.after_member_operator(self.data, at):
                continue
            node = self.node(at, len(old))
            if node is not None and node.type in OTHER_NAMESPACES:
                continue
            kept.append(at)
        return kept

    def strings_naming(self, old: str) -> list[Obstacle]:
        """String literals the compiler reads that name `old`: a rename would leave them naming nothing."""
        found = []
        for at in ctokens.string_offsets(self.data, old):
            node = self.node(at, len(old))
            if node is not None and never_compiled(self.ancestry.conditions(node)):
                continue
            found.append(Obstacle(self.path, self.line(at), f'a string here names {old} (an alias, an asm name '
                                                            f'or label, a symbol looked up by name?), which a '
                                                            f'rename leaves as it is'))
        return found

    def in_macro_body(self, offset: int) -> bool:
        node = self.node(offset, 1)
        return node is None or node.type == "preproc_arg"  # assembly: its macros are not known

    def conflicts(self, new: str, renamed: list[int], in_any_block: bool) -> list[Obstacle]:
        """The places in this file where `new` is taken for the rename."""
        offsets = [at for at in ctokens.token_offsets(self.data, new) if not ctokens.after_member_operator(self.data, at)]
        if not offsets:
            return []
        if not self.parsed:
            return [Obstacle(self.path, self.line(offsets[0]), f"{new} is already named here")]
        local_scopes, uses, found = [], [], []
        for at in offsets:
            node = self.node(at, len(new))
            if node is None or node.start_byte != at or node.end_byte != at + len(new):
                found.append(Obstacle(self.path, self.line(at), f"{new} is already named here, in a macro body or a directive"))
                continue
            if node.type in OTHER_NAMESPACES or never_compiled(self.ancestry.conditions(node)):
                continue
            if ctokens.next_to_paste(self.data, at, at + len(new)):
                continue  # pasted into another name
            declared = self._declaration(node)
            if declared is None:
                uses.append(node)
                continue
            kind, scope = declared
            if kind in HARMLESS_DECLARATIONS:
                continue
            if scope is None:
                found.append(Obstacle(self.path, self.line(at), f"{new} is already declared here ({kind})"))
                continue
            local_scopes.append(scope)
            entered = next((site for site in renamed if scope.start_byte <= site < scope.end_byte), None)
            if entered is not None:
                found.append(Obstacle(self.path, self.line(at), f"{new} is {kind} here, where a renamed use "
                                                                f"(line {self.line(entered)}) would mean it"))
            elif in_any_block and kind != "a macro parameter":
                found.append(Obstacle(self.path, self.line(at), f"{new} is {kind} here, where a macro with a "
                                                                f"renamed use may expand"))
        for node in uses:
            if not any(scope.start_byte <= node.start_byte < scope.end_byte for scope in local_scopes):
                found.append(Obstacle(self.path, self.line(node.start_byte), f"{new} already names something here"))
        return found

    def _declaration(self, node: tree_sitter.Node) -> tuple[str, tree_sitter.Node | None] | None:
        """What declares the name at `node`, and the block it is declared in (None: file scope);
        None when `node` uses the name."""
        parent = self.ancestry.parent(node)
        if parent is None:
            return None
        if parent.type in MACRO_TYPES and parent.child_by_field_name("name") == node:
            return "a macro", None
        if parent.type == "preproc_params":
            return "a macro parameter", self.ancestry.parent(parent)
        if parent.type in TAGGED_TYPES and parent.child_by_field_name("name") == node:
            return "a tag", None
        if parent.type == "enumerator" and parent.child_by_field_name("name") == node:
            return "an enum constant", self._block(parent)
        child = node
        while parent is not None and parent.type in DECLARATOR_TYPES and (
            parent.child_by_field_name("declarator") == child or parent.type == "parenthesized_declarator"
        ):
            child, parent = parent, self.ancestry.parent(parent)
        if parent is None or child not in parent.children_by_field_name("declarator"):
            return None
        if parent.type == "parameter_declaration":
            function = self.ancestry.parent(self.ancestry.parent(parent))  # parameter_list, function_declarator
            definition = self._outer_declarator_owner(function)
            if definition is not None and definition.type == "function_definition":
                return "a parameter", definition
            return "a prototype's parameter", None
        kinds = {"type_definition": "a typedef", "function_definition": "a function"}
        if parent.type in kinds:
            return kinds[parent.type], self._block(parent)
        if parent.type == "declaration":
            return ("a function" if _declares_function(child) else "a variable"), self._block(parent)
        return None

    def _outer_declarator_owner(self, declarator: tree_sitter.Node | None) -> tree_sitter.Node | None:
        node = declarator
        while node is not None and node.type in DECLARATOR_TYPES:
            node = self.ancestry.parent(node)
        return node

    def _block(self, node: tree_sitter.Node) -> tree_sitter.Node | None:
        """The innermost block around `node` (None at file scope)."""
        current = self.ancestry.parent(node)
        while current is not None:
            if current.type in BLOCK_TYPES:
                return current
            current = self.ancestry.parent(current)
        return None


def _declares_function(declarator: tree_sitter.Node) -> bool:
    while declarator is not None and declarator.type in ("init_declarator", "attributed_declarator"):
        declarator = declarator.child_by_field_name("declarator")
    return declarator is not None and declarator.type == "function_declarator"
