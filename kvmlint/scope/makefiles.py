"""The Makefile build of 2012-2019 QEMU: Makefile.objs, Makefile.target, default-configs.

Object lists are variables named `<list>-y` or `<list>-$(CONFIG_X)`
(`common-obj-y`, `hw-obj-$(CONFIG_PCI)`, `obj-$(CONFIG_KVM)`); a `foo/` entry
descends into foo/Makefile.objs, `$(other-y)` pulls in another list, and
`default-configs/<target>.mak` decides which targets set CONFIG_X=y.

What restricts an object to some architectures:
- the folder of the Makefile.objs that lists it: an architecture's folder
  (hw/i386/, target-arm/), or a folder only reached from one
  (hw/kvm/ is listed by hw/i386/Makefile.objs only);
- its CONFIG_X / TARGET_X condition, and those of enclosing ifeq/ifdef blocks;
- the condition under which its list is pulled into another one.
`obj-y := $(addprefix ../,$(obj-y))` (2012's hw/<arch>/Makefile.objs) makes
the folder's entries name files one level up: hw/pc.c built by hw/i386/.

Compile units: Makefile.target compiles `obj-y` (and `target-obj-y`, and
the older per-target `obj-<target>-y`) in each target's build folder with
the target's folder on the include path (`-I$(SRC_PATH)/target-$(TARGET_BASE_ARCH)`,
later target/$(TARGET_BASE_ARCH)); every other list (common-obj,
2012's hw-obj for libhw, util-obj, stub-obj, ...) is compiled once, outside
any target.  A list pulled only into per-target lists is per target too.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .build import (
    PER_TARGET, TARGET_INDEPENDENT, BoundWarnings, BuildRule, ConfigSpace, compiled_per_target, join_relpath, read_text,
    summarize_names, visit_key,
)
from .families import Families, arch_family, format_families, intersect, path_convention, union

_VARIABLE_REFERENCE = re.compile(r"\$\(([\w.-]+)\)")
# The prefix is group 1 with its spaces stripped: `\s+([^,]*?)\s*,` backtracks cubically on spaces.
_ADDPREFIX = re.compile(r"^\$\(addprefix\s([^,]*),\s*\$\(([\w.-]+)\)\s*\)$")
_YES = re.compile(r"^y+$")
# $(TARGET_BASE_ARCH) in hw/$(TARGET_BASE_ARCH)/ stands for an architecture's folder only.
_TARGET_VARIABLE = re.compile(r"\$\((TARGET_ARCH|TARGET_BASE_ARCH|TARGET_ARCH2|TARGET_ABI_DIR)\)")
ARCH_PLACEHOLDER = "@ARCH@"
# The lists Makefile.target compiles with the target's flags and include path.
_PER_TARGET_LISTS = ("obj", "target-obj")
# `include` nesting in device configs beyond this is a loop or an attack, not a config.
MAX_INCLUDE_DEPTH = 32
# Nesting of `$(call land,...)`-style conditions and of ifdef/ifeq blocks beyond these is
# no Makefile anyone wrote (QEMU's deepest: 3 calls, 4 blocks).
MAX_CALL_DEPTH = 64
MAX_BLOCK_DEPTH = 64
# Wildcards (a $(VAR) or the arch) per name pattern: each one more multiplies the
# regex's backtracking by the name's length.
MAX_PATTERN_WILDCARDS = 2


@dataclass
class MakeAssignment:
    """`<base>-<condition> += entries` in one Makefile, entries made root-relative."""

    makefile: str
    variable: str  # as written, e.g. "hw-obj-$(CONFIG_PCI)"
    base: str  # the list it adds to, e.g. "hw-obj"
    symbols: tuple[str, ...]  # its condition plus the enclosing blocks' (all must hold)
    condition: tuple | None = None  # a `$(call lor,...)`-style own condition, when not plain symbols
    objects: list[str] = field(default_factory=list)  # "hw/pc.o"; may hold "*" where a $(VAR) stood
    directories: list[str] = field(default_factory=list)  # "hw/kvm"; patterns until expanded
    references: list[str] = field(default_factory=list)  # bases of the lists it pulls in
    prefix: str | None = None  # set when `X := $(addprefix P,$(X))` re-rooted the entries


def logical_lines(text: str) -> list[str]:
    """Lines with backslash continuations joined; recipe (tab) lines kept as is."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    if pending:
        lines.append(pending)
    return lines


def _split_top_level(text: str, separators: str) -> list[str]:
    """Split on any separator character outside $(...) groups."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(depth - 1, 0)
        if depth == 0 and char in separators:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _find_operator(line: str) -> tuple[int, str] | None:
    """Position and text of the assignment operator outside $(...), if any."""
    depth = 0
    for index, char in enumerate(line):
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(depth - 1, 0)
        elif depth == 0:
            if char == ":" and line.startswith(":=", index):
                return index, ":="
            if char == ":":
                return None  # a rule, or a target-specific variable
            if char in "+?" and line.startswith("=", index + 1):
                return index, char + "="
            if char == "=":
                return index, "="
    return None


_CONDITION_TOKEN = re.compile(
    r"(?P<call>\$\(call\s+(?P<function>land|lor|lnot)\s*,)|\$\((?P<symbol>\w+)\)"
    r"|(?P<comma>,)|(?P<open>\()|(?P<close>\))|(?P<text>[^$(),]+|\$)"
)
_ANY = ("any",)


class ConditionTooDeep(Exception):
    """A list-name condition with `$(call ...)` nested deeper than MAX_CALL_DEPTH."""


def make_condition(text: str) -> tuple:
    """A list-name condition as an expression: ("sym", X), ("and"|"or", e, e, ...), ("not", e),
    or ("any",) for y, m and make functions that restrict nothing we can read.

    `$(CONFIG_X)`, `$(call land,A,B,...)`, `$(call lor,A,B,...)` and `$(call lnot,A)` are
    understood, in one pass over the text; calls nested deeper than MAX_CALL_DEPTH raise
    ConditionTooDeep (every reader of the expression may recurse into it).
    """
    # Each open `$(call` or parenthesis: [function or None, operands so far, current operand],
    # where the operand is None while only spaces were seen, the expression of the one
    # condition it holds, or ("any",).
    stack: list[list] = [[None, [], None]]

    def add(frame: list, expression: tuple) -> None:
        frame[2] = expression if frame[2] is None else _ANY

    for token in _CONDITION_TOKEN.finditer(text):
        kind, frame = token.lastgroup, stack[-1]
        if kind in ("call", "open"):
            if len(stack) > MAX_CALL_DEPTH:
                raise ConditionTooDeep(text)
            stack.append([token.group("function"), [], None])
        elif kind == "symbol":
            add(frame, ("sym", token.group("symbol")))
        elif kind == "comma" and frame[0] is not None:
            frame[1].append(frame[2] or _ANY)
            frame[2] = None
        elif kind == "close" and len(stack) > 1:
            stack.pop()
            add(stack[-1], _call_condition(frame[0], frame[1] + [frame[2] or _ANY]) if frame[0] else _ANY)
        elif kind != "text" or token.group().strip():
            add(frame, _ANY)
    return (stack[0][2] or _ANY) if len(stack) == 1 else _ANY  # an unclosed call reads as nothing


def _call_condition(function: str, operands: list[tuple]) -> tuple:
    if function == "lnot":
        return ("not", operands[0]) if len(operands) == 1 else _ANY
    return operands[0] if len(operands) == 1 else ("and" if function == "land" else "or", *operands)


def required_symbols(expression: tuple) -> tuple[str, ...]:
    """Symbols that must all be enabled for the expression to hold."""
    if expression[0] == "sym":
        return (expression[1],)
    if expression[0] == "and":
        return tuple(symbol for part in expression[1:] for symbol in required_symbols(part))
    return ()


def positive_symbols(expression: tuple) -> tuple[str, ...]:
    """Symbols the expression can hold through (those outside negations)."""
    if expression[0] == "sym":
        return (expression[1],)
    if expression[0] in ("and", "or"):
        return tuple(symbol for part in expression[1:] for symbol in positive_symbols(part))
    return ()


def block_condition(directive: str, argument: str) -> tuple[str, ...] | None:
    """Symbols that must be enabled inside an ifdef/ifeq block (None: no restriction).

    Understood: `ifdef CONFIG_X`, `ifeq ($(CONFIG_A)$(CONFIG_B),yy)`,
    `ifeq ($(CONFIG_X), y)` and `ifeq ($(TARGET_BASE_ARCH), i386)`.
    Negations (ifndef, ifneq, else) cannot narrow the targets.
    """
    if directive == "ifdef":
        return (argument.strip(),) if re.fullmatch(r"\w+", argument.strip()) else None
    if directive != "ifeq":
        return None
    argument = argument.strip()
    if argument.startswith("(") and argument.endswith(")"):
        operands = _split_top_level(argument[1:-1], ",")
    else:
        operands = re.findall(r"""["']([^"']*)["']""", argument)
    if len(operands) != 2:
        return None
    left, right = (operand.strip() for operand in operands)
    if _YES.match(left):
        left, right = right, left
    symbols = _VARIABLE_REFERENCE.findall(left)
    if symbols and _VARIABLE_REFERENCE.sub("", left).strip() == "":
        if _YES.match(right) and len(right) == len(symbols):
            return tuple(symbols)
        if len(symbols) == 1 and symbols[0] in ("TARGET_ARCH", "TARGET_BASE_ARCH", "TARGET_ARCH2"):
            if re.fullmatch(r"\w+", right):
                return ("TARGET_" + right.upper(),)
    return None


def split_list_name(name: str) -> tuple[str, str] | None:
    """(base, condition) of a list name `<base>-y`, `<base>-m` or `<base>-$(...)`, else None."""
    if name.endswith(("-y", "-m")) and len(name) > 2:
        return name[:-2], name[-1]
    base, found, condition = name.rpartition("-$(")
    if found and base and condition.endswith(")"):
        return base, "$(" + condition
    return None


def parse_makefile(text: str, makefile: str, warnings: BoundWarnings | None = None) -> list[MakeAssignment]:
    """The object-list assignments of one Makefile (path relative to the tree root)."""
    folder = os.path.dirname(makefile)
    assignments: list[MakeAssignment] = []
    by_base: dict[str, list[MakeAssignment]] = defaultdict(list)
    blocks: list[tuple[str, ...] | None] = []
    untracked = 0  # blocks open past MAX_BLOCK_DEPTH, whose conditions are not applied
    enclosing: tuple[str, ...] = ()  # the symbols of `blocks`, shared by the assignments inside them

    def warn(message: str) -> None:
        if warnings is not None:
            warnings.add(makefile, message)

    for line in logical_lines(text):
        if line.startswith("\t"):
            continue  # recipe
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        directive, _, argument = line.partition(" ")
        if directive in ("ifdef", "ifndef", "ifeq", "ifneq", "else", "endif"):
            if untracked:
                untracked += {"endif": -1, "else": 0}.get(directive, 1)
            elif directive.startswith("if") and len(blocks) >= MAX_BLOCK_DEPTH:
                untracked = 1
                warn(f"ifdef/ifeq blocks nested deeper than {MAX_BLOCK_DEPTH} levels; "
                     f"the deeper blocks' conditions not applied")
            else:
                if directive.startswith("if"):
                    blocks.append(block_condition(directive, argument))
                elif directive == "else" and blocks:
                    blocks[-1] = None
                elif directive == "endif" and blocks:
                    blocks.pop()
                enclosing = tuple(symbol for block in blocks if block for symbol in block)
            continue
        operator = _find_operator(line)
        if operator is None:
            continue
        position, op = operator
        variable = line[:position].strip()
        value = line[position + len(op):].strip()
        list_name = split_list_name(variable)
        if list_name is None or " " in list_name[0]:
            continue
        base, condition_text = list_name
        prefix_match = _ADDPREFIX.match(value)
        if op == ":=" and prefix_match and prefix_match.group(2) == variable:
            _reroot(by_base[base], folder, prefix_match.group(1).strip())
            continue
        try:
            own = make_condition(condition_text)
        except ConditionTooDeep:
            warn(f"{base}-$(call ...): calls nested deeper than {MAX_CALL_DEPTH} levels; "
                 f"the condition not applied")
            own = _ANY
        required = required_symbols(own)
        condition = None if required or own == _ANY else own
        assignment = MakeAssignment(makefile, variable, base, enclosing + required, condition)
        for token in _split_top_level(value, " \t"):
            _add_token(assignment, token.strip(), folder)
        assignments.append(assignment)
        by_base[base].append(assignment)
    return assignments


def _add_token(assignment: MakeAssignment, token: str, folder: str) -> None:
    if not token:
        return
    reference = _VARIABLE_REFERENCE.fullmatch(token)
    if reference:
        assignment.references.append(_list_base(reference.group(1)))
        return
    prefixed = _ADDPREFIX.match(token)
    if prefixed:  # pulls in another list; the prefix is about build folders
        assignment.references.append(_list_base(prefixed.group(2)))
        return
    if token.startswith("$(") and token.endswith(")"):
        return  # other make functions: nothing we can resolve
    pattern = _TARGET_VARIABLE.sub(ARCH_PLACEHOLDER, token)
    pattern = re.sub(r"\$\([^)]*\)", "*", pattern)
    if pattern.endswith("/"):
        assignment.directories.append(join_relpath(folder, pattern))
    elif pattern.endswith(".o"):
        assignment.objects.append(join_relpath(folder, pattern))


def _list_base(name: str) -> str:
    list_name = split_list_name(name)
    return list_name[0] if list_name else name


def _reroot(assignments: list[MakeAssignment], folder: str, prefix: str) -> None:
    """Apply `X := $(addprefix P,$(X))` to the entries this Makefile added to X."""
    for assignment in assignments:
        assignment.objects = [_prefixed(path, folder, prefix) for path in assignment.objects]
        assignment.directories = [_prefixed(path, folder, prefix) for path in assignment.directories]
        assignment.prefix = prefix


def _prefixed(path: str, folder: str, prefix: str) -> str:
    relative = os.path.relpath(path, folder) if folder else path
    return join_relpath(folder, prefix + relative)


class DefaultConfigs(ConfigSpace):
    """default-configs/<target>.mak: which targets set CONFIG_X=y (following includes)."""

    def __init__(self, root: Path, known_families: frozenset[str], warnings: BoundWarnings | None = None) -> None:
        super().__init__(known_families)
        self._files_enabling: dict[str, list[str]] = defaultdict(list)
        self._families_enabling: dict[str, set[str]] = defaultdict(set)
        self._mentioned: set[str] = set()
        folder = root / "default-configs"
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            names = []
        already_read: dict[str, dict[str, str]] = {}
        for name in names:
            target = target_of_config_file(name)
            if target is None:
                continue
            for symbol, value in read_make_config(root, folder / name, warnings, already_read).items():
                self._mentioned.add(symbol)
                if value not in ("n", ""):  # y, or $(CONFIG_KVM)-style: can be y
                    self._files_enabling[symbol].append(name)
                    self._families_enabling[symbol].add(arch_family(target))

    def _config_families(self, symbol: str) -> Families:
        if symbol not in self._mentioned:
            return None  # set by configure for the host, not by a target's devices
        return frozenset(self._families_enabling.get(symbol, ()))

    def _provenance(self, symbol: str) -> str:
        files = self._files_enabling.get(symbol, [])
        return f" (default-configs: {summarize_names(files)})" if files else ""


def target_of_config_file(name: str) -> str | None:
    """`arm-softmmu.mak` -> "arm"; shared fragments such as pci.mak -> None."""
    match = re.fullmatch(r"(\w+)-(softmmu|linux-user|bsd-user)\.mak", name)
    return match.group(1) if match else None


def read_make_config(
    root: Path, path: Path, warnings: BoundWarnings | None = None, already_read: dict[str, dict[str, str]] | None = None,
) -> dict[str, str]:
    """CONFIG_X=value lines of a device config, includes (relative to it) first.

    Each file is read once per `already_read` (real path -> its values), which the
    callers share across a tree's configs: a file included twice, or by two targets,
    has the values of its first reading (files that each include two others, 32 levels
    deep, would otherwise be read 2**32 times).  An include of a file that is including
    it is a loop; neither loops nor nesting beyond MAX_INCLUDE_DEPTH are followed, and
    `warnings` says so."""
    warnings = warnings if warnings is not None else BoundWarnings(root)
    return _read_make_config(root, path, None, (), warnings, {} if already_read is None else already_read)


def _read_make_config(
    root: Path, path: Path, included_by: Path | None, including: tuple[str, ...], warnings: BoundWarnings,
    already_read: dict[str, dict[str, str]],
) -> dict[str, str]:
    if warnings.left_root(included_by or path, path, os.path.relpath(path, root)):
        return {}
    key = visit_key(path)
    if key in already_read:
        return already_read[key]
    values: dict[str, str] = {}
    within = including + (key,)
    for line in logical_lines(read_text(root, path)):
        line = line.split("#", 1)[0].strip()
        if line.startswith("include "):
            included = line[len("include "):].strip()
            if visit_key(path.parent / included) in within:
                warnings.add(path, f"`include {included}` includes a file that includes it (a loop); not read again")
            elif len(within) >= MAX_INCLUDE_DEPTH:
                warnings.add(path, f"`include` nested deeper than {MAX_INCLUDE_DEPTH} levels; "
                                   f"{included} and what it includes not read")
            else:
                values.update(_read_make_config(root, path.parent / included, path, within, warnings, already_read))
            continue
        name, equals, value = line.partition("=")
        if equals and re.fullmatch(r"CONFIG_\w+", name.strip()):
            values[name.strip()] = value.strip()
    already_read[key] = values
    return values


class MakefileBuild:
    """Every source file the Makefiles compile, with the rules that compile it."""

    def __init__(self, root: Path, configs: ConfigSpace, warnings: BoundWarnings | None = None) -> None:
        self.root = root
        self.configs = configs
        self.warnings = warnings if warnings is not None else BoundWarnings(root)
        self.assignments = self._read_reachable()
        self.folder_families: dict[str, Families] = {}
        self._list_families: dict[str, Families] = {}
        self._folder_origin: dict[str, set[str]] = defaultdict(set)
        self._solve_contexts()
        self._pulled_into: dict[str, set[str]] = defaultdict(set)
        for assignment in self.assignments:
            for base in assignment.references:
                self._pulled_into[base].add(assignment.base)

    def _read_reachable(self) -> list[MakeAssignment]:
        """Makefile.target and Makefile.objs at the top, then every folder they descend into."""
        pending: list[tuple[str, str | None]] = [("Makefile.target", None), ("Makefile.objs", None)]
        read: dict[str, str] = {}  # real path -> the name it was read under
        assignments: list[MakeAssignment] = []
        while pending:
            makefile, named_by = pending.pop()
            if self.warnings.left_root(named_by or makefile, self.root / makefile, makefile):
                continue
            key = visit_key(self.root / makefile)
            if key in read:
                if read[key] != makefile and named_by is not None:  # the same file under another name
                    self.warnings.add(named_by, f"{posixpath.dirname(makefile)}/ leads back to {read[key]} "
                                                f"through a symlink (a loop?); not read again")
                continue
            read[key] = makefile
            text = read_text(self.root, self.root / makefile)
            parsed = parse_makefile(text, makefile, self.warnings)
            assignments.extend(parsed)
            for assignment in parsed:
                assignment.directories = self._expand_directories(assignment.directories, makefile)
                pending.extend((join_relpath(folder, "Makefile.objs"), makefile) for folder in assignment.directories)
        return assignments

    def _expand_directories(self, patterns: list[str], makefile: str) -> list[str]:
        folders = []
        for pattern in patterns:
            if "*" not in pattern and ARCH_PLACEHOLDER not in pattern:
                folders.append(pattern)
                continue
            parent, _, leaf = pattern.rpartition("/")
            folders.extend(join_relpath(parent, name) for name in self._matching(parent, leaf, makefile)
                           if (self.root / parent / name).is_dir())
        return folders

    def _matching(self, parent: str, leaf: str, makefile: str) -> list[str]:
        """Names in `parent` that match a leaf pattern; @ARCH@ must match an architecture."""
        if self.warnings.left_root(makefile, self.root / parent, f"{parent}/"):
            return []
        try:
            names = sorted(os.listdir(self.root / parent))
        except OSError:
            return []
        leaf = re.sub(r"\*+", "*", leaf)
        if leaf.count("*") + leaf.count(ARCH_PLACEHOLDER) > MAX_PATTERN_WILDCARDS:
            self.warnings.add(makefile, f"{join_relpath(parent, leaf).replace(ARCH_PLACEHOLDER, '$(TARGET_ARCH)')} "
                                        f"has more than {MAX_PATTERN_WILDCARDS} variables or wildcards; not matched")
            return []
        parts = [re.escape(part) for part in leaf.split(ARCH_PLACEHOLDER)]
        regex = re.compile("(\\w+)".join(part.replace(r"\*", ".*") for part in parts))
        known = self.configs.known_families
        return [name for name in names
                if (match := regex.fullmatch(name))
                and all(arch_family(arch) in known for arch in match.groups())]

    def _convention_families(self, folder: str) -> Families:
        convention = path_convention(folder + "/x", self.configs.known_families)
        return frozenset({convention[0]}) if convention else None

    def _solve_contexts(self) -> None:
        """Least fixpoint of folder and list restrictions: both start empty and only grow.

        An assignment is evaluated again only when the restriction of its list or its
        folder grew, so a chain of n lists pulled into each other costs n steps, not n
        passes over every assignment."""
        for base in {base for assignment in self.assignments for base in assignment.references}:
            self._list_families[base] = frozenset()
        for assignment in self.assignments:
            for folder in assignment.directories:
                if folder and self._convention_families(folder) is None:
                    self.folder_families[folder] = frozenset()
                    self._folder_origin[folder].add(f"{assignment.makefile}: {assignment.variable}")
        readers_of_list: dict[str, list[MakeAssignment]] = defaultdict(list)
        readers_of_folder: dict[str, list[MakeAssignment]] = defaultdict(list)
        for assignment in self.assignments:
            readers_of_list[assignment.base].append(assignment)
            readers_of_folder[os.path.dirname(assignment.makefile)].append(assignment)
        pending = list(self.assignments)
        while pending:
            assignment = pending.pop()
            families = self.assignment_families(assignment)
            for restrictions, names, readers in ((self._list_families, assignment.references, readers_of_list),
                                                 (self.folder_families, assignment.directories, readers_of_folder)):
                for name in names:
                    grown = union(restrictions[name], families) if name in restrictions else None
                    if name in restrictions and grown != restrictions[name]:
                        restrictions[name] = grown
                        pending.extend(readers.get(name, ()))

    def makefile_folder_families(self, makefile: str) -> Families:
        folder = os.path.dirname(makefile)
        convention = self._convention_families(folder)
        if convention is not None:
            return convention
        return self.folder_families.get(folder)

    def assignment_families(self, assignment: MakeAssignment) -> Families:
        families = self.makefile_folder_families(assignment.makefile)
        families = intersect(families, self._list_families.get(assignment.base))
        named = _family_in_list_name(assignment.base, self.configs.known_families)
        if named:
            families = intersect(families, frozenset({named}))
        for symbol in assignment.symbols:
            families = intersect(families, self.configs.families(symbol))
        if assignment.condition is not None:
            families = intersect(families, self._expression_families(assignment.condition))
        return families

    def _expression_families(self, expression: tuple) -> Families:
        kind = expression[0]
        if kind == "sym":
            return self.configs.families(expression[1])
        if kind in ("and", "or"):
            combine = intersect if kind == "and" else union
            families = self._expression_families(expression[1])
            for part in expression[2:]:
                families = combine(families, self._expression_families(part))
            return families
        return None  # a negation, or nothing we can read: no restriction

    def _per_target_by_name(self, base: str) -> bool:
        return base in _PER_TARGET_LISTS or _family_in_list_name(base, self.configs.known_families) is not None

    @cached_property
    def _per_target_lists(self) -> set[str]:
        return compiled_per_target(self._pulled_into, self._per_target_by_name)

    def list_unit(self, base: str) -> tuple[str, str]:
        """(unit, reason) of the objects of list `base`."""
        if self._per_target_by_name(base):
            return PER_TARGET, f"{base}-y is compiled per target, with the target's folder on the include path"
        if base in self._per_target_lists:
            parents = sorted(self._pulled_into[base] - {base})
            return PER_TARGET, f"{base}-y is pulled only into per-target lists ({', '.join(parents)}-y)"
        return TARGET_INDEPENDENT, f"{base}-y is compiled once for all targets, without target headers"

    def rules(self) -> dict[str, list[BuildRule]]:
        """Source path (.c) -> the rules compiling it."""
        result: dict[str, list[BuildRule]] = defaultdict(list)
        for assignment in self.assignments:
            families = self.assignment_families(assignment)
            description = self._describe(assignment, families)
            unit, unit_reason = self.list_unit(assignment.base)
            symbols = assignment.symbols + self.folder_symbols(assignment.makefile)
            if assignment.condition is not None:
                symbols += positive_symbols(assignment.condition)
            for source in self._sources(assignment.objects, assignment.makefile):
                result[source].append(BuildRule(assignment.makefile, description, symbols, families,
                                                unit, unit_reason))
        return result

    def _sources(self, objects: list[str], makefile: str) -> list[str]:
        sources = []
        for obj in objects:
            source = obj[:-2] + ".c"
            if "*" not in source and ARCH_PLACEHOLDER not in source:
                sources.append(source)
                continue
            parent, _, leaf = source.rpartition("/")
            sources.extend(join_relpath(parent, name) for name in self._matching(parent, leaf, makefile))
        return sources

    def _describe(self, assignment: MakeAssignment, families: Families) -> str:
        text = f"{assignment.makefile} builds it ({assignment.variable}"
        if assignment.prefix:
            text += f", added with {assignment.prefix} prefix"
        own = set(_VARIABLE_REFERENCE.findall(assignment.variable))  # not a search of the name per symbol
        enclosing = [s for s in assignment.symbols if s not in own]
        if enclosing:
            text += f", inside ifdef/ifeq on {' and '.join(enclosing)}"
        text += ")"
        folder = os.path.dirname(assignment.makefile)
        folder_families = self.makefile_folder_families(assignment.makefile)
        if self._convention_families(folder) is None and folder_families:
            origin = ", ".join(sorted(self._folder_origin.get(folder, ())))
            scope = "only for" if len(folder_families) == 1 else "for"
            text += f" in {folder}/, a folder built {scope} {format_families(folder_families)} (from {origin})"
        return text

    def folder_symbols(self, makefile: str) -> tuple[str, ...]:
        """The CONFIG_/TARGET_ symbols under which the Makefile's folder is descended into."""
        folder = os.path.dirname(makefile)
        if self._convention_families(folder) is not None:
            return ()
        return self._symbols_of_folder.get(folder, ())

    @cached_property
    def _symbols_of_folder(self) -> dict[str, tuple[str, ...]]:
        symbols: dict[str, dict[str, None]] = defaultdict(dict)
        for assignment in self.assignments:
            for folder in assignment.directories:
                symbols[folder].update(dict.fromkeys(assignment.symbols))
        return {folder: tuple(names) for folder, names in symbols.items()}

    def folder_rule_families(self, folder: str) -> tuple[Families, str] | None:
        """For headers: a folder reached only from architecture-specific Makefiles."""
        families = self.folder_families.get(folder)
        if not families:
            return None
        origin = ", ".join(sorted(self._folder_origin.get(folder, ())))
        return families, origin


def _family_in_list_name(base: str, known_families: frozenset[str]) -> str | None:
    """`obj-i386-y` (older Makefile.target) is a list for one target."""
    last = base.rsplit("-", 1)[-1]
    family = arch_family(last)
    return family if "-" in base and family in known_families else None
