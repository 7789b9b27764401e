#!/usr/bin/env python3
"""Fuzz kvmlint with mutated fixture trees: it must never crash, hang or run away.

Usage: python bench/fuzz.py [--seconds N] [--cases N] [--seed S] [--keep DIR] [--mutation NAME]

Each case copies one of the hand-written fixture trees, applies a few random
mutations (bytes flipped, inserted or cut; invalid UTF-8 and NUL bytes; CRLF;
deep `#if`, bracket and `+` nesting; very long lines; non-UTF-8 file names;
FIFOs, device symlinks and symlinked-folder loops, also named by build files;
deep and long build-file constructs: Kconfig expressions and chains, `land`/`lor`
calls, list chains, `ifdef` and meson `if` nesting, device-config include ladders;
broken configuration), then runs `kvmlint check` (random format and -j),
`kvmlint scope` or `kvmlint fix --diff` on it under CPU-time and memory
rlimits and a timeout.  A case passes when kvmlint exits 0, 1 or 2, with no
signal, no hang, no traceback and no "internal error".  Failing trees are kept
in --keep DIR (default: a temporary directory, named at the end) with the
command and output.  The exit status is 1 when any case failed.

`tests/cli/test_fuzz.py` runs a few seconds of it; run it for minutes by hand.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "qemu-snippets"
TREES = ("qemu-2012", "qemu-current", "qemu-functional")
CPU_SECONDS = 60
MEMORY_MB = 2048
TIMEOUT_SECONDS = 180
TEXT_SUFFIXES = (".c", ".h", ".py", ".mak", ".objs", ".build", ".target", ".toml") + ("Kconfig",)


def _text_files(tree: Path) -> list[Path]:
    return sorted(
        path for path in tree.rglob("*")
        if path.is_file() and not path.is_symlink() and path.name.endswith(TEXT_SUFFIXES)
    )


def _folders(tree: Path) -> list[Path]:
    return [tree] + sorted(path for path in tree.rglob("*") if path.is_dir() and not path.is_symlink())


# --- mutations: each takes (rng, tree) and returns a one-line description ---------------------------


def flip_bytes(rng: random.Random, tree: Path) -> str:
    path = rng.choice(_text_files(tree))
    data = bytearray(path.read_bytes())
    for _ in range(rng.randint(1, 20)):
        if data:
            data[rng.randrange(len(data))] = rng.randrange(256)
    path.write_bytes(bytes(data))
    return f"flipped bytes in {path.relative_to(tree)}"


def insert_bytes(rng: random.Random, tree: Path) -> str:
    path = rng.choice(_text_files(tree))
    data = path.read_bytes()
    chunk = rng.choice([b"\xff\xfe", b"\x00", b"\xc3(", b"\xef\xbb\xbf", b'"\xff kernel_irqchip=\xfe"',
                        b"/* kvmlint: ignore[", b"\\\n", b"#if\n", b"#endif\n", b"{", b"}", b"(", b")",
                        b"'''", b"\r", b"kvm_irqchip_in_kernel()"])
    at = rng.randint(0, len(data))
    path.write_bytes(data[:at] + chunk * rng.randint(1, 50) + data[at:])
    return f"inserted {chunk!r} in {path.relative_to(tree)}"


def cut_bytes(rng: random.Random, tree: Path) -> str:
    path = rng.choice(_text_files(tree))
    data = path.read_bytes()
    start = rng.randint(0, len(data))
    end = min(len(data), start + rng.randint(1, 400))
    path.write_bytes(data[:start] + data[end:])
    return f"cut bytes {start}-{end} of {path.relative_to(tree)}"


def crlf(rng: random.Random, tree: Path) -> str:
    path = rng.choice(_text_files(tree))
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    return f"CRLF line ends in {path.relative_to(tree)}"


def latin1(rng: random.Random, tree: Path) -> str:
    path = rng.choice(_text_files(tree))
    path.write_bytes(path.read_bytes().replace(b"e", b"\xe9", rng.randint(1, 30)))
    return f"latin-1 bytes in {path.relative_to(tree)}"


def deep_nesting(rng: random.Random, tree: Path) -> str:
    depth = rng.choice([300, 1_000, 5_000, 20_000])
    kind = rng.choice(["ifdef", "parens", "braces", "macro", "python", "else-if"])
    body = {
        "ifdef": "".join(f"#ifdef C{n}\n" for n in range(depth)) + "int x = kvm_irqchip_in_kernel();\n" + "#endif\n" * depth,
        "parens": "int f(void) { return " + "(" * depth + "kvm_irqchip_in_kernel()" + ")" * depth + "; }\n",
        "braces": "void f(void) " + "{ if (kvm_irqchip_in_kernel()) " * depth + ";" + "}" * depth + "\n",
        "macro": "#define M " + "kvm_f(" * depth + "1" + ")" * depth + "\n",
        "python": "def t():\n    a = " + " + ".join("'kernel_irqchip=on'" for _ in range(min(depth, 3_000))) + "\n",
        "else-if": "void f(void) {\n" + "".join(f"    else if (kvm_irqchip_in_kernel() == {n}) {{}}\n" for n in range(depth)) + "}\n",
    }[kind]
    folder = rng.choice(_folders(tree))
    name = "deep.py" if kind == "python" else "kvm-deep.c"
    (folder / name).write_text(body)
    return f"{kind} nested {depth} deep in {(folder / name).relative_to(tree)}"


def long_line(rng: random.Random, tree: Path) -> str:
    path = rng.choice(_text_files(tree))
    filler = rng.choice([b"/", b"*", b"kvmlint: ignore ", b"$(A)", b"kvm_x ", b"'", b" "])
    with open(path, "ab") as stream:
        stream.write(b"\n" + filler * (200_000 // len(filler)) + b"\n")
    return f"long line of {filler!r} in {path.relative_to(tree)}"


def many_uses(rng: random.Random, tree: Path) -> str:
    count = rng.choice([500, 2_000, 5_000])
    uses = "".join(f"    if (kvm_irqchip_in_kernel()) {{ kvm_irqchip_add_irqfd(s, {n}); }}\n" for n in range(count))
    folder = rng.choice(_folders(tree))
    (folder / "many.c").write_text(f"void many(void *s)\n{{\n{uses}}}\n")
    return f"{count} proxy uses in {(folder / 'many.c').relative_to(tree)}"


def bad_file_name(rng: random.Random, tree: Path) -> str:
    folder = rng.choice(_folders(tree))
    name = os.fsdecode(rng.choice([b"kvm\xff.c", b"a\xe9b.h", b"x\nnewline.c", b"sp ace,comma:.c"]))
    (folder / name).write_text("int g(void) { return kvm_irqchip_in_kernel(); }\n")
    return f"file name {name!r} in {folder.relative_to(tree)}"


def special_file(rng: random.Random, tree: Path) -> str:
    folder = rng.choice(_folders(tree))
    name = rng.choice(["fifo.c", "zero.c", "null.h", "meson.build", "Kconfig", "Makefile.objs", "kvmlint.toml"])
    target = folder / name
    if target.exists() or target.is_symlink():
        target.unlink()
    kind = rng.choice(["fifo", "zero", "random", "loop"])
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "loop":
        target.symlink_to(name)  # a symlink to itself
    else:
        target.symlink_to(f"/dev/{kind}")
    return f"{kind} as {target.relative_to(tree)}"


def folder_loop(rng: random.Random, tree: Path) -> str:
    folder = rng.choice(_folders(tree))
    names = [f"loop{n}" for n in range(rng.randint(1, 3))]
    for name in names:
        if not (folder / name).exists():
            (folder / name).symlink_to(".")
    lines = {
        "Kconfig": "".join(f"source {name}/Kconfig\n" for name in names),
        "meson.build": "".join(f"subdir('{name}')\n" for name in names),
        "Makefile.objs": "obj-y += " + " ".join(f"{name}/" for name in names) + "\n",
    }
    build_file = rng.choice(sorted(lines))
    with open(folder / build_file, "a") as stream:
        stream.write(lines[build_file])
    return f"symlinked-folder loop {names} named by {(folder / build_file).relative_to(tree)}"


def build_file_names_special(rng: random.Random, tree: Path) -> str:
    line, build_file = rng.choice([
        ("include /dev/zero\n", "default-configs/pci.mak"),
        ("include /dev/stdin\n", "default-configs/pci.mak"),
        ("include pci.mak\n", "default-configs/pci.mak"),  # includes itself
        ("source /dev/zero\n", "Kconfig"),
        ("source Kconfig\n", "Kconfig"),
        ("subdir('/dev')\n", "meson.build"),
        ("obj-y += $(A)$(B)$(C)$(D)$(E)$(F)$(G)$(H)x.o $(A)a$(B)b$(C)c$(D)d.o\n", "Makefile.objs"),
        ("obj-y += /dev/ ../../ /\n", "Makefile.objs"),
    ])
    path = tree / build_file
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as stream:
        stream.write(line)
    return f"{line.strip()!r} in {build_file}"


def _build_file_shapes(size: int) -> dict[str, tuple[str, str]]:
    """Deep or long constructs, each with the name of the build file it goes into."""
    names = [f"FUZZ{n}" for n in range(size)]
    return {
        "kconfig &&": ("Kconfig", "config FUZZ\n    bool\n    default y\n    depends on " + " && ".join(names) + "\n"),
        "kconfig ||": ("Kconfig", "config FUZZ\n    bool\n    default y if " + " || ".join(names) + "\n"),
        "kconfig ()": ("Kconfig", "config FUZZ\n    bool\n    depends on " + "(" * size + "A" + ")" * size + "\n"),
        "kconfig !": ("Kconfig", "config FUZZ\n    bool\n    select KVM if " + "!" * size + "A\n"),
        "kconfig chain": ("Kconfig", "".join(f"config FUZZ{n}\n    bool\n    default y\n    depends on FUZZ{n + 1}\n"
                                             f"    select FUZZ{(n + size // 2) % size}\n" for n in range(size))),
        "make land": ("Makefile.objs", "obj-$(call land," + ",".join(f"$(CONFIG_{n})" for n in names) + ") += f.o\n"),
        "make lor": ("Makefile.objs", "obj-$(call lor," + ",".join(f"$(CONFIG_{n})" for n in names) + ") += f.o\n"),
        "make nested calls": ("Makefile.objs", "obj-" + "$(call lnot,$(call lor," * size + "$(CONFIG_A)"
                              + ",$(CONFIG_B)))" * size + " += f.o\n"),
        "make nested if": ("Makefile.objs", "obj-" + "$(if $(filter y," * size + "y" + "),y)" * size + " += f.o\n"),
        "make list chain": ("Makefile.objs", "".join(f"fuzz{n}-y += $(fuzz{n + 1}-y) $(fuzz{n // 2}-y) f{n}.o\n"
                                                     for n in range(size)) + "obj-y += $(fuzz0-y)\n"),
        "make self reference": ("Makefile.objs", "fuzz-y = $(fuzz-y) f.o\nobj-$(fuzz-y) += $(fuzz-y)\n"),
        "make ifdefs": ("Makefile.objs", "ifdef CONFIG_KVM\n" * size + "obj-y += f.o\n" + "else\nendif\n" * size),
        "meson ifs": ("meson.build", "if config_all_devices.has_key('CONFIG_KVM')\n" * size
                      + "system_ss.add(files('f.c'))\n" + "endif\n" * size),
        "meson foreach": ("meson.build", "foreach x : y\n" * size + "specific_ss.add(files('f.c'))\n"
                          + "endforeach\n" * size),
        "meson set chain": ("meson.build", "".join(f"fuzz{n}_ss.add_all(when: 'CONFIG_F{n}', if_true: fuzz{n + 1}_ss)\n"
                                                   for n in range(size)) + "specific_ss.add_all(fuzz0_ss)\n"),
        "meson brackets": ("meson.build", "x_ss.add(" + "[" * size + "files('f.c')" + "]" * size + ")\n"),
        "device config ladder": ("*.mak", "include FUZZ0.mak\n"),
    }


def long_build_file(rng: random.Random, tree: Path) -> str:
    """A deep or long construct appended to one of the tree's build files of its kind (a new
    one at the top if the tree has none: the tree's era may not read it)."""
    size = rng.choice([100, 1_000, 10_000])
    shapes = _build_file_shapes(size)
    found = {name: sorted(path for path in tree.rglob(name) if path.is_file() and not path.is_symlink())
             for name in {name for name, _ in shapes.values()}}
    kind = rng.choice(sorted(kind for kind, (name, _) in shapes.items() if found[name]) or sorted(shapes))
    name, text = shapes[kind]
    path = rng.choice(found[name]) if found[name] else tree / name.replace("*", "default")
    if kind == "device config ladder":  # each includes the next two: 2**32 readings if each were read again
        for n in range(40):
            (path.parent / f"FUZZ{n}.mak").write_text(f"include FUZZ{n + 1}.mak\ninclude FUZZ{n + 2}.mak\n")
    with open(path, "a") as stream:
        stream.write(text)
    return f"{kind} of {size} in {path.relative_to(tree)}"


def broken_config(rng: random.Random, tree: Path) -> str:
    text = rng.choice([
        "select = [", "jobs = 300\n", "jobs = -1\n", "tool = 5\n", "select = " + "[" * 3000 + "]" * 3000 + "\n",
        'output-file = "../escape.txt"\n', "era = 1999\n", "\xff\xfe",
        '[per-file-ignores]\n"*" = [1, 2]\n', "[tool]\nkvmlint = 5\n", 'exclude = ["**/*"]\n',
    ])
    name = "pyproject.toml" if "tool" in text else "kvmlint.toml"
    (tree / name).write_text(text + ("  # kvmlint\n" if name == "pyproject.toml" else ""), errors="surrogateescape")
    return f"{name}: {text[:40]!r}"


MUTATIONS = (
    flip_bytes, insert_bytes, cut_bytes, crlf, latin1, deep_nesting, long_line, many_uses, bad_file_name,
    special_file, folder_loop, build_file_names_special, long_build_file, broken_config,
)


def _command(rng: random.Random) -> list[str]:
    choice = rng.random()
    if choice < 0.7:
        command = ["check", "--format", rng.choice(["text", "json", "sarif", "gitlab", "github"]), "-j", rng.choice(["1", "2"])]
        command += rng.choice([[], ["--strict"], ["--show-suppressed"], ["--statistics"], ["--verbose"]])
        return command + ["."]
    if choice < 0.85:
        return ["scope", "."]
    return ["fix", "--diff", "."]


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    memory = MEMORY_MB * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))


def run_case(rng: random.Random, workspace: Path, mutations: tuple = MUTATIONS) -> tuple[bool, str]:
    """One mutated tree, one kvmlint run: (passed, description)."""
    tree = workspace / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(FIXTURES / rng.choice(TREES), tree, symlinks=True)
    done = [mutation(rng, tree) for mutation in rng.sample(mutations, rng.randint(1, min(3, len(mutations))))]
    command = _command(rng)
    description = f"kvmlint {' '.join(command)} after: " + "; ".join(done)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "kvmlint", *command], cwd=tree, capture_output=True,
            timeout=TIMEOUT_SECONDS, preexec_fn=_limit, stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return False, f"HANG ({TIMEOUT_SECONDS} s): {description}"
    stderr = result.stderr.decode("utf-8", "replace")
    if result.returncode < 0:
        return False, f"SIGNAL {-result.returncode}: {description}\n{stderr[-1500:]}"
    if result.returncode not in (0, 1, 2):
        return False, f"EXIT {result.returncode}: {description}\n{stderr[-1500:]}"
    if "Traceback" in stderr or "internal error" in stderr:
        return False, f"INTERNAL ERROR: {description}\n{stderr[-1500:]}"
    return True, description


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300, help="how long to fuzz [300]")
    parser.add_argument("--cases", type=int, default=None, help="stop after this many cases (a replayable run)")
    parser.add_argument("--seed", type=int, default=None, help="random seed [time-based]; printed for replay")
    parser.add_argument("--keep", type=Path, default=None, help="where failing trees are kept")
    parser.add_argument("--verbose", action="store_true", help="print every case")
    parser.add_argument("--mutation", action="append", choices=[m.__name__ for m in MUTATIONS],
                        help="only this mutation (repeatable)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else int(time.time())
    keep = args.keep or Path(tempfile.mkdtemp(prefix="kvmlint-fuzz-failures-"))
    mutations = tuple(m for m in MUTATIONS if m.__name__ in args.mutation) if args.mutation else MUTATIONS
    print(f"seed {seed}", flush=True)
    deadline = time.monotonic() + args.seconds
    cases = failures = 0
    with tempfile.TemporaryDirectory(prefix="kvmlint-fuzz-") as scratch:
        while cases == 0 or (time.monotonic() < deadline and (args.cases is None or cases < args.cases)):
            rng = random.Random(f"{seed}-{cases}")  # each case replays alone from (seed, number)
            workspace = Path(scratch) / "case"
            workspace.mkdir(exist_ok=True)
            passed, description = run_case(rng, workspace, mutations)
            cases += 1
            if args.verbose or not passed:
                print(f"case {cases - 1}: {'ok' if passed else 'FAIL'}: {description}", flush=True)
            if not passed:
                failures += 1
                kept = keep / f"case-{seed}-{cases - 1}"
                try:
                    shutil.copytree(workspace / "tree", kept, symlinks=True)
                except shutil.Error:
                    pass  # FIFOs and the like are not copied; the description names them
                (kept.parent / f"{kept.name}.txt").write_text(description + "\n")
            shutil.rmtree(workspace, ignore_errors=True)
    print(f"{cases} cases, {failures} failed" + (f"; failing trees in {keep}" if failures else ""))
    if not failures and args.keep is None:
        shutil.rmtree(keep, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
