"""What every hostile case shares: running kvmlint as a user would, isolated and bounded.

A case is a function `case_NAME(folder: Path) -> str | None` listed in its
module's `CASES`; its docstring's first line says what the tree plants.  It
builds the tree inside `folder` (and nothing outside it: a "victim" file
outside the tree is made inside `folder` too), runs kvmlint with `kvmlint()`,
and returns None when kvmlint held, else one line saying what went wrong.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
FIXTURES = REPOSITORY / "fixtures" / "qemu-snippets"
CPU_SECONDS = 90
MEMORY_BYTES = 2 << 30
KVMLINT_TIMEOUT_SECONDS = 60


def limit_resources() -> None:
    """The case's process and everything it starts: bounded CPU time and address space."""
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


def fixture_tree(name: str, destination: Path) -> Path:
    """A copy of the fixture tree `name` (e.g. "qemu-2012") at `destination`."""
    shutil.copytree(FIXTURES / name, destination, ignore=shutil.ignore_patterns(".kvmlint_cache"))
    return destination


def kvmlint(folder: Path, *args: str, cwd: Path | None = None, input: bytes | None = None,
            env: dict[str, str] | None = None, limited: bool = False) -> subprocess.CompletedProcess:
    """`kvmlint ARGS` as its own process, with HOME and the caches inside `folder`; `limited`,
    under `limit_resources` (git and every program it starts too).

    A timeout is returned as exit status -9 with "timed out" on stderr, so a
    case can report it rather than stop the run.
    """
    home = folder / "home"
    home.mkdir(exist_ok=True)
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(REPOSITORY),  # this checkout's kvmlint, whichever environment runs the bench
        **(env or {}),
    }
    try:
        return subprocess.run(
            [sys.executable, "-m", "kvmlint", *args],
            cwd=cwd or folder, input=input, capture_output=True, env=environment,
            stdin=None if input is not None else subprocess.DEVNULL, timeout=KVMLINT_TIMEOUT_SECONDS,
            preexec_fn=limit_resources if limited else None,
        )
    except subprocess.TimeoutExpired as expired:
        return subprocess.CompletedProcess(expired.cmd, -9, expired.stdout or b"", b"timed out")


def crashed(result: subprocess.CompletedProcess) -> str | None:
    """Why a kvmlint run is not a clean answer (a traceback, an internal error, a signal), or None."""
    stderr = result.stderr.decode("utf-8", "replace")
    if result.returncode < 0:
        return f"killed by signal {-result.returncode}" if result.returncode != -9 else "timed out or killed"
    if "No module named" in stderr:
        return "kvmlint could not start: " + stderr.strip().splitlines()[-1][:200]
    if "Traceback" in stderr or "internal error" in stderr:
        return "crashed: " + (stderr.strip().splitlines() or [""])[-1][:200]
    if result.returncode not in (0, 1, 2):
        return f"exit status {result.returncode}"
    return None
