"""`kvmlint model`: the model's predicates by configuration, or checked against a tree's setters."""

from __future__ import annotations

import sys

import click

from kvmlint.cli.output import EXIT_FINDINGS, echo, out
from kvmlint.errors import UsageError


@click.command()
@click.option("--arch", default=None, help="Only this architecture.")
@click.option("--era", type=click.Choice(["2012", "current"]), default=None, help="[default: current, or the tree's with --verify]")
@click.option("--verify", "tree", type=click.Path(), default=None, help="Derive each architecture's facts from this tree's setters and report drift.")
def model(arch, era, tree) -> None:
    """Print each architecture's predicates by configuration, or check them against a tree."""
    from kvmlint.model import format_drift, format_model_table, load_model, verify

    if tree is None:
        chosen = load_model(era or "current")
        if arch is not None and arch not in chosen.arches:
            raise UsageError(f"unknown architecture {arch}; known: {', '.join(chosen.arches)}")
        out(format_model_table(chosen, arch))
        return
    from kvmlint.analysis import analyse
    from kvmlint.source.discover import discover

    analysis = analyse(discover([tree]), era=era)
    setters = analysis.index.setters(analysis.scope)
    drifts = verify(analysis.model, setters)
    echo(f"model era {analysis.era}, {len(setters)} setters read from {tree}")
    out(format_drift(drifts))
    sys.exit(EXIT_FINDINGS if any(not d.era_difference for d in drifts) else 0)
