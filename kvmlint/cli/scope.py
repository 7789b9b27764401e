"""`kvmlint scope`: each file's architecture scope, compile unit and the reason."""

from __future__ import annotations

import click

from kvmlint.cli.output import echo, stderr


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--exclude", multiple=True, help="Glob of paths to skip (repeatable).")
def scope(paths, exclude) -> None:
    """Print each file's architecture scope and the reason."""
    from kvmlint.scope import ScopeResolver
    from kvmlint.source.discover import discover

    sources = discover(list(paths), tuple(exclude))
    resolver = ScopeResolver(sources.root)
    for path in sources.files:
        decided = resolver.scope_of(path)
        echo(f"{path}: {decided.label}: {decided.reason}; "
              f"compile unit: {decided.unit or 'unknown'} ({decided.unit_reason})")
    for build_file, problem in resolver.warnings:
        stderr(f"warning: {build_file}: {problem}")
