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
    PER_TARGET, TARGET_INDEPENDENT, BoundWarnings, BuildRule, ConfigSpace, join_relpath, read_text, summarize_names,
    visit_key,
)
from .families import Families, arch_family, format_families, intersect, path_convention, union

_VARIABLE_REFERENCE = re.compile(r"\$\(([\w.-]+)\)")
_ADDPREFIX = re.compile(r"^\$\(addprefix\s+([^,]*?)\s*,\s*\$\(([\w.-]+)\)\s*\)$")
_LIST_SUFFIX = re.compile(r"^(?P<base>.+)-(?P<condition>y|m|\$\(.*\))$")
_YES = re.compile(r"^y+$")
# $(TARGET_BASE_ARCH) in hw/$(TARGET_BASE_ARCH)/ stands for an architecture's folder only.
_TARGET_VARIABLE = re.compile(r"\$\((TARGET_ARCH|TARGET_BASE_ARCH|TARGET_ARCH2|TARGET_ABI_DIR)\)")
ARCH_PLACEHOLDER = "@ARCH@"
# The lists Makefile.target compiles with the target's flags and include path.
_PER_TARGET_LISTS = ("obj", "target-obj")
# `include` nesting in device configs beyond this is a loop or an attack, not a config.
MAX_INCLUDE_DEPTH = 32
# Wildcards (a $(VAR) or the arch) per name pattern: each one more multiplies the
# regex's backtracking by the name's length.
MAX_PATTERN_WILDCARDS = 2
# A list-name condition nesting calls deeper, or joining more operands, restricts nothing we read:
# reading it and every use of it recurse once per level and operand.
MAX_CONDITION_DEPTH = 32
MAX_CONDITION_OPERANDS = 200


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


def make_condition(text: str, depth: int = 0) -> tuple:
    """A list-name condition as an expression: ("sym", X), ("and"|"or", a, b), ("not", a),
    or ("any",) for y, m and make functions that restrict nothing we can read.

    `$(CONFIG_X)`, `$(call land,A,B)`, `$(call lor,A,B)` and `$(call lnot,A)` are understood.
    """
    text = text.strip()
    if match := re.fullmatch(r"\$\((\w+)\)", text):
        return ("sym", match.group(1))
    call = re.fullmatch(r"\$\(call\s+(land|lor|lnot)\s*,(.*)\)", text, re.S)
    if call is None or depth >= MAX_CONDITION_DEPTH:
        return ("any",)
    parts = _split_top_level(call.group(2), ",")
    if len(parts) > MAX_CONDITION_OPERANDS:
        return ("any",)
    operands = [make_condition(part, depth + 1) for part in parts]
    if call.group(1) == "lnot":
        return ("not", operands[0]) if len(operands) == 1 else ("any",)
    expression = operands[0]
    for operand in operands[1:]:
        expression = ("and" if call.group(1) == "land" else "or", expression, operand)
    return expression


def required_symbols(expression: tuple) -> tuple[str, ...]:
    """Symbols that must all be enabled for the expression to hold."""
    if expression[0] == "sym":
        return (expression[1],)
    if expression[0] == "and":
        return required_symbols(expression[1]) + required_symbols(expression[2])
    return ()


def positive_symbols(expression: tuple) -> tuple[str, ...]:
    """Symbols the expression can hold through (those outside negations)."""
    if expression[0] == "sym":
        return (expression[1],)
    if expression[0] in ("and", "or"):
        return positive_symbols(expression[1]) + positive_symbols(expression[2])
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


def parse_makefile(text: str, makefile: str) -> list[MakeAssignment]:
    """The object-list assignments of one Makefile (path relative to the tree root)."""
    folder = os.path.dirname(makefile)
    assignments: list[MakeAssignment] = []
    blocks: list[tuple[str, ...] | None] = []
    for line in logical_lines(text):
        if line.startswith("\t"):
            continue  # recipe
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        directive, _, argument = line.partition(" ")
        if directive in ("ifdef", "ifndef", "ifeq", "ifneq"):
            blocks.append(block_condition(directive, argument))
            continue
        if directive == "else":
            if blocks:
                blocks[-1] = None
            continue
        if directive == "endif":
            if blocks:
                blocks.pop()
            continue
        operator = _find_operator(line)
        if operator is None:
            continue
        position, op = operator
        variable = line[:position].strip()
        value = line[position + len(op):].strip()
        list_match = _LIST_SUFFIX.match(variable)
        if not list_match or " " in list_match.group("base"):
            continue
        base = list_match.group("base")
        prefix_match = _ADDPREFIX.match(value)
        if op == ":=" and prefix_match and prefix_match.group(2) == variable:
            _reroot(assignments, makefile, base, prefix_match.group(1))
            continue
        symbols = tuple(symbol for block in blocks if block for symbol in block)
        own = make_condition(list_match.group("condition"))
        required = required_symbols(own)
        symbols += required
        condition = None if required or own == ("any",) else own
        assignment = MakeAssignment(makefile, variable, base, symbols, condition)
        for token in _split_top_level(value, " \t"):
            _add_token(assignment, token.strip(), folder)
        assignments.append(assignment)
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
    match = _LIST_SUFFIX.match(name)
    return match.group("base") if match else name


def _reroot(assignments: list[MakeAssignment], makefile: str, base: str, prefix: str) -> None:
    """Apply `X := $(addprefix P,$(X))` to the entries this Makefile added to X."""
    folder = os.path.dirname(makefile)
    for assignment in assignments:
        if assignment.makefile != makefile or assignment.base != base:
            continue
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
        for name in names:
            target = target_of_config_file(name)
            if target is None:
                continue
            for symbol, value in read_make_config(folder / name, warnings=warnings).items():
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
    path: Path, seen: frozenset[str] = frozenset(), warnings: BoundWarnings | None = None,
) -> dict[str, str]:
    """CONFIG_X=value lines of a device config, includes (relative to it) first.

    `seen` holds the real paths of the files including this one: an include of one of
    them is a loop.  Where the includes are not followed, `warnings` says so."""
    values: dict[str, str] = {}
    within = seen | {visit_key(path)}
    for line in logical_lines(read_text(path)):
        line = line.split("#", 1)[0].strip()
        if line.startswith("include "):
            included = line[len("include "):].strip()
            if visit_key(path.parent / included) in within:
                if warnings is not None:
                    warnings.add(path, f"`include {included}` includes a file that includes it (a loop); not read again")
            elif len(within) >= MAX_INCLUDE_DEPTH:
                if warnings is not None:
                    warnings.add(path, f"`include` nested deeper than {MAX_INCLUDE_DEPTH} levels; "
                                       f"{included} and what it includes not read")
            else:
                values.update(read_make_config(path.parent / included, within, warnings))
            continue
        name, equals, value = line.partition("=")
        if equals and re.fullmatch(r"CONFIG_\w+", name.strip()):
            values[name.strip()] = value.strip()
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
            key = visit_key(self.root / makefile)
            if key in read:
                if read[key] != makefile and named_by is not None:  # the same file under another name
                    self.warnings.add(named_by, f"{posixpath.dirname(makefile)}/ leads back to {read[key]} "
                                                f"through a symlink (a loop?); not read again")
                continue
            read[key] = makefile
            text = read_text(self.root / makefile)
            parsed = parse_makefile(text, makefile)
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
        """Fixpoint of folder and list restrictions; both start empty and only grow."""
        referenced_lists = {base for a in self.assignments for base in a.references}
        referenced_folders = {folder for a in self.assignments for folder in a.directories}
        for base in referenced_lists:
            self._list_families[base] = frozenset()
        for folder in referenced_folders:
            if self._convention_families(folder) is None and folder:
                self.folder_families[folder] = frozenset()
        changed = True
        while changed:
            changed = False
            list_update: dict[str, Families] = {base: frozenset() for base in referenced_lists}
            folder_update: dict[str, Families] = {folder: frozenset() for folder in self.folder_families}
            for assignment in self.assignments:
                families = self.assignment_families(assignment)
                for base in assignment.references:
                    list_update[base] = union(list_update[base], families)
                for folder in assignment.directories:
                    if folder in folder_update:
                        folder_update[folder] = union(folder_update[folder], families)
                        self._folder_origin[folder].add(f"{assignment.makefile}: {assignment.variable}")
            if list_update != {b: self._list_families[b] for b in referenced_lists} or \
                    folder_update != self.folder_families:
                self._list_families.update(list_update)
                self.folder_families = folder_update
                changed = True

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
        if kind == "and":
            return intersect(self._expression_families(expression[1]), self._expression_families(expression[2]))
        if kind == "or":
            return union(self._expression_families(expression[1]), self._expression_families(expression[2]))
        return None  # a negation, or nothing we can read: no restriction

    def list_unit(self, base: str, seen: frozenset[str] = frozenset()) -> tuple[str, str]:
        """(unit, reason) of the objects of list `base`."""
        if base in _PER_TARGET_LISTS or _family_in_list_name(base, self.configs.known_families):
            return PER_TARGET, f"{base}-y is compiled per target, with the target's folder on the include path"
        parents = sorted(self._pulled_into.get(base, set()) - seen - {base})
        if parents and all(self.list_unit(parent, seen | {base})[0] == PER_TARGET for parent in parents):
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
        enclosing = [s for s in assignment.symbols if f"$({s})" not in assignment.variable]
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
