"""Errors that end a run with exit status 2 and a one-line message."""


class UsageError(Exception):
    """Bad command line or unusable input: reported as `kvmlint: <message>`, exit 2."""


class FixError(Exception):
    """A code-mod cannot build its change safely; the finding stays unfixed, with this reason."""
