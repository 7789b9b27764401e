"""Running a program of the build (a compiler, ninja) bounded: in time, in output, and Ctrl-C stops it and its children."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

# A program's messages beyond this are cut: a compiler that reads a FIFO, or a ninja that does, would
# fill memory.
COMPILER_MESSAGES_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Ran:
    returncode: int | None  # None: killed at its timeout
    stdout: bytes
    stderr: bytes
    truncated: bool  # stdout was longer than it may be


def run_bounded(arguments: list[str], cwd: Path, timeout: float, scratch: Path, max_stdout: int,
                executable: str | None = None, live: set[subprocess.Popen] | None = None) -> Ran:
    """Run a program with no input, its output in files under `scratch` (read back bounded), and
    kill it when it outlives `timeout`.  With `live` (a compiler: its driver starts cc1 and as),
    it runs in a session of its own, to be killed with its children, which the terminal's
    Ctrl-C does not reach: it is in `live` while it runs, for the caller to stop."""
    with tempfile.TemporaryFile(dir=scratch) as out, tempfile.TemporaryFile(dir=scratch) as err:
        process = subprocess.Popen(arguments, executable=executable, cwd=cwd, stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=err, start_new_session=live is not None)
        if live is not None:
            live.add(process)
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            returncode = None
        except BaseException:
            kill(process, live is not None)
            raise
        finally:
            if live is not None:
                live.discard(process)
        if returncode is None:
            kill(process, live is not None)
        out.seek(0)
        err.seek(0)
        stdout = out.read(max_stdout + 1)
        return Ran(returncode, stdout[:max_stdout], err.read(COMPILER_MESSAGES_MAX_BYTES), len(stdout) > max_stdout)


def kill(process: subprocess.Popen, with_its_session: bool) -> None:
    try:
        if with_its_session:
            os.killpg(process.pid, signal.SIGKILL)  # the compiler's cc1 too
        else:
            process.kill()
    except ProcessLookupError:
        pass
    process.wait()
