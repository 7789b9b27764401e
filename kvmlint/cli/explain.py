"""`kvmlint explain` and `kvmlint rules`: the rules' documentation, from their modules."""

from __future__ import annotations

import click

from kvmlint import rules
from kvmlint.cli.output import out


@click.command()
@click.argument("rule")
def explain(rule: str) -> None:
    """Print a rule's documentation (by code, name or alias; KVM000 too)."""
    from kvmlint.rules import docs as rule_docs  # loads the rules: not at start-up
    documented = rule_docs.documented()
    chosen = next((entry for entry in documented if rule.strip().upper() == entry.code or rule.strip() == entry.name), None)
    if chosen is None:
        code = rules.resolve(rule).rule.code
        chosen = next(entry for entry in documented if entry.code == code)
    aliases = ", ".join(chosen.aliases) or "none"
    out(f"# {chosen.code} {chosen.name}\n")
    out(f"{chosen.summary}\n")
    out(f"Fix available: {'yes' if chosen.fixable else 'no'}. Aliases: {aliases}.")
    # Without a published page (pyproject's [project.urls] "Rules"), the page's place in kvmlint's repository.
    link = rule_docs.help_uri(chosen) or f"docs/rules.md#{chosen.anchor} in kvmlint's repository"
    out(f"Documentation: {link}\n")
    out(chosen.docs)


@click.command("rules")
@click.option("--markdown", is_flag=True, help="Print every rule's documentation as one page (docs/rules.md).")
def list_rules(markdown: bool) -> None:
    """List every rule: code, name, whether it can fix, summary."""
    if markdown:
        from kvmlint.rules import docs as rule_docs

        out(rule_docs.rules_page(), nl=False)
        return
    for rule in rules.all_rules():
        fix = "fix" if rule.fixable else "   "
        out(f"{rule.code}  {rule.name:<26} {fix}  {rule.summary}")
