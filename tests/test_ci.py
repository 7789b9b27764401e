""".ci/run as CI runs it, with a stand-in for the test suite: which Pythons it picks, that it runs them at
the same time in fresh environments, and that one failing suite fails CI."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Stands in for ./run-tests.sh: records how it was called, waits until every suite has started (so they
# must run at the same time), and fails for the Python named by $FAIL_FOR.
FAKE_RUN_TESTS = """#!/usr/bin/env bash
echo "$PYTHON $VENV $*" >> "$RECORD/calls"
touch "$RECORD/started-${VENV##*/}"
for _ in $(seq 100); do
    [ "$(ls "$RECORD" | grep -c '^started-')" -ge "$SUITES" ] && break
    sleep 0.1
done
[ "$(ls "$RECORD" | grep -c '^started-')" -ge "$SUITES" ] || { echo "ran alone"; exit 3; }
case "$PYTHON" in
    *"${FAIL_FOR:-none}"*) echo "1 failed, 2 passed in 0.01s"; exit 1 ;;
esac
echo "3 passed in 0.01s"
"""

# Under ~/.pyenv/versions: what CI may use, and what it must pass over.
INSTALLED = ("2.7.18", "3.8.18", "3.9.18", "3.10.13", "3.13.0")
NOT_PYTHONS = ("3.12-dev", "3.14.0")  # not a release's name; a release folder with no bin/python


@pytest.fixture
def checkout(tmp_path) -> Path:
    checkout = tmp_path / "kvmlint"
    (checkout / ".ci").mkdir(parents=True)
    shutil.copy2(ROOT / ".ci" / "run", checkout / ".ci" / "run")
    (checkout / "run-tests.sh").write_text(FAKE_RUN_TESTS)
    (checkout / "run-tests.sh").chmod(0o755)
    return checkout


def _pyenv(home: Path, versions=INSTALLED) -> Path:
    for version in versions:
        python = home / ".pyenv" / "versions" / version / "bin" / "python"
        python.parent.mkdir(parents=True)
        major, minor = version.split(".")[:2]
        python.write_text(f"#!/bin/sh\necho {major}.{minor}\n")  # what .ci/run asks: the version
        python.chmod(0o755)
    for name in NOT_PYTHONS:
        (home / ".pyenv" / "versions" / name).mkdir(parents=True)
    return home / ".pyenv" / "versions"


def _ci(checkout: Path, home: Path, suites: int, fail_for: str | None = None) -> tuple[subprocess.CompletedProcess, list[str]]:
    record = checkout.parent / "record"
    record.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYENV_ROOT"}
    env.update(HOME=str(home), RECORD=str(record), SUITES=str(suites))
    if fail_for:
        env["FAIL_FOR"] = fail_for
    done = subprocess.run(["bash", str(checkout / ".ci" / "run")], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=120)
    calls = (record / "calls").read_text().splitlines() if (record / "calls").exists() else []
    return done, sorted(calls)


def test_the_oldest_and_the_newest_python_3_run_at_once_each_in_a_fresh_environment(checkout, tmp_path):
    versions = _pyenv(tmp_path / "home")
    (checkout / ".venv-3.9").mkdir()
    (checkout / ".venv-3.9" / "left-over").write_text("")
    done, calls = _ci(checkout, tmp_path / "home", suites=2)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [call.split()[:2] for call in calls] == [
        [f"{versions}/3.13.0/bin/python", f"{checkout}/.venv-3.13"],
        [f"{versions}/3.9.18/bin/python", f"{checkout}/.venv-3.9"],
    ]
    assert not (checkout / ".venv-3.9" / "left-over").exists()
    assert "ci: python 3.9: passed (3 passed in 0.01s)" in done.stdout.splitlines()
    assert "ci: python 3.13: passed (3 passed in 0.01s)" in done.stdout.splitlines()
    assert (checkout / ".ci" / "logs" / "python-3.13.log").read_text() == "3 passed in 0.01s\n"


@pytest.mark.parametrize("failing, passing", [("3.13.0", "3.9"), ("3.9.18", "3.13")])
def test_either_suite_failing_fails_ci(checkout, tmp_path, failing, passing):
    _pyenv(tmp_path / "home")
    done, _ = _ci(checkout, tmp_path / "home", suites=2, fail_for=failing)
    assert done.returncode == 1, done.stdout + done.stderr
    failed = failing.rsplit(".", 1)[0]
    assert f"ci: python {failed}: FAILED (exit status 1; .ci/logs/python-{failed}.log)" in done.stdout.splitlines()
    assert f"ci: python {passing}: passed (3 passed in 0.01s)" in done.stdout.splitlines()
    assert "1 failed, 2 passed in 0.01s" in done.stdout  # the failing log's end is shown


def test_one_release_series_runs_once(checkout, tmp_path):
    _pyenv(tmp_path / "home", versions=("3.8.18", "3.11.1", "3.11.7"))
    done, calls = _ci(checkout, tmp_path / "home", suites=1)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [call.split()[0] for call in calls] == [f"{tmp_path}/home/.pyenv/versions/3.11.7/bin/python"]


def test_without_pyenv_ci_warns_and_uses_python3(checkout, tmp_path):
    (tmp_path / "home").mkdir()
    done, calls = _ci(checkout, tmp_path / "home", suites=1, fail_for="python3")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "ci: warning: no Python 3.9 or later under" in done.stderr
    assert [call.split()[0] for call in calls] == ["python3"]
