#!/usr/bin/env python3
"""A long class holds: 20 students with background traffic for hours (as root).

    flock /tmp/tunnelwall-testbed.lock .venv/bin/python benchmarks/classroom_long.py [--minutes 120]
        [--students 20] [--profile gfw] [--sample 60] [--probe-every 10] [--json out.json]

The class is ``classroom.yaml`` widened to N students (st01..stN), every one
with background traffic (HTTPS, HTTP, DNS at ``--per-minute`` each, from
``tunnelwall.services.traffic``). Every ``--probe-every`` seconds one
student, in turn, fetches a blocked name (``Host: blocked.example``): each
such probe must come back as a verdict from the controller.

Reported per sample (``--sample`` seconds): the censor's (middlebox) and the
controller's resident memory and CPU (% of one core over the interval), the
switch's too; at the end:

* verdicts lost: probes whose verdict never reached the controller's API
  (within 10 s), which must be 0;
* the live view's latency: from a probe's request to its verdict being
  readable at ``/api/verdicts`` (what the web page polls), median and worst;
  and how long one ``/api/verdicts`` request takes with the page's
  history full.

Numbers are what this machine did (a shared 2-core VM): read them as
trends over time (does memory grow? does CPU creep?), not as limits.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from procinfo import cpu_seconds, run_processes, status_mb  # noqa: E402

WATCHED = ("middlebox", "controller", "ovs-vswitchd")


def class_topology(students: int, per_minute: float) -> dict:
    """classroom.yaml with *students* student hosts, each with background traffic."""
    topo = yaml.safe_load((ROOT / "topologies" / "classroom.yaml").read_text())
    nodes = {n: v for n, v in topo["nodes"].items() if not n.startswith("st")}
    links = [ln for ln in topo["links"] if not ln["endpoints"][0].startswith("st")]
    student_nodes, student_links = {}, []
    for i in range(1, students + 1):
        name = f"st{i:02d}"
        student_nodes[name] = {"role": "client", "ip": f"10.0.0.{100 + i}/24", "gateway": "10.0.0.1",
                               "ip6": f"fd00:0:0:1::{100 + i:x}/64", "gateway6": "fd00:0:0:1::1",
                               "traffic": {"mix": ["https", "http", "dns"], "per_minute": per_minute}}
        student_links.append({"endpoints": [f"{name}:eth0", "lan"], "bandwidth": "50Mbit"})
    topo["name"] = f"classroom{students}"
    topo["description"] = f"{students} students with background traffic (benchmarks/classroom_long.py)"
    topo["nodes"] = {**student_nodes, **nodes}
    topo["links"] = student_links + links
    return topo


class Sampler:
    """Memory and CPU of the watched processes, every *every* seconds."""

    def __init__(self, every: float):
        self.every, self.rows, self.stop = every, [], threading.Event()
        self.pids = {n: p for n, p in run_processes().items() if n in WATCHED}
        self.last = (time.monotonic(), self.cpu())

    def cpu(self) -> dict[str, float]:
        return {n: sum(cpu_seconds(p) for p in pids) for n, pids in self.pids.items()}

    def sample(self, t0: float) -> dict:
        now, cpu = time.monotonic(), self.cpu()
        then, before = self.last
        self.last = (now, cpu)
        row = {"minute": round((now - t0) / 60, 1)}
        for n, pids in self.pids.items():
            row[f"{n}_mb"] = round(sum(status_mb("VmRSS", p) for p in pids), 1)
            row[f"{n}_cpu"] = round((cpu[n] - before[n]) / (now - then) * 100, 1)
        return row

    def run(self, t0: float) -> None:
        while not self.stop.wait(self.every):
            row = self.sample(t0)
            self.rows.append(row)
            print("  " + "  ".join(f"{k} {v}" for k, v in row.items()), flush=True)


def probe(state, api, host: str, log: list) -> None:
    """One blocked fetch from *host*; record when its verdict became readable at /api/verdicts."""
    from tunnelwall.base import procs
    t0 = time.time()
    res = subprocess.run(procs.in_netns(state.netns_of(host), [
        "curl", "-s", "-o", "/dev/null", "-m", "5", "-w", "%{local_port}", "-H", "Host: blocked.example",
        "http://198.18.0.10/"]), capture_output=True, text=True, timeout=30)
    port = int(res.stdout) if res.stdout.strip().isdigit() else 0
    address = state.layout.nodes[host].interfaces["eth0"].ip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for v in api.verdicts(since=t0 - 1):
            f = v["flow"]
            if f["client"] == address and (not port or f["client_port"] == port) and v.get("rule"):
                log.append({"host": host, "port": port, "latency_ms": round((time.time() - t0) * 1000, 1),
                            "verdict_ms": round((v["time"] - t0) * 1000, 1), "rule": v["rule"]})
                return
        time.sleep(0.05)
    log.append({"host": host, "port": port, "latency_ms": None, "verdict_ms": None, "rule": None})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=120.0, help="how long the class runs (default: 2 hours)")
    ap.add_argument("--students", type=int, default=20, help="student hosts (default: 20)")
    ap.add_argument("--profile", default="gfw", help="censor profile (default: gfw)")
    ap.add_argument("--per-minute", type=float, default=20.0, help="background connections per student per minute")
    ap.add_argument("--sample", type=float, default=60.0, help="seconds between memory/CPU samples")
    ap.add_argument("--probe-every", type=float, default=10.0, help="seconds between blocked probe fetches")
    ap.add_argument("--json", metavar="FILE", help="also write every sample and probe as JSON")
    args = ap.parse_args()

    from tunnelwall.base.runstate import active_run
    from tunnelwall.runtime.api import Api
    topo_file = Path(tempfile.mkdtemp(prefix="tw-class-")) / f"classroom{args.students}.yaml"
    topo_file.write_text(yaml.safe_dump(class_topology(args.students, args.per_minute), sort_keys=False))
    t_up = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "tunnelwall", "up", str(topo_file), "--profile", args.profile,
                          "--scope", "auto"], check=True, capture_output=True, text=True, cwd=ROOT).stdout
    up_s = time.monotonic() - t_up
    run_id = out.split()[1].rstrip(":")             # "run RUN_ID: 'classroom20' is up ..."
    os.environ["TUNNELWALL_RUN"] = run_id
    state = active_run()
    try:
        api = Api(state)
        hosts = state.layout.by_role("client")
        print(f"{len(hosts)} students, profile {args.profile}, up in {up_s:.1f}s; "
              f"{args.minutes} minutes, background {args.per_minute}/min per student, a blocked probe every "
              f"{args.probe_every}s", flush=True)
        sampler = Sampler(args.sample)
        t0 = time.monotonic()
        sampler.rows.append(sampler.sample(t0))
        thread = threading.Thread(target=sampler.run, args=(t0,), daemon=True)
        thread.start()
        probes: list[dict] = []
        end = t0 + args.minutes * 60
        i = 0
        while time.monotonic() < end:
            step = time.monotonic()
            probe(state, api, hosts[i % len(hosts)], probes)
            i += 1
            time.sleep(max(0.0, args.probe_every - (time.monotonic() - step)))
        sampler.stop.set()
        thread.join()
        if time.monotonic() - sampler.last[0] >= args.sample / 2:     # a CPU share over a blink means nothing
            sampler.rows.append(sampler.sample(t0))
        background = sum(len(p.read_text().splitlines()) for p in state.logs.glob("traffic-*.jsonl"))
        t_req = time.monotonic()
        history = api.verdicts(0)
        request_ms = (time.monotonic() - t_req) * 1000
        health = api.health()
    finally:
        subprocess.run([sys.executable, "-m", "tunnelwall", "--run", run_id, "down"], capture_output=True, cwd=ROOT)
    lost = [p for p in probes if p["latency_ms"] is None]
    lat = sorted(p["latency_ms"] for p in probes if p["latency_ms"] is not None)
    first, last = sampler.rows[0], sampler.rows[-1]
    print(f"\nbackground connections made: {background} ({background / args.minutes:.0f}/min over "
          f"{len(hosts)} students)")
    print(f"probes {len(probes)}, verdicts lost {len(lost)}"
          + (f" ({', '.join(p['host'] + ':' + str(p['port']) for p in lost[:5])})" if lost else ""))
    if lat:
        print(f"live view latency (request -> verdict readable at /api/verdicts): median {statistics.median(lat):.0f} ms, "
              f"p95 {lat[int(0.95 * (len(lat) - 1))]:.0f} ms, worst {lat[-1]:.0f} ms")
    print(f"one /api/verdicts request with {len(history)} verdicts kept: {request_ms:.0f} ms")
    for n in WATCHED:
        if f"{n}_mb" in first:
            cpus = [r[f"{n}_cpu"] for r in sampler.rows[1:]] or [0.0]
            print(f"{n}: RSS {first[f'{n}_mb']} -> {last[f'{n}_mb']} MB (max "
                  f"{max(r[f'{n}_mb'] for r in sampler.rows)}); CPU median {statistics.median(cpus)}%, "
                  f"max {max(cpus)}% of one core")
    print(f"middlebox load: {health.get('middlebox_load')}; watchdog restarts {health.get('watchdog_restarts')}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "samples": sampler.rows, "probes": probes,
                                               "health": health}, indent=1))
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
