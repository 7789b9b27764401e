"""kvmlint: a linter and code-mod tool for QEMU's KVM layer."""

# The one place the version is written: pyproject.toml reads it from here, and
# no import of importlib.metadata (25 ms, a third of the hook's start-up) is needed.
__version__ = "0.1.0"
