#!/usr/bin/env bash
# Set up .venv on first use, then check a QEMU tree with kvmlint.
# Usage: ./run.sh [QEMU_CHECKOUT] [kvmlint check options...]
# Without a checkout it checks the bundled 2012-style sample tree.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ ! -x "$here/.venv/bin/kvmlint" ]; then
    python3 -m venv "$here/.venv"
    "$here/.venv/bin/pip" install --quiet --upgrade pip
    "$here/.venv/bin/pip" install --quiet -e "$here"
fi
if [ $# -eq 0 ]; then
    # The bundled sample lives in this repository: keep its cache out of it.
    export KVMLINT_CACHE_DIR="${KVMLINT_CACHE_DIR:-$here/.venv/kvmlint-cache}"
fi
tree="${1:-$here/fixtures/qemu-snippets/qemu-2012}"
shift || true
exec "$here/.venv/bin/kvmlint" check "$tree" "$@"
