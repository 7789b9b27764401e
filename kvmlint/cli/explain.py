"""`kvmlint explain` and `kvmlint rules`: the rules' documentation, from their modules."""

from __future__ import annotations

import click

from kvmlint import rules
from kvmlint.cli.output import out


@click.command()
@click.argument("rule")
def explain(rule: str) -> None:
    """Print a rule's documentation (by code, name or alias)."""
    selection = rules.resolve(rule)
    chosen = selection.rule
    aliases = ", ".join(chosen.aliases) or "none"
    out(f"# {chosen.code} {chosen.name}\n")
    out(f"{chosen.summary}\n")
    out(f"Fix available: {'yes' if chosen.fixable else 'no'}. Aliases: {aliases}.\n")
    out(chosen.docs)


@click.command("rules")
def list_rules() -> None:
    """List every rule: code, name, whether it can fix, summary."""
    for rule in rules.all_rules():
        fix = "fix" if rule.fixable else "   "
        out(f"{rule.code}  {rule.name:<26} {fix}  {rule.summary}")
