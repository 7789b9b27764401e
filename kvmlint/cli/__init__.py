"""Command line: `kvmlint check|fix|validate-build|scope|explain|rules|validate|model`, one module per command.

Exit status: 0 no findings, 1 findings, 2 usage error or unusable input.
A command parses its options, runs the stages through the driver
(`kvmlint.analysis`) and prints; it imports what it runs inside the command,
so that starting kvmlint loads no parser.
"""

from kvmlint.cli.main import cli, main

__all__ = ["cli", "main"]
