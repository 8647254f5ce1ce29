#!/usr/bin/env python3
"""Link conditions, configured vs measured (as root).

    .venv/bin/python benchmarks/linkconditions.py [--pings 1000]

A client and five servers on one switch, no censor: one server per
condition (20 / 50 / 150 ms of delay, 1 % / 5 % loss, each way), one with an
all-zero condition (the relay with nothing to do) and one plain. For each:
ping round-trip time at the median over N pings (the one-way delay applies
in both directions, so the configured RTT is twice it), the share of pings
lost (loss applies both ways: 1 - (1 - p)^2, with its 95 % binomial
interval), and iperf3 throughput through the zero-condition relay beside the
plain link. Prints which mechanism applied them (netem or the relay).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOPOLOGY = """name: conditions
nodes:
  c1: {role: client, ip: 10.0.0.1/24}
  sw: {role: switch}
  d20: {role: server, ip: 10.0.0.20/24}
  d50: {role: server, ip: 10.0.0.50/24}
  d150: {role: server, ip: 10.0.0.150/24}
  l1: {role: server, ip: 10.0.0.101/24}
  l5: {role: server, ip: 10.0.0.105/24}
  zero: {role: server, ip: 10.0.0.200/24}
  plain: {role: server, ip: 10.0.0.201/24}
links:
  - endpoints: ["c1:eth0", "sw"]
  - {endpoints: ["d20:eth0", "sw"], delay: 10ms}
  - {endpoints: ["d50:eth0", "sw"], delay: 25ms}
  - {endpoints: ["d150:eth0", "sw"], delay: 75ms}
  - {endpoints: ["l1:eth0", "sw"], loss: 1%}
  - {endpoints: ["l5:eth0", "sw"], loss: 5%}
  - {endpoints: ["zero:eth0", "sw"], delay: 0ms}
  - endpoints: ["plain:eth0", "sw"]
"""


def sh(node: str, cmd: str, timeout: float = 300) -> str:
    return subprocess.run(["ip", "netns", "exec", f"tw-{node}", "sh", "-c", cmd], capture_output=True, text=True,
                          timeout=timeout).stdout


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pings", type=int, default=1000)
    args = ap.parse_args()
    from tunnelwall.harness.stats import wilson
    tw = [sys.executable, "-m", "tunnelwall"]
    with tempfile.TemporaryDirectory() as tmp:
        topo = Path(tmp) / "conditions.yaml"
        topo.write_text(TOPOLOGY)
        up = subprocess.run(tw + ["up", str(topo), "--no-censor"], capture_output=True, text=True, cwd=ROOT)
        if up.returncode:
            print(up.stderr)
            return 1
        try:
            mode = "relay" if "by relay" in up.stdout else "netem"
            print(f"conditions applied by: {mode}")
            print(f"{'condition':<22} {'configured':>14} {'measured':>28}")
            for node, ip, one_way in (("d20", "10.0.0.20", 10), ("d50", "10.0.0.50", 25), ("d150", "10.0.0.150", 75)):
                sh("c1", f"ping -c 3 -W 2 {ip}")       # neighbours resolved before measuring
                out = sh("c1", f"ping -n -c {args.pings} -i 0.005 -W 2 {ip}")
                rtts = sorted(float(l.split("time=")[1].split()[0]) for l in out.splitlines() if "time=" in l)
                p50 = rtts[len(rtts) // 2]
                print(f"delay {one_way} ms each way  {'RTT ' + str(2 * one_way) + ' ms':>14} "
                      f"{f'RTT p50 {p50:.2f} ms (n={len(rtts)})':>28}")
            for node, ip, loss in (("l1", "10.0.0.101", 0.01), ("l5", "10.0.0.105", 0.05)):
                sh("c1", f"ping -c 3 -W 2 {ip}")
                out = sh("c1", f"ping -n -q -c {args.pings} -i 0.005 -W 1 {ip}")
                received = int(out.split(" packets transmitted, ")[1].split()[0])
                lost = args.pings - received
                expected = 1 - (1 - loss) ** 2
                lo, hi = wilson(lost, args.pings)
                inside = "inside" if lo <= expected <= hi else "OUTSIDE"
                print(f"loss {loss:.0%} each way       {f'{expected:.2%} of pings':>14} "
                      f"{f'{lost / args.pings:.2%} (95% CI {lo:.2%}-{hi:.2%}, {inside})':>28}")
            rates = {}
            for node, ip in (("zero", "10.0.0.200"), ("plain", "10.0.0.201")):
                server = subprocess.Popen(["ip", "netns", "exec", f"tw-{node}", "iperf3", "-s", "-1"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    for _ in range(50):
                        if ":5201 " in sh(node, "ss -Htln"):
                            break
                        time.sleep(0.05)
                    out = sh("c1", f"iperf3 -J -t 5 -c {ip}", timeout=60)
                    rates[node] = json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e6
                finally:
                    server.wait(timeout=30)
            print(f"iperf3 through the zero-condition relay {rates['zero']:.0f} Mbit/s vs plain link "
                  f"{rates['plain']:.0f} Mbit/s -> ratio {rates['zero'] / rates['plain']:.2f} (goal >= 0.8)")
        finally:
            subprocess.run(tw + ["down"], capture_output=True, cwd=ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
