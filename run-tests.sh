#!/usr/bin/env bash
# Set up .venv with the test extras on first use, then run the test suite.
# Real-tree tests run when KVMLINT_QEMU_TREE points at a QEMU checkout.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ ! -x "$here/.venv/bin/pytest" ]; then
    python3 -m venv "$here/.venv"
    "$here/.venv/bin/pip" install --quiet --upgrade pip
fi
"$here/.venv/bin/pip" install --quiet -e "$here[test]"
cd "$here"
exec "$here/.venv/bin/python" -m pytest -q "$@"
