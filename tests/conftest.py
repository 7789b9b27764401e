"""Shared test set-up: the suite's kvmlint cache, and fixture trees laid out from overlays."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("KVMLINT_CACHE_DIR", tempfile.mkdtemp(prefix="kvmlint-test-cache-"))
# The cache's key (in $XDG_CACHE_HOME/kvmlint/): the suite's own, never the developer's.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="kvmlint-test-cache-home-")

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "qemu-snippets"


def lay_out(destination: Path, base: str, *overlays: str) -> Path:
    """The fixture tree `base` at `destination`, with each overlay laid over it in turn.

    An overlay holds only what it adds to or changes in its base, so a variant
    of a tree does not copy the whole tree: a new file as it is, a changed one
    as `NAME.patch`, a unified diff of the base's file (`diff -u`), applied here
    (see `apply_patch`).
    """
    ignore = shutil.ignore_patterns(".kvmlint_cache")  # left by a developer's run on the bundled sample
    shutil.copytree(FIXTURES / base, destination, ignore=ignore)
    for overlay in overlays:
        folder = FIXTURES / overlay
        shutil.copytree(folder, destination, ignore=shutil.ignore_patterns(".kvmlint_cache", "*" + PATCH_SUFFIX),
                        dirs_exist_ok=True)
        for patch in sorted(folder.rglob("*" + PATCH_SUFFIX)):
            apply_patch(destination / patch.relative_to(folder).as_posix()[: -len(PATCH_SUFFIX)], patch)
    return destination


PATCH_SUFFIX = ".patch"
HUNK = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")
NO_NEWLINE = b"\\ No newline at end of file"


def apply_patch(target: Path, patch: Path) -> None:
    """Apply a unified diff (`diff -u OLD NEW`, one file) to `target`, byte for byte.

    Every context and removed line must be in `target` where the hunk says:
    a fixture that no longer matches its base fails loudly, it is never
    patched by guess (as `patch` would, with an offset or fuzz).
    """
    old = target.read_bytes().splitlines(keepends=True)
    lines = patch.read_bytes().splitlines(keepends=True)
    new: list[bytes] = []
    at = 0  # the next line of `old` not yet copied
    number = next((n for n, line in enumerate(lines) if line.startswith(b"@@")), len(lines))
    while number < len(lines):
        header = HUNK.match(lines[number])
        if header is None:
            raise ValueError(f"{patch}:{number + 1}: not a hunk header")
        start = int(header.group(1)) - (0 if header.group(2) == b"0" else 1)
        if start < at:
            raise ValueError(f"{patch}:{number + 1}: hunks out of order")
        new += old[at:start]
        at = start
        number += 1
        while number < len(lines) and not lines[number].startswith(b"@@"):
            tag, text = lines[number][:1], lines[number][1:]
            if number + 1 < len(lines) and lines[number + 1].startswith(NO_NEWLINE):
                text = text.rstrip(b"\n")
                number += 1
            if tag in (b" ", b"-"):
                if at >= len(old) or old[at] != text:
                    raise ValueError(f"{patch}:{number + 1}: {target.name} does not have this line here")
                at += 1
            if tag in (b" ", b"+"):
                new.append(text)
            elif tag != b"-":
                raise ValueError(f"{patch}:{number + 1}: not a line of a hunk")
            number += 1
    target.write_bytes(b"".join(new + old[at:]))


@pytest.fixture(scope="session")
def qemu_helpers(tmp_path_factory) -> Path:
    """qemu-2012/ with what later releases had (the qemu-helpers/ overlay); tests that change it copy it first."""
    return lay_out(tmp_path_factory.mktemp("fixtures") / "qemu-helpers", "qemu-2012", "qemu-helpers")
