"""Every configuration example the README and docs show is one kvmlint takes as written."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent.parent
DOCUMENTS = [HERE / "README.md", *sorted((HERE / "docs").glob("*.md"))]
SAMPLE = HERE / "fixtures" / "qemu-snippets" / "qemu-2012"


def toml_examples():
    for document in DOCUMENTS:
        for number, block in enumerate(re.findall(r"^```toml\n(.*?)^```", document.read_text(), re.S | re.M)):
            yield pytest.param(block, id=f"{document.name}-{number}")


@pytest.mark.parametrize("example", list(toml_examples()))
def test_a_configuration_example_runs_as_shown(tmp_path, example):
    tree = tmp_path / "qemu"
    shutil.copytree(SAMPLE, tree)
    if example.lstrip().startswith("[tool."):
        (tree / "pyproject.toml").write_text(example)
    else:
        (tree / "kvmlint.toml").write_text(example)
    named_baseline = re.search(r'^baseline = "(.*?)"', example, re.M)
    if named_baseline:  # the file a CI keeps, written as docs/ci.md says
        subprocess.run([sys.executable, "-m", "kvmlint", "check", "--no-cache", "--write-baseline", named_baseline.group(1)],
                       cwd=tree, capture_output=True, timeout=300, check=True, input="")
    done = subprocess.run([sys.executable, "-m", "kvmlint", "check", "--no-cache", "-q", "."], cwd=tree,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 1), done.stderr
