"""`kvmlint explain` and `kvmlint rules`: the rules' documentation, from their modules."""

from __future__ import annotations

import click

from kvmlint import rules


@click.command()
@click.argument("rule")
def explain(rule: str) -> None:
    """Print a rule's documentation (by code, name or alias)."""
    selection = rules.resolve(rule)
    chosen = selection.rule
    aliases = ", ".join(chosen.aliases) or "none"
    click.echo(f"# {chosen.code} {chosen.name}\n")
    click.echo(f"{chosen.summary}\n")
    click.echo(f"Fix available: {'yes' if chosen.fixable else 'no'}. Aliases: {aliases}.\n")
    click.echo(chosen.docs)


@click.command("rules")
def list_rules() -> None:
    """List every rule: code, name, whether it can fix, summary."""
    for rule in rules.all_rules():
        fix = "fix" if rule.fixable else "   "
        click.echo(f"{rule.code}  {rule.name:<26} {fix}  {rule.summary}")
