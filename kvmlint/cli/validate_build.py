"""`kvmlint validate-build`: compile what a change you made touches, with a build's own commands."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from kvmlint.cli.output import EXIT_FINDINGS, echo, out, stderr
from kvmlint.errors import UsageError

FULL_COMPILE_HELP = ("Compile every affected unit with its whole recorded command.  By default a unit whose own "
                     "source is unchanged and that sees only changed declarations, and macros it does not use, gets the front "
                     "end (-fsyntax-only).")


def report_database_warnings(database) -> None:
    for warning in database.warnings:
        stderr(f"warning: {warning}")


def front_end_note(count: int) -> str:
    return f" ({count} by the front end alone: they see only changed declarations, and macros they do not use)" if count else ""


def report_never_built(database) -> None:
    if database.never_built:
        stderr(f"build-check: {len(database.never_built)} unit(s) that {database.label} never built: "
                "the build cannot say whether they read the changed headers; not checked (build them once to check them)")


@click.command("validate-build")
@click.argument("build_dir", type=click.Path(file_okay=False))
@click.argument("files", nargs=-1, type=click.Path())
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, help="Compiler processes [default: CPU count].")
@click.option("--full-compile", is_flag=True, help=FULL_COMPILE_HELP)
def validate_build(build_dir, files, jobs, full_compile) -> None:
    """Recompile, with BUILD_DIR's compile_commands.json, every unit that FILES touch
    (default: the files git sees changed in the checkout at the current directory).
    What changed in each file is read against git's HEAD.

    Exit 0 when all of them compile, 1 when some do not."""
    from kvmlint.source.discover import find_root
    from kvmlint.git.worktree import changed_files, uncommitted_changes, untracked
    from kvmlint.validation.compile_database import CompileDatabase
    from kvmlint.validation.compile_runner import FrontEndChooser, compile_units

    for name in files:
        if not Path(name).exists():
            raise UsageError(f"{name}: no such file or directory")
    changed = [Path(name).resolve() for name in files]
    root = find_root(Path(os.path.commonpath(changed)) if changed else Path.cwd().resolve())
    database = CompileDatabase([Path(build_dir)], root)
    changed, new = (changed, untracked(root, changed)) if changed else changed_files(root)
    front_end = None if full_compile else FrontEndChooser(database, changed, uncommitted_changes(root, changed))
    compiled = compile_units(database.each_affected(changed, new), jobs or os.cpu_count() or 1, database.confines,
                             front_end)
    report_database_warnings(database)
    for failure in compiled.failures:
        echo(f"{'cannot check' if failure.refused else 'does not compile'}: {failure.format(root)}", lines=True)
    report_never_built(database)
    refused = f", {compiled.refused} not run (kvmlint will not run their commands)" if compiled.refused else ""
    out(f"{compiled.units} unit(s) compiled{front_end_note(compiled.front_end_only)} in {compiled.seconds:.1f}s "
               f"for {len(changed)} changed file(s), {len(compiled.failures) - compiled.refused} failed{refused}")
    sys.exit(EXIT_FINDINGS if compiled.failures else 0)
