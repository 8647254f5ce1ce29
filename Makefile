# Shortcuts; the README's two commands are scripts/demo.sh and scripts/test.sh.
.PHONY: setup demo test unit bench cleanup

setup:
	bash scripts/setup.sh
demo:
	bash scripts/demo.sh
test:
	bash scripts/test.sh
unit: setup
	.venv/bin/python -m pytest -q tests/unit
bench: setup
	.venv/bin/python benchmarks/bringup.py
	.venv/bin/python benchmarks/throughput.py
	test -f /var/tmp/tunnelwall-bench/tools.pcapng || .venv/bin/python benchmarks/record_tools.py
	.venv/bin/python benchmarks/classify.py
	.venv/bin/python benchmarks/memory.py
	.venv/bin/python benchmarks/tlsintls.py
	.venv/bin/python benchmarks/linkconditions.py
	.venv/bin/python benchmarks/fuzz.py
	.venv/bin/python benchmarks/classroom.py
	.venv/bin/python benchmarks/jobs.py
	.venv/bin/python benchmarks/cluster.py
	.venv/bin/python benchmarks/overload.py
	.venv/bin/python benchmarks/connections.py
cleanup:
	.venv/bin/tunnelwall cleanup
