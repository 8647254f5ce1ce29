#!/usr/bin/env bash
# The main job: set up the machine (idempotent), then run the circumvention
# matrix on the default topology (isp.yaml) against the gfw censor profile.
# Reports land in reports/demo/ (results.json, junit.xml, report.html).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/tunnelwall cleanup >/dev/null
exec .venv/bin/tunnelwall verify --topology isp --profile gfw --report reports/demo "$@"
