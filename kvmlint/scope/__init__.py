"""Stage 2, scope: for each file, common code or which architectures' code.

Takes the checkout's root and its file list from the source stage; hands on
a `Scope` per file, derived from paths and the build files of each of QEMU's
layouts (make + default-configs, make + Kconfig, meson + Kconfig; see
resolver.py), kept in the scope cache (`cache.py`).  Nothing here knows real
QEMU file names.
"""

from .families import ARCH_FAMILIES, arch_family
from .resolver import Scope, ScopeResolver

__all__ = ["ARCH_FAMILIES", "Scope", "ScopeResolver", "arch_family"]
