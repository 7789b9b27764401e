"""Architecture scope of each file of a QEMU tree, from its paths and build files."""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from .build import PER_TARGET, TARGET_INDEPENDENT, BoundWarnings, BuildRule, ConfigSpace, read_text
from .families import ARCH_FAMILIES, Families, arch_family, format_families, path_convention, sort_families, union
from .kconfig import KconfigSpace, has_kconfig
from .makefiles import DefaultConfigs, MakefileBuild, target_of_config_file
from .meson import MesonBuild

_SOURCE_SUFFIXES = (".c", ".cc", ".m", ".S")
_MAX_RULES_IN_REASON = 2


@dataclass(frozen=True)
class Scope:
    arches: frozenset[str]  # families the file is built for; empty when built for every target
    common: bool  # architecture-independent code
    reason: str
    unit: str | None = None  # PER_TARGET, TARGET_INDEPENDENT, or None: unknown (headers, no rule)
    unit_reason: str = ""

    @property
    def label(self) -> str:
        if self.common:
            return "common"
        return ",".join(sort_families(self.arches)) or "outside"  # not built into any emulator


class ScopeResolver:
    """Decides, per file, whether it is common code or some architectures' code.

    Build files are read once, on the first question.  A file built for two
    or more families is common code: the KVM predicates it asks mean
    different things on each of them.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._separate_builds: dict[str, str | None] = {}
        self._bounds = BoundWarnings(self.root)

    @property
    def warnings(self) -> tuple[tuple[str, str], ...]:
        """(build file, what was not read) for each bound the build-file readers hit so far."""
        return self._bounds.items()

    @cached_property
    def known_families(self) -> frozenset[str]:
        """Families of the tree's targets, from its target folders and target configs."""
        names = {entry[len("target-"):] for entry in self._folders("") if entry.startswith("target-")}
        names |= set(self._folders("target"))
        for folder in ("default-configs", "configs/targets"):
            names |= {target_of_config_file(entry) for entry in self._entries(folder)}
        names |= {target_of_config_file(entry + ".mak") for entry in self._folders("configs/devices")}
        names.discard(None)
        return frozenset(ARCH_FAMILIES) | {arch_family(name) for name in names}

    def _entries(self, folder: str) -> list[str]:
        try:
            return os.listdir(self.root / folder)
        except OSError:
            return []

    def _folders(self, folder: str) -> list[str]:
        return [entry for entry in self._entries(folder) if (self.root / folder / entry).is_dir()]

    @cached_property
    def era(self) -> str:
        """"meson" (current layout), "make" (2012-2019) or "none"."""
        if (self.root / "meson.build").is_file():
            return "meson"
        if (self.root / "Makefile.objs").is_file() or (self.root / "Makefile.target").is_file():
            return "make"
        return "none"

    @cached_property
    def configs(self) -> ConfigSpace:
        if self.era == "none":
            return ConfigSpace(self.known_families)
        if has_kconfig(self.root):
            return KconfigSpace(self.root, self.known_families, self._bounds)
        return DefaultConfigs(self.root, self.known_families, self._bounds)

    @cached_property
    def _makefiles(self) -> MakefileBuild | None:
        return MakefileBuild(self.root, self.configs, self._bounds) if self.era == "make" else None

    @cached_property
    def rules(self) -> dict[str, list[BuildRule]]:
        if self.era == "meson":
            return MesonBuild(self.root, self.configs, self._bounds).rules()
        if self._makefiles is not None:
            return self._makefiles.rules()
        return {}

    def scope_of(self, relpath: str) -> Scope:
        relpath = posixpath.normpath(relpath.replace("\\", "/")).lstrip("/")
        is_source = relpath.endswith(_SOURCE_SUFFIXES)
        rules = self.rules.get(relpath, []) if is_source else []
        unit, unit_reason = compile_unit(rules) if is_source else (None, "not a source file: compiled where included")
        return replace(self._scope(relpath, rules), unit=unit, unit_reason=unit_reason)

    def _scope(self, relpath: str, rules: list[BuildRule]) -> Scope:
        convention = path_convention(relpath, self.known_families)
        if convention is not None:
            family, folder = convention
            reason = f"in {folder}, {family} code by path"
            if rules:
                reason += f"; {rules[0].description}"
            return Scope(frozenset({family}), False, reason)
        if rules:
            return self._scope_from_rules(relpath, rules)
        return self._scope_without_rules(relpath)

    def _scope_from_rules(self, relpath: str, rules: list[BuildRule]) -> Scope:
        families: Families = frozenset()
        for rule in rules:
            families = union(families, rule.families)
        if families is None:
            unrestricted = next(rule for rule in rules if rule.families is None)
            return Scope(frozenset(), True, self._describe([unrestricted]) + "; built for every target")
        if not families:
            fallback = self._scope_without_rules(relpath)
            return Scope(fallback.arches, fallback.common,
                         f"{self._describe(rules)}; no target's default configuration builds it, "
                         f"so by path: {fallback.reason}")
        contributing = [rule for rule in rules if rule.families]
        reason = self._describe(contributing)
        # Only architectures with KVM can disagree about what the irqchip means:
        # a file shared by arm and hexagon is arm's as far as KVM is concerned.
        with_kvm = families & set(ARCH_FAMILIES)
        if len(with_kvm) <= 1:
            return Scope(families, False, reason)
        return Scope(families, True, f"{reason}; built for {len(with_kvm)} KVM architectures "
                                     f"({format_families(with_kvm)}), so common code")

    def _describe(self, rules: list[BuildRule]) -> str:
        rules = list({rule.description: rule for rule in rules}.values())
        shown = rules[:_MAX_RULES_IN_REASON]
        text = " and ".join(rule.description for rule in shown)
        if len(rules) > len(shown):
            text += f" (+{len(rules) - len(shown)} more rules)"
        explained = dict.fromkeys(s for rule in shown for s in rule.symbols if self.configs.families(s) is not None)
        for symbol in explained:
            text += f"; {self.configs.explain(symbol)}"
        return text

    def _scope_without_rules(self, relpath: str) -> Scope:
        folder = posixpath.dirname(relpath)
        if self._makefiles is not None:
            folder_rule = self._makefiles.folder_rule_families(folder)
            if folder_rule is not None and len(folder_rule[0]) == 1:
                families, origin = folder_rule
                return Scope(families, False,
                             f"in {folder}/, a folder built only for {format_families(families)} (from {origin})")
        companion = self._companion_source(relpath)
        if companion is not None:
            owner = self.scope_of(companion)
            if not owner.common and owner.arches:
                return Scope(owner.arches, False, f"header of {companion}, which is {owner.label} code: {owner.reason}")
        separate = self._separate_build(folder)
        if separate is not None:
            return Scope(frozenset(), False,
                         f"{separate}/Makefile builds {separate}/ on its own (firmware, tests or tools), "
                         f"and no emulator build file compiles it: not part of any emulator")
        kind = "header" if relpath.endswith(".h") else "no build rule found"
        return Scope(frozenset(), True, f"{kind}; generic path")

    def _companion_source(self, relpath: str) -> str | None:
        """The source a header declares: foo.h beside foo.c, or include/<p>/foo.h for <p>/foo.c
        (QEMU's convention for a device's interface)."""
        stem, suffix = posixpath.splitext(relpath)
        if suffix != ".h":
            return None
        candidates = [stem + ".c"]
        if stem.startswith("include/"):
            candidates.append(stem[len("include/"):] + ".c")
        return next((source for source in candidates if source in self.rules), None)

    def _separate_build(self, folder: str) -> str | None:
        """The folder (below the root) with a Makefile of its own that the emulators'
        build files do not descend into, holding `folder`; None if there is none."""
        if self.era == "none":
            return None
        # Up to the first folder decided, in a loop: folders can nest deeper than the stack.
        below: list[str] = []
        while folder and folder not in self._separate_builds:
            here = self.root / folder
            if (here / ("meson.build" if self.era == "meson" else "Makefile.objs")).is_file():
                self._separate_builds[folder] = None
            elif (here / "Makefile").is_file() and folder not in self._folders_included_by_top_makefile:
                self._separate_builds[folder] = folder
            else:
                below.append(folder)
                folder = posixpath.dirname(folder)
        separate = self._separate_builds.get(folder) if folder else None
        self._separate_builds.update(dict.fromkeys(below, separate))
        return separate

    @cached_property
    def _folders_included_by_top_makefile(self) -> frozenset[str]:
        """Folders whose Makefiles the top Makefile includes (`include $(SRC_PATH)/tests/Makefile`):
        part of the main build, unlike sub-makes (`$(MAKE) -C pc-bios/...`)."""
        folders = set()
        for line in read_text(self.root, self.root / "Makefile").splitlines():
            match = re.match(r"-?include\s+(?:\$\(SRC_PATH\)/)?(\S+)/Makefile\b", line.strip())
            if match:
                folders.add(posixpath.normpath(match.group(1)))
        return frozenset(folders)


def compile_unit(rules: list[BuildRule]) -> tuple[str | None, str]:
    """The unit a file is compiled in, and why.

    One target-independent rule decides: there a target header would not be
    found, whatever the other rules allow.
    """
    for unit in (TARGET_INDEPENDENT, PER_TARGET):
        deciding = next((rule for rule in rules if rule.unit == unit), None)
        if deciding is not None:
            return unit, f"{deciding.build_file}: {deciding.unit_reason}"
    return None, "no build rule compiles it" if not rules else "its build rules do not say"
