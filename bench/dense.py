#!/usr/bin/env python3
"""Time and memory of `kvmlint check` on KVM-dense generated C, at growing sizes.

Usage: python bench/dense.py [--case nested|facts|all] [--scales 1,2,4] [--jobs N] [--work DIR]

Cases (generated into a copy of the qemu-current fixture tree, in common code):
  nested  one function with 5,000 x SCALE nested `if (kvm_irqchip_in_kernel()) {` blocks and
          one with 1,250 x SCALE guarded proxy uses: a finding per use, each validated
          against the model
  facts   16 files with 1,000 x SCALE functions each, every one with a few KVM calls, a
          guarded proxy use and a KVM_CAP_* test: many facts per byte (about 4 MB per scale)

For each size it prints the input size, the findings, CPU seconds (kvmlint and its parser
workers, from the kernel's accounting), peak RSS of the largest process, and the CPU seconds
per unit of scale: time is linear in input size when that last column stays flat.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "qemu-snippets" / "qemu-current"


def nested(tree: Path, scale: int) -> None:
    depth, uses = 5_000 * scale, 1_250 * scale
    (tree / "hw" / "kvm-deep.c").write_text(
        "void deep(void) " + "{ if (kvm_irqchip_in_kernel()) " * depth + ";" + "}" * depth + "\n")
    body = "".join(f"    if (kvm_irqchip_in_kernel()) {{ kvm_irqchip_add_irqfd(s, {n}); }}\n" for n in range(uses))
    (tree / "hw" / "many.c").write_text(f"void many(void *s)\n{{\n{body}}}\n")


def facts(tree: Path, scale: int) -> None:
    folder = tree / "hw" / "dense"
    folder.mkdir()
    (tree / "hw" / "meson.build").open("a").write("subdir('dense')\n")
    sources = []
    for file in range(16):
        functions = "".join(
            f"static int dense_{file}_{n}(KVMState *s, int irq)\n{{\n"
            f"    if (kvm_irqchip_in_kernel() && kvm_check_extension(s, KVM_CAP_IRQFD)) {{\n"
            f"        kvm_irqchip_add_irqfd_notifier_gsi(s, NULL, NULL, irq + {n});\n"
            f"        msix_set_vector_notifiers(NULL, NULL, NULL, NULL);\n    }}\n"
            f"    kvm_set_irq(s, irq, {n} & 1);\n    return kvm_vm_ioctl(s, KVM_IRQ_LINE, irq);\n}}\n\n"
            for n in range(1_000 * scale)
        )
        name = f"dense{file}.c"
        (folder / name).write_text(f'#include "qemu/osdep.h"\n#include "system/kvm.h"\n\n{functions}')
        sources.append(f"'{name}'")
    (folder / "meson.build").write_text(f"system_ss.add(files({', '.join(sources)}))\n")


CASES = {"nested": nested, "facts": facts}


def measure(tree: Path, jobs: int) -> tuple[int, float, float, float]:
    """(findings, wall s, CPU s, peak RSS MiB) of one cold check."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "kvmlint", "check", "--no-cache", "--format", "json", "-j", str(jobs), "."],
        cwd=tree, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    # wait4's usage covers the process and the workers it waited for; ru_maxrss is the largest one.
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"kvmlint failed with status {os.waitstatus_to_exitcode(status)} in {tree}")
    return len(json.loads(output)["findings"]), wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=[*CASES, "all"], default="all")
    parser.add_argument("--scales", default="1,2,4", help="comma-separated sizes [1,2,4]")
    parser.add_argument("--jobs", type=int, default=1, help="kvmlint -j [1]")
    parser.add_argument("--work", type=Path, default=None, help="where the trees are generated [a temp folder]")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="kvmlint-dense-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"{'case':8} {'scale':>5} {'MB':>6} {'findings':>8} {'wall s':>7} {'CPU s':>7} {'MiB':>6} {'CPU s/scale':>11}")
    for case in CASES if args.case == "all" else [args.case]:
        for scale in (int(text) for text in args.scales.split(",")):
            tree = work / f"{case}-{scale}"
            shutil.rmtree(tree, ignore_errors=True)
            shutil.copytree(FIXTURE, tree)
            CASES[case](tree, scale)
            size = sum(path.stat().st_size for path in tree.rglob("*") if path.is_file()) / 1e6
            findings, wall, cpu, peak = measure(tree, args.jobs)
            print(f"{case:8} {scale:>5} {size:>6.1f} {findings:>8} {wall:>7.1f} {cpu:>7.1f} {peak:>6.0f} {cpu / scale:>11.2f}",
                  flush=True)
            shutil.rmtree(tree)
    if args.work is None:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
