#!/usr/bin/env python3
"""What a class costs: memory and CPU of classroom.yaml with the gfw censor (as root).

    .venv/bin/python benchmarks/classroom.py [--topology classroom] [--seconds 10]

Memory: MemAvailable before and after bring-up, and the RSS of each daemon.
CPU: share of one core used by Open vSwitch and tunnelwall's daemons, idle
and while every student downloads at once through the censor.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from procinfo import cpu_of, run_processes, status_mb  # noqa: E402
from tunnelwall.base.procs import mem_available_mb  # noqa: E402


def cpu_share(processes: dict[str, list[int]], seconds: float, work=None) -> dict[str, float]:
    """Each name's CPU, in % of one core, while *work* runs (or for *seconds*)."""
    before = cpu_of(processes)
    t0 = time.monotonic()
    if work:
        work()
    else:
        time.sleep(seconds)
    wall = time.monotonic() - t0
    return {n: (sec - before[n]) / wall * 100 for n, sec in cpu_of(processes).items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--topology", default="classroom")
    ap.add_argument("--profile", default="gfw")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--mbytes", type=int, default=20)
    args = ap.parse_args()
    free0 = mem_available_mb()
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "tunnelwall", "up", args.topology, "--profile", args.profile],
                   check=True, capture_output=True, cwd=ROOT)
    up_s = time.monotonic() - t0
    try:
        time.sleep(1)
        from tunnelwall.base.runstate import active_run
        state = active_run()
        students = state.layout.by_role("client")
        used = free0 - mem_available_mb()
        pids = run_processes()
        print(f"{args.topology} with {args.profile}: {len(state.nodes)} hosts, {len(students)} students; "
              f"up in {up_s:.1f}s; memory used {used:.0f} MB (MemAvailable delta)")
        print("RSS MB: " + ", ".join(f"{n} {sum(status_mb('VmRSS', p) for p in ps):.0f}"
                                      for n, ps in sorted(pids.items())))
        idle = cpu_share(pids, args.seconds)
        print(f"CPU idle, % of one core: total {sum(idle.values()):.1f} "
              f"({', '.join(f'{n} {v:.1f}' for n, v in sorted(idle.items()) if v >= 0.1)})")
        results = {}

        def download(host):
            out = subprocess.run(["ip", "netns", "exec", f"tw-{host}", "curl", "-s", "-o", "/dev/null", "-w",
                                  "%{speed_download}", f"http://198.18.0.10/bytes/{args.mbytes * 1_000_000}"],
                                 capture_output=True, text=True, timeout=300).stdout
            results[host] = float(out or 0) * 8 / 1e6

        def everyone():
            threads = [threading.Thread(target=download, args=(h,)) for h in students]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        busy = cpu_share(pids, 0, everyone)
        rates = sorted(results.values())
        print(f"all {len(students)} students download {args.mbytes} MB at once: "
              f"{min(rates):.0f}-{max(rates):.0f} Mbit/s each, {sum(rates):.0f} Mbit/s together; CPU total "
              f"{sum(busy.values()):.0f}% of one core ({', '.join(f'{n} {v:.0f}' for n, v in sorted(busy.items()) if v >= 1)})")
    finally:
        subprocess.run([sys.executable, "-m", "tunnelwall", "down"], capture_output=True, cwd=ROOT)


if __name__ == "__main__":
    main()
