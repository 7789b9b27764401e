"""Stage 3, index: what the facts of all files say together.

Takes every file's facts (and the scope of a file, where it matters); hands
on the cross-file `Index` of KVM symbols (definitions, callers, flag
assignments), the common KVM layer found from the code (`kvm_layer.py`), and
for a tree-wide rename every spelling of a name in the tree (`renaming.py`).
"""

from kvmlint.index.kvm_layer import find_kvm_layer
from kvmlint.index.symbols import Index, Located

__all__ = ["Index", "Located", "find_kvm_layer"]
