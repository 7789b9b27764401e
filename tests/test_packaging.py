"""Installing kvmlint as a user does: a wheel built from this checkout, installed into a fresh
environment of the running Python by pip, pipx and uv, then run on the bundled sample tree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import kvmlint
from conftest import lay_out

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "kvmlint")
INSTALL_TIMEOUT = 900

pytestmark = pytest.mark.slow


def run(*command, **options) -> subprocess.CompletedProcess:
    options.setdefault("timeout", INSTALL_TIMEOUT)
    return subprocess.run([str(part) for part in command], capture_output=True, text=True, **options)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The wheel and what the build printed; built from a copy, so the checkout gets no build/."""
    source = tmp_path_factory.mktemp("source")
    for name in SHIPPED:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    wheels = tmp_path_factory.mktemp("wheels")
    # -v: pip shows the build backend's warnings whatever its version
    build = run(sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--wheel-dir", wheels, source)
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = wheels.glob("kvmlint-*.whl")
    return wheel, build.stdout + build.stderr


@pytest.fixture(scope="module")
def expected_check(tmp_path_factory):
    """`kvmlint check` of the 2012 sample, as the kvmlint under test reports it."""
    tree = lay_out(tmp_path_factory.mktemp("tree") / "qemu", "qemu-2012")
    return tree, _findings(run(sys.executable, "-m", "kvmlint", "check", "--no-cache", "--format", "json", tree))


def _licence_warnings(output: str) -> list[str]:
    """What setuptools or pip says against the licence's metadata (deprecated fields, classifiers)."""
    return [line for line in output.splitlines()
            if "licen" in line.lower() and ("warn" in line.lower() or "deprecat" in line.lower())]


def _findings(completed: subprocess.CompletedProcess) -> list:
    assert completed.returncode == 1, completed.stderr
    return json.loads(completed.stdout)["findings"]


def _works(kvmlint_command: Path, expected_check) -> None:
    version = run(kvmlint_command, "--version")
    assert version.returncode == 0, version.stderr
    assert kvmlint.__version__ in version.stdout
    tree, findings = expected_check
    assert findings
    assert _findings(run(kvmlint_command, "check", "--no-cache", "--format", "json", tree)) == findings


def test_the_wheel_says_what_it_needs_and_ships_its_licence_and_model(built):
    wheel, output = built
    assert _licence_warnings(output) == [], output
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        dist_info = next(name.split("/")[0] for name in names if name.endswith(".dist-info/METADATA"))
        metadata = archive.read(f"{dist_info}/METADATA").decode()
        licence = archive.read(f"{dist_info}/licenses/LICENSE").decode()
    headers = metadata.split("\n\n")[0].splitlines()
    assert "License-Expression: GPL-2.0-or-later" in headers
    assert "License-File: LICENSE" in headers
    assert "Requires-Python: >=3.9" in headers
    assert 'Requires-Dist: tomli>=1.1; python_version < "3.11"' in headers
    assert not any(header.startswith("Classifier: License ::") for header in headers)
    assert "GNU GENERAL PUBLIC LICENSE" in licence and "Version 2, June 1991" in licence
    model = {path.relative_to(ROOT).as_posix() for path in (ROOT / "kvmlint" / "model" / "data").iterdir()}
    assert model and model <= names, sorted(model - names)


def test_pip_installs_the_wheel_into_a_fresh_environment(built, expected_check, tmp_path):
    wheel, _ = built
    environment = tmp_path / "env"
    created = run(sys.executable, "-m", "venv", environment)
    assert created.returncode == 0, created.stderr
    installed = run(environment / "bin" / "python", "-m", "pip", "install", "-v", wheel)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert _licence_warnings(installed.stdout + installed.stderr) == [], installed.stdout + installed.stderr
    _works(environment / "bin" / "kvmlint", expected_check)


def _tool(name: str) -> Path:
    """pipx or uv, as the test extras install them beside the running Python."""
    command = Path(sys.executable).parent / name
    assert command.is_file(), f"{name} is not installed: the test extras (pip install -e .[test]) bring it"
    return command


def test_pipx_installs_the_wheel(built, expected_check, tmp_path):
    wheel, _ = built
    env = {**os.environ, "PIPX_HOME": str(tmp_path / "pipx"), "PIPX_BIN_DIR": str(tmp_path / "bin"),
           "PIPX_MAN_DIR": str(tmp_path / "man")}
    installed = run(_tool("pipx"), "install", "--python", sys.executable, wheel, env=env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    _works(tmp_path / "bin" / "kvmlint", expected_check)


def test_uv_tool_installs_the_wheel(built, expected_check, tmp_path):
    wheel, _ = built
    env = {**os.environ, "UV_TOOL_DIR": str(tmp_path / "tools"), "UV_TOOL_BIN_DIR": str(tmp_path / "bin"),
           "UV_PYTHON_DOWNLOADS": "never"}
    installed = run(_tool("uv"), "tool", "install", "--python", sys.executable, wheel, env=env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    _works(tmp_path / "bin" / "kvmlint", expected_check)
