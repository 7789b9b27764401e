"""`kvmlint validate`: two C conditions compared by the model over every configuration."""

from __future__ import annotations

import sys

import click

from kvmlint.cli.output import EXIT_FINDINGS, out
from kvmlint.errors import UsageError


@click.command()
@click.argument("old")
@click.argument("new")
@click.option("--arch", "arches", multiple=True, help="Only these architectures (repeatable).")
@click.option("--era", type=click.Choice(["2012", "current"]), default="current", show_default=True)
@click.option("--needs", default=None, help="The expression the site really needs, to judge the direction of each difference.")
def validate(old, new, arches, era, needs) -> None:
    """Compare two C conditions over every configuration of every architecture.

    Exit 0 when the rewrite is safe, 1 when it is not."""
    from kvmlint.model import ExpressionError, format_validation_table, load_model
    from kvmlint.model import validate as compare

    model = load_model(era)
    unknown = sorted(set(arches) - set(model.arches))
    if unknown:
        raise UsageError(f"unknown architecture {', '.join(unknown)}; known: {', '.join(model.arches)}")
    try:
        verdict = compare(model, old, new, arches=tuple(arches) or None, needed=needs)
    except ExpressionError as error:
        raise UsageError(f"cannot read the expression: {error}") from error
    out(format_validation_table(verdict))
    sys.exit(0 if verdict.safe else EXIT_FINDINGS)
