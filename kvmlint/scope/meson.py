"""The meson build of current QEMU: source sets, subdir(), per-architecture dictionaries.

`x_ss.add(when: 'CONFIG_X', if_true: files(...))` compiles files into source
set x_ss when CONFIG_X is enabled; `x_ss.add_all(when: ..., if_true: y_ss)`
nests one set in another; `hw_arch += {'arm': arm_ss}` (and target_arch,
target_system_arch, ...) makes a set one architecture's.  Sets that are
neither (specific_ss, system_ss, common_ss, ...) are built for every target,
so only their `when:` conditions and enclosing `if` blocks restrict them.

Compile units: `specific_*` sets and the sets of per-architecture (or
`target_*`) dictionaries are compiled per target, or per architecture, with
target/<arch>/ on the include path; any other set (common_ss, system_ss,
user_ss, stub_ss, ...) and files() outside source sets are compiled once for
all targets.  A set nested only in per-target sets is per target too.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .build import (
    PER_TARGET, TARGET_INDEPENDENT, BoundWarnings, BuildRule, ConfigSpace, compiled_per_target, join_relpath, read_text,
    visit_key,
)
from .families import Families, arch_family, format_families, intersect, union

# subdir() nesting beyond this is a loop or an attack, not a build (QEMU's deepest is 4 folders down).
MAX_SUBDIR_DEPTH = 64
# if/foreach nesting, counting that of the files whose subdir() led here, beyond this is no build either.
MAX_BLOCK_DEPTH = 64
_STRING = re.compile(r"'((?:[^'\\]|\\.)*)'")
_TOKEN = re.compile(
    r"""(?P<text>'''[\s\S]*?(?:'''|\Z)"""  # a multi-line string, to its end or the file's
    r"|'(?:[^'\\]|\\.)*'|'[\s\S]*"  # a string; unterminated, the rest of the file
    r"|[^'#\\()\[\]{}\n]+|\\(?!\n))"  # anything else, copied as it is
    r"|(?P<comment>#[^\n]*)|(?P<continuation>\\\n)|(?P<open>[(\[{])|(?P<close>[)\]}])|(?P<newline>\n)"
)
_SYMBOL = re.compile(r"^(CONFIG|TARGET)_\w+$")
_CALL = re.compile(r"^(\w+)\s*\.\s*(add_all|add)\s*\((.*)\)$", re.S)
_ASSIGNMENT = re.compile(r"^(\w+)\s*(\+=|=)\s*(.*)$", re.S)
_SUBDIR = re.compile(r"^subdir\s*\(\s*'([^']*)'")
_DICT_ENTRY = re.compile(r"'(\w+)'\s*:\s*(\w+)")
_FILES_CALL = re.compile(r"files\s*\(([^()]*)\)")
_IDENTIFIER = re.compile(r"\b[A-Za-z_]\w*\b")
_KEYWORD_ARGUMENT = re.compile(r"^(\w+)\s*:(.*)$", re.S)
# A list ends before the next `[`: with `[^\]]*`, `'CONFIG_X': [` repeated took quadratic time.
_ACCELERATOR_ENTRY = re.compile(r"'(CONFIG_\w+)'\s*:\s*(\[[^\]\[]*\]|\w+)")
_LIST_ASSIGNMENT = re.compile(r"^(\w+)\s*(\+?=)\s*(\[[^\]]*\])\s*$", re.S)
_HAS_KEY = re.compile(r"has_key\s*\(\s*'(\w+)'\s*\)|'(\w+)'\s+in\s+\w+")


@dataclass(frozen=True)
class Condition:
    """Symbols of an `if` or `when:` condition: all must hold, or any ("any")."""

    symbols: tuple[str, ...]
    any_of: bool = False


@dataclass
class SourceSetAddition:
    meson_file: str
    source_set: str
    when: tuple[str, ...]  # string symbols of when: (all must hold)
    blocks: tuple[Condition, ...]  # enclosing if-blocks that restrict
    files: list[str] = field(default_factory=list)  # root-relative
    negated: bool = False  # the files of if_false:
    nested_sets: list[str] = field(default_factory=list)  # add_all / identifiers in if_true


def statements(text: str) -> list[str]:
    """Meson statements: comments dropped, lines joined inside brackets and after '\\'."""
    result: list[str] = []
    current: list[str] = []
    depth = 0
    for token in _TOKEN.finditer(text):
        kind, piece = token.lastgroup, token.group()
        if kind == "comment":
            continue
        if kind == "continuation":
            current.append(" ")
        elif kind == "open":
            depth += 1
            current.append(piece)
        elif kind == "close":
            depth = max(depth - 1, 0)
            current.append(piece)
        elif kind == "newline" and depth == 0:
            statement = "".join(current).strip()
            if statement:
                result.append(statement)
            current = []
        else:
            current.append(piece)
    statement = "".join(current).strip()
    if statement:
        result.append(statement)
    return result


def split_arguments(text: str) -> list[str]:
    """Top-level comma-separated arguments of a call."""
    parts, current, depth, index = [], [], 0, 0
    while index < len(text):
        char = text[index]
        if char == "'":
            match = _STRING.match(text, index)
            end = match.end() if match else len(text)
            current.append(text[index:end])
            index = end
            continue
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        index += 1
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def if_condition(expression: str) -> Condition | None:
    """Restriction of `if config_all_devices.has_key('CONFIG_X') [or ...]`; None: none."""
    without_strings = _STRING.sub("''", expression)
    if re.search(r"\bnot\b", without_strings):
        return None
    operands = re.split(r"\b(and|or)\b", expression)
    connectives = set(operands[1::2])
    if len(connectives) > 1:
        return None
    symbols, unrestricted_operand = [], False
    for operand in operands[0::2]:
        found = [a or b for a, b in _HAS_KEY.findall(operand)]
        found = [symbol for symbol in found if _SYMBOL.match(symbol)]
        if found:
            symbols.extend(found)
        else:
            unrestricted_operand = True
    any_of = connectives == {"or"}
    if not symbols or (any_of and unrestricted_operand):
        return None
    return Condition(tuple(symbols), any_of)


class MesonBuild:
    """Every file the meson source sets compile, with the rules that compile it."""

    def __init__(self, root: Path, configs: ConfigSpace, warnings: BoundWarnings | None = None) -> None:
        self.root = root
        self.configs = configs
        self.warnings = warnings if warnings is not None else BoundWarnings(root)
        self.additions: list[SourceSetAddition] = []
        # files() outside source sets: libraries and executables linked into every build
        self.plain_listings: list[SourceSetAddition] = []
        self.set_families_by_dict: dict[str, set[str]] = defaultdict(set)
        self.dict_of_set: dict[str, str] = {}  # set -> the per-architecture or `target_*` dictionary holding it
        self._file_lists: dict[str, list[str]] = {}
        self._visited: dict[str, str] = {}  # real path of each meson.build read -> the name it was read under
        self._read("", ())
        self._nestings: dict[str, SourceSetAddition] = {}
        self._nested_in: dict[str, set[str]] = defaultdict(set)
        for addition in self.additions:
            for name in addition.nested_sets:
                self._nested_in[name].add(addition.source_set)
                if not addition.negated:
                    self._nestings.setdefault(name, addition)
        self.set_families = self._solve_set_families()

    def _read(
        self, folder: str, blocks: tuple[Condition | None, ...], depth: int = 0, named_by: str | None = None,
    ) -> None:
        meson_file = join_relpath(folder, "meson.build")
        if self.warnings.left_root(named_by or meson_file, self.root / meson_file, meson_file):
            return
        key = visit_key(self.root / meson_file)
        if key in self._visited:
            if self._visited[key] != meson_file and named_by is not None:  # the same file under another name
                self.warnings.add(named_by, f"{folder}/ leads back to {self._visited[key]} "
                                            f"through a symlink (a loop?); not read again")
            return
        self._visited[key] = meson_file
        open_blocks: list[Condition | None] = []
        untracked = 0  # blocks open past MAX_BLOCK_DEPTH, whose conditions are not applied
        active = tuple(b for b in blocks if b is not None)  # the restricting blocks, shared by what is inside
        for statement in statements(read_text(self.root, self.root / meson_file)):
            keyword = statement.split(None, 1)[0] if statement else ""
            if keyword in ("if", "foreach", "elif", "else", "endif", "endforeach"):
                if untracked:
                    untracked += {"endif": -1, "endforeach": -1, "elif": 0, "else": 0}.get(keyword, 1)
                elif keyword in ("if", "foreach") and len(blocks) + len(open_blocks) >= MAX_BLOCK_DEPTH:
                    untracked = 1
                    self.warnings.add(meson_file, f"if/foreach nested deeper than {MAX_BLOCK_DEPTH} levels (counting "
                                                  f"those around its subdir()); the deeper blocks' conditions "
                                                  f"not applied")
                else:
                    if keyword in ("if", "foreach"):
                        open_blocks.append(if_condition(statement[2:]) if keyword == "if" else None)
                    elif keyword in ("elif", "else") and open_blocks:
                        open_blocks[-1] = None
                    elif keyword.startswith("end") and open_blocks:
                        open_blocks.pop()
                    active = tuple(b for b in blocks + tuple(open_blocks) if b is not None)
            elif subdir := _SUBDIR.match(statement):
                if depth >= MAX_SUBDIR_DEPTH:
                    self.warnings.add(meson_file, f"subdir() nested deeper than {MAX_SUBDIR_DEPTH} levels; "
                                                  f"subdir('{subdir.group(1)}') not read")
                    continue
                self._read(join_relpath(folder, subdir.group(1)), blocks + tuple(open_blocks), depth + 1, meson_file)
            elif call := _CALL.match(statement):
                self._add(meson_file, folder, call.group(1), call.group(3), active)
            else:
                if assignment := _ASSIGNMENT.match(statement):
                    self._assign(folder, *assignment.groups())
                if "files" in statement:
                    self.plain_listings.append(SourceSetAddition(
                        meson_file, "", (), active, files=self._files_in(folder, statement)))

    def _assign(self, folder: str, name: str, operator: str, value: str) -> None:
        if value.lstrip().startswith("{"):
            for key, identifier in _DICT_ENTRY.findall(value):
                family = arch_family(key)
                if family in self.configs.known_families:
                    self.set_families_by_dict[identifier].add(family)
                    self.dict_of_set.setdefault(identifier, name)
                elif name.startswith("target_"):
                    self.dict_of_set.setdefault(identifier, name)
        elif "files" in value:
            files = self._files_in(folder, value)
            self._file_lists[name] = (self._file_lists.get(name, []) if operator == "+=" else []) + files

    def _files_in(self, folder: str, value: str) -> list[str]:
        files = []
        for arguments in _FILES_CALL.findall(value):
            files.extend(join_relpath(folder, name) for name in _STRING.findall(arguments))
        without_calls = _STRING.sub("''", _FILES_CALL.sub("", value))
        for identifier in _IDENTIFIER.findall(without_calls):
            files.extend(self._file_lists.get(identifier, ()))
        return files

    def _add(self, meson_file: str, folder: str, source_set: str, arguments: str,
             blocks: tuple[Condition, ...]) -> None:
        when: tuple[str, ...] = ()
        true_values, false_values = [], []
        for argument in split_arguments(arguments):
            keyword = _KEYWORD_ARGUMENT.match(argument)
            key, value = keyword.groups() if keyword else ("", argument)
            if key == "when":
                when = tuple(s for s in _STRING.findall(value) if _SYMBOL.match(s))
            elif key in ("", "if_true"):
                true_values.append(value)
            elif key == "if_false":
                false_values.append(value)
        for values, negated in ((true_values, False), (false_values, True)):
            if not values:
                continue
            joined = " ".join(values)
            addition = SourceSetAddition(meson_file, source_set, when, blocks,
                                         files=self._files_in(folder, joined), negated=negated)
            without = _STRING.sub("''", _FILES_CALL.sub("", joined))
            addition.nested_sets = [i for i in _IDENTIFIER.findall(without)
                                    if i not in self._file_lists and i != "files"]
            self.additions.append(addition)

    def _condition_families(self, condition: Condition) -> Families:
        combined: Families = frozenset() if condition.any_of else None
        for symbol in condition.symbols:
            families = self.configs.families(symbol)
            combined = union(combined, families) if condition.any_of else intersect(combined, families)
        return combined

    def addition_families(self, addition: SourceSetAddition, set_families: dict[str, Families]) -> Families:
        families = set_families.get(addition.source_set)
        if not addition.negated:  # if_false holds where the condition fails: no narrowing
            for symbol in addition.when:
                families = intersect(families, self.configs.families(symbol))
        for block in addition.blocks:
            families = intersect(families, self._condition_families(block))
        return families

    def _solve_set_families(self) -> dict[str, Families]:
        """A set in an architecture dictionary is that architecture's; a set only nested
        in others inherits their restrictions; any other set is built for every target.

        The inherited restrictions start empty and only grow; an addition is evaluated
        again only when its own set's restriction grew, so a chain of n nested sets costs
        n steps, not n passes over every addition."""
        nested = {name for a in self.additions for name in a.nested_sets}
        families: dict[str, Families] = {}
        for name in nested:
            families[name] = frozenset()
        for name, dict_families in self.set_families_by_dict.items():
            families[name] = frozenset(dict_families)
        inherited = nested - set(self.set_families_by_dict)
        additions_to: dict[str, list[SourceSetAddition]] = defaultdict(list)
        for addition in self.additions:
            additions_to[addition.source_set].append(addition)
        pending = list(self.additions)
        while pending:
            addition = pending.pop()
            parent = self.addition_families(addition, families)
            for name in addition.nested_sets:
                grown = union(families[name], parent) if name in inherited else None
                if name in inherited and grown != families[name]:
                    families[name] = grown
                    pending.extend(additions_to.get(name, ()))
        return families

    def _per_target_by_name(self, source_set: str) -> bool:
        return source_set.startswith("specific") or source_set in self.dict_of_set

    @cached_property
    def _per_target_sets(self) -> set[str]:
        return compiled_per_target(self._nested_in, self._per_target_by_name)

    def set_unit(self, source_set: str) -> tuple[str, str]:
        """(unit, reason) of the files added to `source_set` ('' for files() outside sets)."""
        if not source_set:
            return TARGET_INDEPENDENT, "files() outside source sets are built once, in a library or tool"
        per_target = "compiled per target, with target/<arch>/ on the include path"
        if source_set.startswith("specific"):
            return PER_TARGET, f"{source_set} is {per_target}"
        if source_set in self.dict_of_set:
            return PER_TARGET, (f"{source_set} is in {self.dict_of_set[source_set]}, compiled for its "
                                f"architecture only, with target/<arch>/ on the include path")
        if source_set in self._per_target_sets:
            parents = sorted(self._nested_in[source_set] - {source_set})
            return PER_TARGET, f"{source_set} is added only to per-target sets ({', '.join(parents)})"
        return TARGET_INDEPENDENT, f"{source_set} is compiled once for all targets, without target headers"

    def rules(self) -> dict[str, list[BuildRule]]:
        result: dict[str, list[BuildRule]] = defaultdict(list)
        in_source_sets = {source for addition in self.additions for source in addition.files}
        for listing in self.plain_listings:
            listing.files = [source for source in listing.files if source not in in_source_sets]
        for addition in self.additions + self.plain_listings:
            if not addition.files:
                continue
            families = self.addition_families(addition, self.set_families)
            description = self._describe(addition)
            symbols = () if addition.negated else addition.when
            symbols += tuple(s for block in addition.blocks for s in block.symbols)
            nesting = self._first_nesting(addition.source_set)
            if nesting is not None:
                symbols += nesting.when
            unit, unit_reason = self.set_unit(addition.source_set)
            for source in addition.files:
                result[source].append(BuildRule(addition.meson_file, description, symbols, families,
                                                unit, unit_reason))
        return result

    def _describe(self, addition: SourceSetAddition) -> str:
        text = f"{addition.meson_file}: {addition.source_set or 'files() outside source sets'}"
        if addition.when:
            condition = " and ".join(addition.when)
            text += f" unless {condition} (if_false)" if addition.negated else f" when {condition}"
        for block in addition.blocks:
            text += f" inside `if` on {(' or ' if block.any_of else ' and ').join(block.symbols)}"
        owners = self.set_families_by_dict.get(addition.source_set)
        nesting = self._first_nesting(addition.source_set)
        if owners:
            text += f" ({format_families(owners)} source set)"
        elif nesting is not None:
            text += f" (added to {nesting.source_set}"
            text += f" when {' and '.join(nesting.when)})" if nesting.when else ")"
        return text

    def _first_nesting(self, source_set: str) -> SourceSetAddition | None:
        """The add_all() that puts a set into another one, for reasons."""
        if source_set in self.set_families_by_dict:
            return None
        return self._nestings.get(source_set)


def read_accelerator_targets(root: Path) -> dict[str, frozenset[str]]:
    """Accelerator symbol (without CONFIG_) -> the targets the top meson.build offers it for.

    `accelerator_targets += {'CONFIG_XEN': xen_targets}`, with the list taken
    over every host branch (`if cpu == ...`): KVM only runs with host ==
    guest architecture, Xen and HVF only for a few targets.
    """
    lists: dict[str, set[str]] = defaultdict(set)
    accelerators: dict[str, set[str]] = defaultdict(set)
    for statement in statements(read_text(root, root / "meson.build")):
        if match := _LIST_ASSIGNMENT.match(statement):
            lists[match.group(1)] |= set(_STRING.findall(match.group(3)))
        elif statement.startswith("accelerator_targets"):
            for symbol, value in _ACCELERATOR_ENTRY.findall(statement):
                targets = _STRING.findall(value) if value.startswith("[") else lists.get(value, set())
                accelerators[symbol[len("CONFIG_"):]] |= set(targets)
    return {name: frozenset(targets) for name, targets in accelerators.items()}
