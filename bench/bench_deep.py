#!/usr/bin/env python3
"""Time the C extractor on deep and wide syntax trees: the time must grow linearly.

Usage: python bench/bench_deep.py [--sizes 50000,100000,200000,400000]

Each shape is a small file with a proxy use and one construct repeated N
times: a line of `*` after the code (a syntax-error node with N children),
N nested parentheses around the use, N `*` before it, N nested `!`.  For each
shape the bench prints the CPU seconds of `kvmlint.source.extract.extract` per size
and the ratio of the largest size's time to the smallest's: about the ratio
of the sizes when linear, its square when quadratic.
"""

from __future__ import annotations

import argparse
import time

from kvmlint.source.extract import extract

PROXY = b"kvm_irqchip_in_kernel()"
PROLOGUE = (
    b'static const char *option = "kernel_irqchip=split";\n'
    b"void init(KVMState *s) { s->irqfds = kvm_check_extension(s, KVM_CAP_IRQFD); }\n"
)


def shapes(size: int) -> dict[str, bytes]:
    return {
        "line of * after the code": PROLOGUE + b"int f(void) { return " + PROXY + b"; }\n" + b"*" * size + b"\n",
        "nested parentheses": b"int f(void) { return " + b"(" * size + PROXY + b")" * size + b"; }\n",
        "* before the use": PROLOGUE + b"int f(void) { return " + b"*" * size + PROXY + b"; }\n",
        "nested !": b"int f(void) { return " + b"!" * size + PROXY + b"; }\n",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="50000,100000,200000,400000")
    sizes = [int(size) for size in parser.parse_args().sizes.split(",")]
    print(f"{'shape':<26}" + "".join(f"{size:>10}" for size in sizes) + "   ratio (sizes: " f"{sizes[-1] / sizes[0]:.0f}x)")
    for name in shapes(1):
        seconds = []
        for size in sizes:
            data = shapes(size)[name]
            started = time.process_time()
            facts = extract("deep.c", data)
            seconds.append(time.process_time() - started)
            assert any(reference.symbol == PROXY[:-2].decode() for reference in facts.references), name
        print(f"{name:<26}" + "".join(f"{s:>9.2f}s" for s in seconds) + f"   {seconds[-1] / max(seconds[0], 1e-3):.1f}x")


if __name__ == "__main__":
    main()
