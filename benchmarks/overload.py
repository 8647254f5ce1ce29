#!/usr/bin/env python3
"""The inline middlebox's capacity, and what it does past it (as root).

    .venv/bin/python benchmarks/overload.py [--seconds 3] [--rates 2000,5000,10000,20000,0]

c1 sends UDP datagrams to the web server, each to a new port (so each is a
new flow the censor must examine), at a fixed rate per step (0: as fast as
one Python sender goes). For each step the middlebox's own report
(/api/health, middlebox_load) gives frames received, frames shed under the
overload policy, frames the kernel dropped from its full queue, and the
worst wait in the queue. Capacity is the highest rate whose worst wait stays
under the limit (flows.max_lag_ms, 250 ms by default).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from benchmatrix import tw  # noqa: E402
SENDER = r"""
import socket, sys, time
rate, seconds = float(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
start = time.monotonic(); n = 0; port = 2000
while True:
    now = time.monotonic()
    if now - start >= seconds:
        break
    if rate and n >= rate * (now - start):
        time.sleep(0.0005); continue
    s.sendto(b"x" * 32, (sys.argv[1], port)); n += 1
    port = 2000 if port >= 62000 else port + 1
print(n / seconds)
"""




def load(api) -> dict:
    return api.health()["middlebox_load"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rates", default="2000,5000,10000,20000,0")
    ap.add_argument("--policy", choices=["open", "closed"], default="open")
    args = ap.parse_args()
    from tunnelwall.base.runstate import active_run
    from tunnelwall.runtime.api import Api
    tw("up", "isp", "--profile", "gfw-2025", "--placement", "inline", "--set", f"profile.overload={args.policy}")
    try:
        api = Api(active_run())
        deadline = time.monotonic() + 10
        while not load(api) and time.monotonic() < deadline:
            time.sleep(0.1)                         # the middlebox's first load report
        print(f"{'offered pkt/s':>14} {'sent pkt/s':>11} {'examined/s':>11} {'shed':>8} {'kernel drops':>13} "
              f"{'worst wait ms':>14}")
        for rate in [float(r) for r in args.rates.split(",")]:
            deadline = time.monotonic() + 60
            while load(api).get("lag_ms", 0) > 5 and time.monotonic() < deadline:
                time.sleep(0.2)                     # the previous step's backlog is gone
            before = load(api)
            sender = subprocess.Popen(["ip", "netns", "exec", "tw-c1", sys.executable, "-c", SENDER, "198.18.0.10",
                                       str(rate), str(args.seconds)], stdout=subprocess.PIPE, text=True)
            worst = 0.0
            end = None
            while end is None or time.monotonic() < end:     # until two reports after the burst
                time.sleep(0.25)
                worst = max(worst, load(api).get("lag_ms", 0.0))
                if end is None and sender.poll() is not None:
                    end = time.monotonic() + 2.5
            sent = float(sender.stdout.read().strip() or 0)
            after = load(api)
            d = {k: after[k] - before[k] for k in ("frames", "shed", "kernel_drops")}
            examined = (d["frames"] - d["shed"]) / args.seconds
            print(f"{'max' if not rate else int(rate):>14} {sent:11.0f} {examined:11.0f} {d['shed']:8d} "
                  f"{d['kernel_drops']:13d} {worst:14.1f}", flush=True)
        print(json.dumps({"policy": args.policy, "limit_ms": load(api)["max_lag_limit_ms"]}))
    finally:
        tw("down")


if __name__ == "__main__":
    main()
