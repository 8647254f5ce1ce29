#!/usr/bin/env python3
"""The verify matrix on a local cluster: cells/minute with 1 worker and
with 2 workers, side by side in one run, and the head's overhead per cell
(as root; needs Dask distributed: scripts/setup.sh installs it).

    .venv/bin/python benchmarks/cluster.py [--trials 3]

Three runs of the same matrix (fixed seed): plain ``verify`` in one
process, ``verify --cluster`` with one worker, and with two workers (all on
this machine, each worker's testbeds in a run scope of its own). The head's
overhead per cell is (cluster with 1 worker - plain) / cells: scheduling,
the worker's child process and the per-task testbed bring-up that chunking
adds. Outcomes must agree cell for cell.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

import benchmatrix     # benchmarks/benchmatrix.py, beside this script
from tunnelwall.harness.cluster import connected_workers
from tunnelwall.runtime.censor import free_port

ROOT = Path(__file__).resolve().parents[1]
TW = [sys.executable, "-m", "tunnelwall"]


def with_cluster(n_workers: int, matrix: list[str], chunk: int) -> tuple[float, list]:
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    daemons = [subprocess.Popen(TW + ["cluster", "head", "--port", str(port)], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for i in range(n_workers):
            daemons.append(subprocess.Popen(TW + ["cluster", "worker", address, "--name", f"w{i + 1}"], cwd=ROOT,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 60
        while connected_workers(address) != n_workers:
            if time.monotonic() > deadline:
                raise SystemExit("workers did not connect")
            time.sleep(0.2)
        return benchmatrix.verify(matrix, ["--cluster", address, "--chunk", str(chunk)])
    finally:
        for d in reversed(daemons):
            d.send_signal(signal.SIGTERM)
            d.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    benchmatrix.add_options(ap)
    args = ap.parse_args()
    matrix, cells = benchmatrix.matrix(args)
    chunk = len(args.tools.split(",")) * args.trials // 2 or 1       # 4 tasks for 2 profiles
    plain, ref = benchmatrix.verify(matrix, [])
    print(f"plain verify: {plain:.1f} s", flush=True)
    one, r1 = with_cluster(1, matrix, chunk)
    print(f"cluster, 1 worker: {one:.1f} s", flush=True)
    two, r2 = with_cluster(2, matrix, chunk)
    print(f"cluster, 2 workers: {two:.1f} s", flush=True)
    print(f"\n{cells} cells ({args.profiles} x {args.tools} x {args.trials} trials), chunks of {chunk}:")
    print(f"  plain verify     {cells / plain * 60:6.1f} cells/min")
    print(f"  1 worker         {cells / one * 60:6.1f} cells/min")
    print(f"  2 workers        {cells / two * 60:6.1f} cells/min   ratio 2/1 workers: {one / two:.2f}x")
    print(f"  head overhead    {(one - plain) / cells:+.2f} s per cell (1 worker against plain verify)")
    print(f"  outcomes identical: {'yes' if r1 == ref and r2 == ref else 'NO'}")


if __name__ == "__main__":
    main()
