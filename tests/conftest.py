"""Shared test set-up: the suite's kvmlint cache, and fixture trees laid out from overlays."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("KVMLINT_CACHE_DIR", tempfile.mkdtemp(prefix="kvmlint-test-cache-"))
# The cache's key (in $XDG_CACHE_HOME/kvmlint/): the suite's own, never the developer's.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="kvmlint-test-cache-home-")

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "qemu-snippets"


def lay_out(destination: Path, base: str, *overlays: str) -> Path:
    """The fixture tree `base` at `destination`, with each overlay's files copied over it in turn.

    An overlay holds only the files it adds to or changes in its base, so a
    variant of a tree does not copy the whole tree.
    """
    ignore = shutil.ignore_patterns(".kvmlint_cache")  # left by a developer's run on the bundled sample
    shutil.copytree(FIXTURES / base, destination, ignore=ignore)
    for overlay in overlays:
        shutil.copytree(FIXTURES / overlay, destination, ignore=ignore, dirs_exist_ok=True)
    return destination


@pytest.fixture(scope="session")
def qemu_helpers(tmp_path_factory) -> Path:
    """qemu-2012/ with what later releases had (the qemu-helpers/ overlay); tests that change it copy it first."""
    return lay_out(tmp_path_factory.mktemp("fixtures") / "qemu-helpers", "qemu-2012", "qemu-helpers")
