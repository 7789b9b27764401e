"""kvmlint: a linter and code-mod tool for QEMU's KVM layer."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kvmlint")
except PackageNotFoundError:  # running from a source checkout
    __version__ = "0.1.0"
