#!/usr/bin/env bash
# All tests: set up the machine (idempotent), then unit and integration tests.
# Integration tests need root: they build namespaces and OVS bridges for real.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/tunnelwall cleanup >/dev/null
exec .venv/bin/python -m pytest -ra -p no:cacheprovider "$@"
