"""The `kvmlint` command group and its entry point: every command's module, and one line for any error."""

from __future__ import annotations

import os
import sys

import click

from kvmlint import __version__
from kvmlint.cli import check, explain, fix, model, scope, validate, validate_build
from kvmlint.cli.output import EXIT_FINDINGS, EXIT_USAGE, click_output, require_standard_streams, stderr
from kvmlint.errors import UsageError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kvmlint")
def cli() -> None:
    """Lint and fix QEMU's KVM layer: proxy uses of kvm_irqchip_in_kernel() in
    common code, and architecture-specific helpers in common KVM files."""


for command in (check.check, fix.fix, validate_build.validate_build, scope.scope, explain.explain, explain.list_rules,
                validate.validate, model.model):
    cli.add_command(command)


def main() -> None:
    try:
        _run()
    except UsageError as error:
        stderr(str(error))
        sys.exit(EXIT_USAGE)
    except click.exceptions.Abort:
        stderr("aborted")
        sys.exit(EXIT_USAGE)
    except click.ClickException as error:  # one line, like every other bad input
        stderr(error.format_message())
        sys.exit(EXIT_USAGE)
    except BrokenPipeError:
        sys.exit(EXIT_FINDINGS)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:  # never a traceback for the user; KVMLINT_DEBUG=1 shows it
        if os.environ.get("KVMLINT_DEBUG"):
            raise
        stderr(f"internal error: {type(error).__name__}: {error} (set KVMLINT_DEBUG=1 for details)")
        sys.exit(EXIT_USAGE)


def _run() -> None:
    require_standard_streams()
    with click_output():
        cli.main(prog_name="kvmlint", standalone_mode=False)
