#!/usr/bin/env python3
"""Time the build-file readers on long and deep build files: the time must grow linearly.

Usage: python bench/bench_buildfiles.py [--sizes 2000,4000,8000] [--shape NAME]

Each shape is a fixture tree (fixtures/qemu-snippets) with one construct of
size N added to its build files:

  kconfig &&        a `depends on` of N `&&` terms, each a symbol with `default y`
  kconfig chain     N symbols, each depending on the next, and one depending on all
  make land         `obj-$(call land,...) += x.o` with N operands
  make chain        N object lists, each pulled into the next
  meson chain       N source sets, each added to the next with add_all()
  meson if          N nested `if` blocks around a source-set addition (bounded: warned)

For each shape the bench prints the CPU seconds of reading the tree's build
files and deciding one file's scope (kvmlint.scope.ScopeResolver) per size,
and the ratio of the largest size's time to the smallest's: about the ratio of
the sizes when linear, its square when quadratic.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from kvmlint.scope import ScopeResolver  # noqa: E402

FIXTURES = REPOSITORY / "fixtures" / "qemu-snippets"


def _append(path: Path, text: str) -> None:
    with open(path, "a") as stream:
        stream.write(text)


def _built_when_all_of_them(tree: Path) -> str:
    _append(tree / "hw/meson.build", "system_ss.add(when: 'CONFIG_ALL_OF_THEM', if_true: files('long.c'))\n")
    return "hw/long.c"


def kconfig_and(tree: Path, size: int) -> str:
    symbols = [f"LONG{n}" for n in range(size)]
    _append(tree / "hw/Kconfig", "".join(f"config {s}\n    bool\n    default y\n" for s in symbols)
            + "config ALL_OF_THEM\n    bool\n    default y\n    depends on " + " && ".join(symbols) + "\n")
    return _built_when_all_of_them(tree)


def kconfig_chain(tree: Path, size: int) -> str:
    # Declared from the end of the chain, so each link turns on in its own round.
    _append(tree / "hw/Kconfig", "config ALL_OF_THEM\n    bool\n    default y\n    depends on "
            + " && ".join(f"LINK{n}" for n in range(size)) + "\n"
            + "".join(f"config LINK{n}\n    bool\n    default y\n    depends on LINK{n - 1}\n"
                      for n in range(size - 1, 0, -1))
            + "config LINK0\n    bool\n    default y\n")
    return _built_when_all_of_them(tree)


def make_land(tree: Path, size: int) -> str:
    operands = ",".join(f"$(CONFIG_OPERAND{n})" for n in range(size))
    _append(tree / "hw/Makefile.objs", f"hw-obj-$(call land,{operands}) += long.o\n")
    return "hw/long.c"


def make_chain(tree: Path, size: int) -> str:
    _append(tree / "Makefile.objs", "".join(f"link{n}-y += $(link{n + 1}-y)\n" for n in range(size))
            + f"link{size}-y += long.o\ncommon-obj-y += $(link0-y)\n")
    return "long.c"


def meson_chain(tree: Path, size: int) -> str:
    _append(tree / "hw/meson.build", "".join(f"link{n}_ss = ss.source_set()\n" for n in range(size + 1))
            + "".join(f"link{n}_ss.add_all(link{n + 1}_ss)\n" for n in range(size))
            + f"link{size}_ss.add(files('long.c'))\nsystem_ss.add_all(link0_ss)\n")
    return "hw/long.c"


def meson_if(tree: Path, size: int) -> str:
    _append(tree / "hw/meson.build", "if config_all_devices.has_key('CONFIG_DEEP')\n" * size
            + "system_ss.add(files('long.c'))\n" + "endif\n" * size)
    return "hw/long.c"


SHAPES: dict[str, tuple[str, Callable[[Path, int], str]]] = {
    "kconfig &&": ("qemu-current", kconfig_and),
    "kconfig chain": ("qemu-current", kconfig_chain),
    "make land": ("qemu-2012", make_land),
    "make chain": ("qemu-2012", make_chain),
    "meson chain": ("qemu-current", meson_chain),
    "meson if": ("qemu-current", meson_if),
}


def seconds_to_scope(fixture: str, shape: Callable[[Path, int], str], size: int) -> float:
    with tempfile.TemporaryDirectory(prefix="kvmlint-bench-buildfiles-") as scratch:
        tree = Path(scratch) / "tree"
        shutil.copytree(FIXTURES / fixture, tree)
        path = shape(tree, size)
        started = time.process_time()
        ScopeResolver(tree).scope_of(path)
        return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2000,4000,8000")
    parser.add_argument("--shape", choices=sorted(SHAPES), action="append", help="only this shape (repeatable)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"{'shape':<15}" + "".join(f"{size:>10}" for size in sizes) + f"   ratio (sizes: {sizes[-1] / sizes[0]:.0f}x)")
    for name in args.shape or SHAPES:
        fixture, shape = SHAPES[name]
        seconds = [seconds_to_scope(fixture, shape, size) for size in sizes]
        print(f"{name:<15}" + "".join(f"{s:>9.2f}s" for s in seconds) + f"   {seconds[-1] / max(seconds[0], 1e-3):.1f}x",
              flush=True)


if __name__ == "__main__":
    main()
