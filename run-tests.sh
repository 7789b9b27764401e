#!/usr/bin/env bash
# Set up a virtual environment with the test extras on first use, then run the test suite.
# PYTHON (default python3) is the interpreter, VENV (default .venv beside this script) the
# environment; one made by another Python version is made again.
# Real-tree tests run when KVMLINT_QEMU_TREE points at a QEMU checkout.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3}"
venv="${VENV:-$here/.venv}"
version() { "$1" -c 'import sys; print(sys.version)'; }
if [ ! -x "$venv/bin/pytest" ] || [ "$(version "$venv/bin/python")" != "$(version "$python")" ]; then
    "$python" -m venv --clear "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
fi
"$venv/bin/pip" install --quiet -e "$here[test]"
cd "$here"
exec "$venv/bin/python" -m pytest -q "$@"
