"""The common KVM layer of a tree: the KVM header, the KVM core source and its stubs.

Found from the code, whatever the release calls or puts them: the header is the
file that defines or declares `kvm_irqchip_in_kernel()` (kvm.h in 2012,
include/sysemu/kvm.h, include/system/kvm.h later); the core source is the
common-code C file that defines most of the functions the header declares, and
the stub files are the other common-code C files that define several of them
(the no-KVM versions).  A device file with `kvm` in its name (an in-kernel
interrupt controller's glue) defines none of them, so it is not part of it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from kvmlint.source.facts import FileFacts

# The entry point whose definition marks the KVM header.
HEADER_MARKER = "kvm_irqchip_in_kernel"
# A common C file that defines at least this many of the header's functions
# is a stub file (besides the core, which defines the most).
MIN_STUB_DEFINITIONS = 2


def find_kvm_layer(
    facts: Iterable[FileFacts], is_common: Callable[[str], bool], extra_headers: Iterable[FileFacts] = ()
) -> frozenset[str]:
    """Paths of the KVM header(s), core source and stub files among `facts`.

    `extra_headers` are header facts read outside the checked files (a
    pre-commit run on a few files still needs the header to know the API)."""
    files = list(facts)
    headers = [
        f for f in [*files, *extra_headers]
        if not f.path.endswith(".c") and any(d.name == HEADER_MARKER for d in f.definitions)
    ]
    api = {d.name for header in headers for d in header.definitions if d.kind in ("prototype", "function", "macro")}
    counts: Counter[str] = Counter()
    for file_facts in files:
        if not file_facts.path.endswith(".c"):
            continue
        defined = {
            d.name for d in file_facts.definitions
            if d.kind == "function" and "static" not in d.storage and d.name in api
        }
        if defined and is_common(file_facts.path):
            counts[file_facts.path] = len(defined)
    sources = {path for path, count in counts.items() if count >= MIN_STUB_DEFINITIONS}
    if counts:
        sources.add(counts.most_common(1)[0][0])  # the core, even in a tree cut down to it
    return frozenset({f.path for f in headers if f.path in {g.path for g in files}} | sources)
