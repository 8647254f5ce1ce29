#!/usr/bin/env python3
"""Geneva's 24 published China HTTP strategies, live, against dated GFW profiles.

    flock /tmp/tunnelwall-testbed.lock .venv/bin/python benchmarks/geneva.py \
        [--profiles gfw-2020,gfw-2025] [--trials 20] [--controls 5] [--strategies s01,s23] \
        [--server-min-ttl 20] [--placement inline] [--json out.json]

For each profile: the `isp` testbed comes up with residual blocking off (each
trial starts clean), c1 sends *trials* requests for a forbidden Host
(www.twitter.com) and *controls* for an allowed one (www.example.org) per
strategy, with the project's own implementation of each manipulation
(tunnelwall/harness/geneva.py). Printed: the published China rate (Bock et
al., CCS 2019), the emulated rate, agreement (>= 50 % on both sides or < 50 %
on both), and the controls that got their answer.

The distance that TTL-limited insertion packets (s02, s06, s11, s14, s17)
rely on is the topology's own: `isp` has 2 routers between c1 and the
censor and 10 between the censor and the web server (`hops:` in
topologies/isp.yaml), so a packet with TTL 3-12 reaches the censor and dies
before the server. --server-min-ttl N additionally has the web server drop
packets arriving with TTL < N (it stood in for the distance before the
topology had it; kept for other topologies and for comparison).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def table(rows) -> str:
    lines = ["| strategy | published (China) | emulated | agrees | controls |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        note = " (TTL insertion)" if r.insertion_by_ttl else ""
        lines.append(f"| {r.strategy}{note} | {r.published:.0%} | {r.evaded}/{r.trials} = {r.rate:.0%} | "
                     f"{'yes' if r.agrees else 'no'} | {r.controls_ok}/{r.controls} |")
    agree = sum(r.agrees for r in rows)
    lines.append(f"\n{rows[0].profile}: {agree}/{len(rows)} agree" if rows else "")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profiles", default="gfw-2020,gfw-2025")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--controls", type=int, default=5)
    ap.add_argument("--strategies", default="")
    ap.add_argument("--server-min-ttl", type=int, default=0)
    ap.add_argument("--placement", default="inline", choices=("inline", "tap"))
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    from tunnelwall.base.runstate import active_run
    from tunnelwall.harness.geneva import live_replay
    tw = [sys.executable, "-m", "tunnelwall"]
    everything = []
    for profile in args.profiles.split(","):
        subprocess.run(tw + ["up", "isp", "--profile", profile, "--placement", args.placement,
                             "--set", "http-host.residual=0", "--set", "sni-blocklist.residual=0"],
                       check=True, capture_output=True, cwd=ROOT)
        try:
            t0 = time.monotonic()
            rows = live_replay(active_run(), profile, [s for s in args.strategies.split(",") if s] or None,
                               trials=args.trials, controls=args.controls, server_min_ttl=args.server_min_ttl,
                               timeout=3600)
            print(table(rows), f"({time.monotonic() - t0:.0f} s)", flush=True)
            everything += [dict(r.__dict__, rate=r.rate, agrees=r.agrees) for r in rows]
        finally:
            subprocess.run(tw + ["down"], capture_output=True, cwd=ROOT)
    if args.json:
        Path(args.json).write_text(json.dumps(everything, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
