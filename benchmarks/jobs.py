#!/usr/bin/env python3
"""Matrix wall time with ``verify --jobs 1`` against ``--jobs 2``, side by
side in one run (as root).

    .venv/bin/python benchmarks/jobs.py [--rounds 2] [--trials 3]

The same matrix (profiles x tools x trials, fixed seed) runs once in one
process and once spread over two testbeds side by side (two run scopes),
alternating, and prints the wall time of each and the ratio. Each job
brings up its own testbed per profile, so the ratio shows what two cores
buy once bring-up is paid twice. Results must agree cell for cell
(deterministic rules only in the default matrix).
"""

from __future__ import annotations

import argparse
import statistics

import benchmatrix     # benchmarks/benchmatrix.py, beside this script


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    benchmatrix.add_options(ap)
    args = ap.parse_args()
    matrix, cells = benchmatrix.matrix(args)
    walls = {1: [], 2: []}
    outcomes = {}
    for r in range(args.rounds):
        for jobs in ((1, 2) if r % 2 == 0 else (2, 1)):
            wall, result = benchmatrix.verify(matrix, ["--jobs", str(jobs)])
            walls[jobs].append(wall)
            outcomes.setdefault(jobs, result)
            print(f"round {r + 1}: --jobs {jobs}: {wall:.1f} s for {cells} cells", flush=True)
    same = outcomes[1] == outcomes[2]
    w1, w2 = statistics.median(walls[1]), statistics.median(walls[2])
    print(f"\n{cells} cells ({args.profiles} x {args.tools} x {args.trials} trials), median of {args.rounds}:")
    print(f"  --jobs 1: {w1:.1f} s ({cells / w1 * 60:.1f} cells/min)")
    print(f"  --jobs 2: {w2:.1f} s ({cells / w2 * 60:.1f} cells/min)")
    print(f"  speed-up --jobs 2 / --jobs 1: {w1 / w2:.2f}x; outcomes identical: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
