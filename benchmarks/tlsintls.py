#!/usr/bin/env python3
"""TLS-in-TLS detection on the live testbed: false positives on plain HTTPS
and true positives on TLS carried inside TLS, with 95 % Wilson intervals.

    .venv/bin/python benchmarks/tlsintls.py [--fetches 200] [--tunnels 20]

Profile gfw-2025 with the rule made certain (tls-in-tls.probability=1), so
what is counted is the detector, not the rule's draw. Plain HTTPS: curl on
c1 fetches from the web server, sizes drawn from 200 B to 2 MB, half of the
connections carrying two requests (keep-alive gives a client->server burst
after the first response, the shape the detector looks for). Tunnels: the
stunnel-https tool (curl's HTTPS inside stunnel's TLS). Target: false
positives <= 1 %.
"""

from __future__ import annotations

import argparse
import math
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fetches", type=int, default=200)
    ap.add_argument("--tunnels", type=int, default=20)
    args = ap.parse_args()
    from tunnelwall.base.runstate import active_run
    from tunnelwall.harness.stats import wilson
    from tunnelwall.controller.verdictlog import read
    from tunnelwall.harness import spec
    from tunnelwall.harness.runner import RunOptions, run_tool
    tw = [sys.executable, "-m", "tunnelwall"]
    subprocess.run(tw + ["up", "isp", "--profile", "gfw-2025", "--set", "tls-in-tls.probability=1"], check=True,
                   capture_output=True, cwd=ROOT)
    try:
        state = active_run()
        rng = random.Random(7)
        for i in range(args.fetches):
            size = int(math.exp(rng.uniform(math.log(200), math.log(2_000_000))))
            urls = [f"https://198.18.0.10/bytes/{size}"] * (2 if i % 2 else 1)
            subprocess.run(["ip", "netns", "exec", "tw-c1", "curl", "-sk", "-o", "/dev/null", "--max-time", "10",
                            *urls], capture_output=True)
        log = read(state.files.verdict_log)
        flagged = sum(1 for v in log if v.get("rule") == "tls-in-tls" and v["flow"]["server_port"] == 443)
        conns = len({v["flow"]["client_port"] for v in log if v.get("flow", {}).get("server_port") == 443})
        caught = 0
        for _ in range(args.tunnels):
            result = run_tool(state, spec.load("stunnel-https"), RunOptions(bytes=20_000))
            caught += result.rule == "tls-in-tls"
        lo, hi = wilson(flagged, conns)
        print(f"plain HTTPS: {flagged}/{conns} connections flagged = {flagged / max(conns, 1):.2%} "
              f"(95 % CI {lo:.2%}-{hi:.2%})")
        lo, hi = wilson(caught, args.tunnels)
        print(f"stunnel carrying HTTPS: {caught}/{args.tunnels} tool runs caught = {caught / args.tunnels:.0%} "
              f"(95 % CI {lo:.0%}-{hi:.0%})")
    finally:
        subprocess.run(tw + ["down"], capture_output=True, cwd=ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
