"""Architecture scope of QEMU files: common code, or which architectures' code.

Derived from paths and build files of either era of QEMU's layout (see
resolver.py); nothing here knows real QEMU file names.
"""

from .families import ARCH_FAMILIES, arch_family
from .resolver import Scope, ScopeResolver

__all__ = ["ARCH_FAMILIES", "Scope", "ScopeResolver", "arch_family"]
