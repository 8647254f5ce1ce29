#!/usr/bin/env python3
"""Time to bring up and tear down topologies (as root).

    .venv/bin/python benchmarks/bringup.py [--repeat 3]

Goal (issue 2): 50 hosts up in < 20 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = [("minimal", ["--no-censor"]), ("isp", ["--no-censor"]), ("isp", ["--profile", "gfw"]),
         ("classroom", ["--profile", "gfw"]), ("star:50", ["--no-censor"]), ("star:50", ["--profile", "log-only"])]


def timed(args: list[str]) -> float:
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "tunnelwall", *args], cwd=ROOT, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"tunnelwall {' '.join(args)} failed: {res.stderr.strip()}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"{'topology':<12} {'censor':<18} {'hosts':>5} {'up s (median)':>14} {'down s':>8}")
    from tunnelwall import topologies
    for topo, extra in CASES:
        ups, downs = [], []
        for _ in range(args.repeat):
            ups.append(timed(["up", topo, *extra]))
            downs.append(timed(["down"]))
        hosts = len(topologies.resolve(topo).hosts())
        censor = " ".join(extra).replace("--profile ", "") or "-"
        print(f"{topo:<12} {censor:<18} {hosts:>5} {statistics.median(ups):>14.2f} {statistics.median(downs):>8.2f}")


if __name__ == "__main__":
    main()
