"""The build's dependency records: ninja's log (`.ninja_deps`, or `ninja -t deps`) and make's `.d` files."""

from __future__ import annotations

import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kvmlint.files import UnreadableFile
from kvmlint.validation.compile_command import read_build_file
from kvmlint.validation.running import run_bounded

NINJA_DEPS_LOG = ".ninja_deps"
# Bounds on what the build directory holds (a full QEMU build's database is about 100 MiB) and on
# the programs run: a compiler that reads a FIFO, or a ninja that does, would wait forever.
NINJA_DEPS_MAX_BYTES = 256 * 1024 * 1024
NINJA_DEPS_TEXT_MAX_BYTES = 1024 * 1024 * 1024
DEPFILE_MAX_BYTES = 8 * 1024 * 1024
NINJA_TIMEOUT_SECONDS = 120.0


def resolve_path(directory: Path, name: str) -> Path:
    return Path(os.path.normpath(os.path.join(directory, name)))


def read_ninja_deps(build_dir: Path, warnings: list[str]) -> dict[Path, frozenset[Path]]:
    """Every object's dependencies as ninja recorded them, or nothing for a build that ninja
    does not drive (or never ran): read from ninja's log directly when its format is one we know
    (several times faster than parsing the tool's text for a two-target QEMU), else from
    `ninja -n -t deps` (a dry run: ninja then never compacts its logs), bounded in time and size.
    A log kvmlint cannot read is a warning: the include graph stands in for it."""
    if not os.path.lexists(build_dir / "build.ninja"):
        return {}
    log = build_dir / NINJA_DEPS_LOG
    try:
        recorded = parse_ninja_deps_log(read_build_file(log, NINJA_DEPS_MAX_BYTES), build_dir)
    except FileNotFoundError:
        return {}
    except (OSError, UnreadableFile) as why:
        warnings.append(f"{log}: {why}; the include graph says which units read a changed header")
        return {}
    if recorded is not None:
        return recorded
    ninja = shutil.which("ninja")
    if ninja is None:
        return {}
    unreadable = next(_unreadable_ninja_files(build_dir), None)
    if unreadable is not None:
        warnings.append(f"{unreadable[0]}: {unreadable[1]}; the include graph says which units read a changed header")
        return {}
    try:
        with tempfile.TemporaryDirectory(prefix="kvmlint-ninja-") as scratch:
            result = run_bounded([ninja, "-n", "-C", str(build_dir), "-t", "deps"], build_dir, NINJA_TIMEOUT_SECONDS,
                                 Path(scratch), NINJA_DEPS_TEXT_MAX_BYTES)
    except OSError as error:  # no room for ninja's output
        warnings.append(f"{log}: `ninja -t deps` cannot be run ({error.strerror or error}); "
                        f"the include graph says which units read a changed header")
        return {}
    if result.returncode is None or result.truncated:
        what = "did not finish" if result.returncode is None else "wrote more than it may"
        warnings.append(f"{log}: `ninja -t deps` {what}; the include graph says which units read a changed header")
        return {}
    return parse_ninja_deps(result.stdout.decode("utf-8", "surrogateescape"), build_dir) if result.returncode == 0 else {}


def _unreadable_ninja_files(build_dir: Path) -> Iterator[tuple[Path, str]]:
    """The files `ninja -t deps` reads that ninja would wait on, or follow elsewhere."""
    for path in (build_dir / "build.ninja", build_dir / NINJA_DEPS_LOG, build_dir / ".ninja_log"):
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(info.st_mode):
            yield path, "not a regular file"


def parse_depfile(text: str) -> list[str]:
    """The prerequisites of a make-format dependency file's first rule (`-MP` phony rules
    and escaped spaces understood)."""
    joined = text.replace("\\\r\n", " ").replace("\\\n", " ")
    for line in joined.splitlines():
        target, colon, prerequisites = line.partition(": ")
        if not colon:
            continue
        words = re.findall(r"(?:\\ |[^\s])+", prerequisites)
        return [word.replace("\\ ", " ").replace("$$", "$") for word in words]
    return []


def parse_ninja_deps_log(data: bytes, build_dir: Path) -> dict[Path, frozenset[Path]] | None:
    """ninja's binary dependency log (`.ninja_deps`, format versions 3 and 4; ninja 1.11 writes 4):
    records of a path (its text, NUL-padded to 4 bytes, then the bitwise NOT of its number)
    and of an output's dependencies (a size with the top bit set, the output's number, its
    mtime, then the numbers of its inputs); a later record of an output replaces an earlier
    one.  Numbers are in the byte order of the machine that wrote it.  None when the log is
    not in a version read here."""
    header = b"# ninjadeps\n"
    if not data.startswith(header) or len(data) < len(header) + 4:
        return None
    version = int.from_bytes(data[len(header) : len(header) + 4], sys.byteorder)
    if version not in (3, 4):
        return None
    mtime_words = 2 if version == 4 else 1
    names: list[str] = []
    deps_of: dict[int, tuple[int, ...]] = {}
    words = memoryview(data)
    offset = len(header) + 4
    while offset + 4 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], sys.byteorder)
        is_deps, size = size & 0x80000000, size & 0x7FFFFFFF
        start, offset = offset + 4, offset + 4 + size
        if offset > len(data) or size % 4 or size < 4:
            break  # a record cut short by an interrupted build: ninja ignores it too
        if is_deps:
            numbers = words[start:offset].cast("i")
            if len(numbers) < 1 + mtime_words:
                break
            deps_of[numbers[0]] = tuple(numbers[1 + mtime_words :])
        else:
            if int.from_bytes(data[offset - 4 : offset], sys.byteorder) != ~len(names) & 0xFFFFFFFF:
                break  # not the checksum ninja writes: the rest is not trusted
            names.append(data[start : offset - 4].rstrip(b"\0").decode("utf-8", "surrogateescape"))
    paths = [resolve_path(build_dir, name) for name in names]
    try:
        return {paths[output]: frozenset(map(paths.__getitem__, inputs)) for output, inputs in deps_of.items()}
    except IndexError:  # a number no path record gave
        return None


def parse_ninja_deps(text: str, build_dir: Path) -> dict[Path, frozenset[Path]]:
    """`ninja -t deps` output: `target: #deps N, ...` then one indented path per line.
    Hundreds of thousands of lines name a few thousand files: each name is resolved once."""
    result: dict[Path, frozenset[Path]] = {}
    resolved: dict[str, Path] = {}

    def path(name: str) -> Path:
        found = resolved.get(name)
        if found is None:
            found = resolved[name] = resolve_path(build_dir, name)
        return found

    target, deps = None, []
    for line in text.splitlines() + [""]:
        if line.startswith((" ", "\t")) and target is not None:
            deps.append(path(line.strip()))
            continue
        if target is not None:
            result[target] = frozenset(deps)
            target, deps = None, []
        if ": #deps" in line:
            target = resolve_path(build_dir, line.split(": #deps", 1)[0])
    return result
