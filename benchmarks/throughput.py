#!/usr/bin/env python3
"""Throughput through the border with the censor vs without, and how fast
verdicts become flow rules (as root).

    .venv/bin/python benchmarks/throughput.py [--seconds 5] [--placement inline|tap]

Throughput: iperf3 from client c1 to the outside web server on the isp
topology: without the censor (--no-censor); with it (controller +
middlebox, profile log-only: the flow is inspected, allowed, and leaves the
middlebox through the switch's connection tracker); and with it under
``flows.offload: rules`` (the flow's 5-tuple rule after 32 packets).
Printed as ratios to the first (goal >= 0.9).
Latency: WireGuard and OpenVPN through the gfw censor; from the verdict log,
the packet of the flow that decided and the time from the flow's first
packet to the drop rule being sent (goal: within the first 3 packets).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmatrix import tw  # noqa: E402




def iperf(seconds: int) -> float:
    server = subprocess.Popen(["ip", "netns", "exec", "tw-web", "iperf3", "-s", "-1"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        out = subprocess.run(["ip", "netns", "exec", "tw-c1", "iperf3", "-c", "198.18.0.10", "-t", str(seconds),
                              "-J"], capture_output=True, text=True, timeout=seconds + 30).stdout
        return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e6
    finally:
        server.kill()
        server.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--placement", choices=["tap", "inline"], default=None)
    args = ap.parse_args()
    placement = ["--placement", args.placement] if args.placement else []
    # Open vSwitch's single forwarding thread varies by about 10% from one
    # bring-up to the next, so the two cases alternate, each on a fresh run.
    cases = {"without censor": ["--no-censor"], "with censor": ["--profile", "log-only", *placement],
             "with censor, rules offload": ["--profile", "log-only", "--set", "flows.offload=rules", *placement]}
    results = {label: [] for label in cases}
    for _ in range(args.repeat):
        for label, extra in cases.items():
            tw("up", "isp", *extra)
            try:
                results[label].append(iperf(args.seconds))
            finally:
                tw("down")
    base = statistics.median(results["without censor"])
    print(f"iperf3 c1 -> web, {args.seconds}s x {args.repeat}, median Mbit/s: without censor {base:.0f}")
    for label in list(cases)[1:]:
        censored = statistics.median(results[label])
        print(f"  {label}: {censored:.0f} -> ratio {censored / base:.2f}")

    from tunnelwall.harness import spec
    from tunnelwall.harness.runner import run_tool
    from tunnelwall.base.runstate import active_run
    tw("up", "isp", "--profile", "gfw", *placement)
    try:
        state = active_run()
        for tool in ("wireguard", "openvpn-udp", "openvpn-tcp", "shadowsocks"):
            r = run_tool(state, spec.load(tool))
            installs = [v for v in r.verdicts if v.get("rule")]
            install_ms = installs[0].get("install_ms") if installs else None
            print(f"{tool:<12} {r.outcome:<8} rule {r.rule or '-':<10} decided at packet "
                  f"{r.packets_to_detection or '-'}, {r.ms_to_detection if r.ms_to_detection is not None else '-'} ms "
                  f"after the first packet; drop rule sent {install_ms if install_ms is not None else '-'} ms after it")
    finally:
        tw("down")


if __name__ == "__main__":
    main()
