"""The model cites only what a user can look up: a file the package ships, or an upstream source.

Upstream sources are QEMU's and Linux's files at a named commit (`accel/kvm/kvm-all.c`,
`Documentation/virt/kvm/api.rst`), commits, and the 2012 qemu-devel thread by its Message-ID.  Any other
file the model's data or code names (`*.toml`, `*.tsv`, `*.md`, `*.txt`, `*.py`, ...) must be one the
package ships: a module of the package, or a file its package-data takes.
"""

from __future__ import annotations

import fnmatch
import re
import sys
from pathlib import Path

import kvmlint

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

PACKAGE = Path(kvmlint.__file__).resolve().parent
MODEL = PACKAGE / "model"
PYPROJECT = PACKAGE.parent / "pyproject.toml"
# Names of kvmlint's own kinds of file; QEMU's and Linux's sources (.c, .h, .rst, meson.build) are upstream.
CITED_FILE = re.compile(r"(?<![\w/.-])((?:\.\./|[\w-]+/)*[\w.-]+\.(?:toml|tsv|md|txt|py|json|yaml))\b")


def citing_files():
    return sorted([*MODEL.glob("*.py"), *(MODEL / "data").iterdir()])


def shipped(relative: str) -> bool:
    """Whether the wheel holds the package file `relative` (to the package): its modules and package-data."""
    if relative.endswith(".py"):
        return True
    patterns = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-data"]["kvmlint"]
    return any(fnmatch.fnmatch(relative, pattern) for pattern in patterns)


def resolve(cited: str, citing: Path) -> str | None:
    """The package-relative path of a cited file, trying what a reader would: the citing file's folder, the
    model's data, the package, the repository root."""
    for base in (citing.parent, MODEL / "data", MODEL, PACKAGE, PACKAGE.parent):
        candidate = (base / cited).resolve()
        if candidate.is_file() and PACKAGE in candidate.parents:
            return candidate.relative_to(PACKAGE).as_posix()
    return None


def test_every_file_the_model_cites_is_shipped_with_the_package():
    cited = {}
    for citing in citing_files():
        for name in CITED_FILE.findall(citing.read_text(errors="replace")):
            cited.setdefault(name, citing)
    assert len(cited) >= 8  # the scan sees the model's cross-references (predicates.toml, concepts.toml, ...)
    missing = {}
    for name, citing in cited.items():
        relative = resolve(name, citing)
        if relative is None or not shipped(relative):
            missing[name] = citing.relative_to(PACKAGE).as_posix()
    assert not missing, f"cited but not shipped (cited file: citing file): {missing}"


def test_the_thread_the_model_cites_is_named_by_its_message_id():
    """`(thread, Peter Maydell 2012-07-21 09:30)` cites the thread that predicates.toml names."""
    data = {path.name: path.read_text() for path in (MODEL / "data").glob("*.toml")}
    assert sum(text.count("thread, ") for text in data.values()) >= 10
    definition = re.search(r'"thread" = (.*?)\);', data["predicates.toml"], re.S)
    assert definition and "<1342811652-16931-1-git-send-email-peter.maydell@linaro.org>" in definition.group(1)
