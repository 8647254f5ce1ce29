# The two commands of the README, and helpers.
.PHONY: setup demo test unit integration bench cleanup

setup:
	bash scripts/setup.sh

# Main job: the default topology with the gfw censor and the circumvention matrix.
demo: setup
	.venv/bin/tunnelwall verify --topology isp --profile gfw --report reports/demo

# All tests (unit + integration; integration needs root, namespaces and OVS).
test: setup
	.venv/bin/tunnelwall cleanup >/dev/null
	.venv/bin/python -m pytest -q -ra

unit: setup
	.venv/bin/python -m pytest -q tests/unit

integration: setup
	.venv/bin/python -m pytest -q -ra -m integration

bench: setup
	.venv/bin/python benchmarks/run_all.py

cleanup:
	.venv/bin/tunnelwall cleanup
