"""The rules' documentation: one record per rule and KVM000, the page docs/rules.md, and where it is published.

Apart from the registry because KVM000's description lives in suppressions.py, which reads the registry.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from kvmlint.rules import all_rules, suppressions


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
