"""Stage 5, rules: one module per rule, the registry derived from the modules.

Takes the analysis (facts, scope, index) and the model; hands on `Finding`
records, after the tree's suppressions (`suppressions.py`).

A rule module carries everything about its rule (ruff's way):
`CODE`, `NAME`, `SUMMARY`, `ALIASES` (alias -> symbols the alias narrows to),
`FIXABLE`, docs in the module docstring ("What it does / Why is this bad? /
Example / Fix safety"; an optional `extend_docs(docs)` adds what the model's
data says), and `check(analysis, symbols) -> Iterable[Finding]`.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType
from typing import NamedTuple

from kvmlint.errors import UsageError


@dataclass(frozen=True)
class Rule:
    module: ModuleType

    @property
    def code(self) -> str:
        return self.module.CODE

    @property
    def name(self) -> str:
        return self.module.NAME

    @property
    def summary(self) -> str:
        return self.module.SUMMARY

    @property
    def fixable(self) -> bool:
        return self.module.FIXABLE

    @property
    def aliases(self) -> dict[str, tuple[str, ...]]:
        return getattr(self.module, "ALIASES", {})

    @property
    def docs(self) -> str:
        docs = (self.module.__doc__ or "").strip()
        extend = getattr(self.module, "extend_docs", None)  # parts derived from the model's data
        return extend(docs) if extend else docs

    def check(self, analysis, symbols: tuple[str, ...] | None = None):
        return self.module.check(analysis, symbols)


class Documented(NamedTuple):
    """What the rules page, `explain` and SARIF say about a rule (or the pseudo-rule KVM000)."""

    code: str
    name: str
    summary: str
    docs: str
    fixable: bool
    aliases: tuple[str, ...] = ()

    @property
    def anchor(self) -> str:
        """The rule's anchor in docs/rules.md: its heading `## KVM001 irqchip-proxy` as GitHub and GitLab
        make anchors of headings."""
        return f"{self.code}-{self.name}".lower()


def documented() -> list[Documented]:
    """Every rule, then KVM000, the pseudo-rule of `--strict`."""
    from kvmlint.rules import suppressions  # it imports this module

    return [
        *(Documented(r.code, r.name, r.summary, r.docs, r.fixable, tuple(r.aliases)) for r in all_rules()),
        Documented(suppressions.UNUSED_SUPPRESSION_CODE, suppressions.UNUSED_SUPPRESSION_NAME,
                   suppressions.UNUSED_SUPPRESSION_SUMMARY, suppressions.UNUSED_SUPPRESSION_DOCS, False),
    ]


def rules_page() -> str:
    """docs/rules.md: every rule's documentation under a heading that is its stable anchor."""
    parts = [
        "# kvmlint's rules\n\n"
        "<!-- Generated from kvmlint/rules/ by `kvmlint rules --markdown > docs/rules.md`; edit the rule modules. -->\n\n"
        "Each rule's documentation, as `kvmlint explain CODE` prints it.  Each heading is a stable anchor\n"
        "(`rules.md#kvm001-irqchip-proxy`), the one SARIF's `helpUri` points to.\n\n"
        "| code | name | fix | what |\n|---|---|---|---|\n",
        *(f"| [{d.code}](#{d.anchor}) | `{d.name}` | {'yes' if d.fixable else 'no'} | {d.summary} |\n" for d in documented()),
    ]
    for entry in documented():
        aliases = ", ".join(f"`{alias}`" for alias in entry.aliases) or "none"
        parts.append(f"\n## {entry.code} {entry.name}\n\n{entry.summary}.\n\n"
                     f"Fix available: {'yes' if entry.fixable else 'no'}. Aliases: {aliases}.\n\n"
                     f"{_one_level_down(entry.docs)}\n")
    return "".join(parts)


def _one_level_down(docs: str) -> str:
    """A rule's `## What it does` sections as `###`, under the rule's own heading; code blocks as they are."""
    lines, in_code = [], False
    for line in docs.splitlines():
        in_code = in_code != line.startswith("```")
        lines.append("#" + line if not in_code and re.match(r"#+ ", line) else line)
    return "\n".join(lines)


@lru_cache(maxsize=1)
def published_rules_page() -> str | None:
    """Where docs/rules.md is published: the "Rules" URL of the package's `[project.urls]`, None without one.
    A path inside a repository is no URL a SARIF viewer can open, so without it nothing links there."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        entries = metadata("kvmlint").get_all("Project-URL") or []
    except PackageNotFoundError:
        return None
    for entry in entries:
        label, _, url = entry.partition(",")
        if label.strip().lower() == "rules" and url.strip().startswith("https://"):
            return url.strip().split("#")[0]
    return None


def help_uri(entry: Documented) -> str | None:
    page = published_rules_page()
    return f"{page}#{entry.anchor}" if page else None


@dataclass(frozen=True)
class Selection:
    rule: Rule
    symbols: tuple[str, ...] | None = None  # an alias narrows a rule to these symbols


@lru_cache(maxsize=1)
def all_rules() -> tuple[Rule, ...]:
    rules = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "CODE"):
            rules.append(Rule(module))
    return tuple(sorted(rules, key=lambda rule: rule.code))


def resolve(word: str) -> Selection:
    """A rule by code (KVM001), name (irqchip-proxy) or alias (irq0-override)."""
    key = word.strip()
    for rule in all_rules():
        if key.upper() == rule.code or key == rule.name:
            return Selection(rule)
        if key in rule.aliases:
            return Selection(rule, tuple(rule.aliases[key]))
    known = ", ".join(f"{r.code} ({r.name})" for r in all_rules())
    raise UsageError(f"unknown rule '{word}'; known rules: {known}")


def expand(word: str) -> list[Selection]:
    """`resolve`, or every rule whose code starts with `word` (ruff's prefixes: `KVM`, `KVM00`)."""
    key = word.strip().upper()
    prefixed = [Selection(rule) for rule in all_rules() if rule.code.startswith(key) and rule.code != key]
    if key and prefixed and not any(rule.code == key for rule in all_rules()):
        return prefixed
    return [resolve(word)]


def select(
    selected: list[str] | tuple[str, ...] = (),
    ignored: list[str] | tuple[str, ...] = (),
    extended: list[str] | tuple[str, ...] = (),
) -> list[Selection]:
    """The rules to run: `selected` (default: every rule) plus `extended`, less `ignored`."""
    chosen = [s for word in selected for s in expand(word)] if selected else [Selection(r) for r in all_rules()]
    chosen += [s for word in extended for s in expand(word)]
    ignored_codes = {s.rule.code for word in ignored for s in expand(word)}
    merged: dict[str, Selection] = {}
    for selection in chosen:
        if selection.rule.code in ignored_codes:
            continue
        previous = merged.get(selection.rule.code)
        if previous is not None and (previous.symbols is None or selection.symbols is None):
            merged[selection.rule.code] = Selection(selection.rule)
        elif previous is not None:
            merged[selection.rule.code] = Selection(selection.rule, previous.symbols + selection.symbols)
        else:
            merged[selection.rule.code] = selection
    return list(merged.values())
