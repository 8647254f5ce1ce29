"""Issue 16, in part: collateral damage. Russia's 2021 Twitter throttling
matched SNIs with the loose glob *t.co* and slowed microsoft.com and
reddit.com too (Xue et al., IMC 2021); the benign traffic mix shows it."""

from __future__ import annotations

import json
from pathlib import Path

from tunnelwall.base.runstate import active_run

from conftest import assert_nothing_left, tw, wait_for


def test_tspu_2021_throttles_ordinary_sites_by_its_loose_glob():
    out = json.loads(tw("collateral", "--profile", "tspu-2021", "--connections", "45", "--classes", "https,http,dns",
                        "--format", "json", timeout=600).stdout)
    rows = {(r["class"], r["outcome"]): r for r in out["summary"]}
    throttled = rows[("https", "throttled")]
    assert throttled["names"] == ["www.microsoft.com", "www.reddit.com"] and throttled["connections"] == 15
    assert throttled["ci95"][0] < throttled["rate"] < throttled["ci95"][1]
    for kind in ("https", "http", "dns"):
        assert rows[(kind, "blocked")]["hits"] == 0
    assert all(a["outcome"] == "ok" for a in out["attempts"] if a["kind"] != "https")
    assert_nothing_left()



def test_long_downloads_uploads_ssh_and_quic_under_russias_2025_censor():
    """tspu-2025 freezes TLS from a listed datacenter after 16 KB: every long
    HTTPS download from it is cut; uploads (little comes back) and SSH pass;
    QUIC to foreign hosts is dropped, so no first flight arrives."""
    out = json.loads(tw("collateral", "--profile", "tspu-2025", "--connections", "12", "--classes",
                        "download,upload,ssh,quic", "--format", "json", timeout=600).stdout)
    by = {}
    for a in out["attempts"]:
        by.setdefault(a["kind"], []).append(a["outcome"])
    assert by == {"download": ["cut"] * 3, "upload": ["ok"] * 3, "ssh": ["ok"] * 3, "quic": ["blocked"] * 3}, \
        out["attempts"]
    cut = {(r["class"], r["outcome"]): r for r in out["summary"]}[("download", "cut")]
    assert cut["hits"] == 3 and cut["rate"] == 1.0
    assert_nothing_left()


TRAFFIC_TOPOLOGY = """
name: busy
description: isp-like, one client with background traffic
censor: {switch: border, middlebox: censor, profile: gfw-2025-08-443}
nodes:
  c1: {role: client, ip: 10.0.0.11/24, gateway: 10.0.0.1, traffic: {mix: [https, http, quic], per_minute: 240}}
  isp: {role: router, interfaces: {eth0: 10.0.0.1/24, eth1: 198.18.0.1/24}}
  lan: {role: switch}
  border: {role: border-switch}
  censor: {role: middlebox}
  web: {role: server, ip: 198.18.0.10/24, gateway: 198.18.0.1, services: [http, https, dns]}
links:
  - endpoints: ["c1:eth0", "lan"]
  - endpoints: ["isp:eth0", "lan"]
  - endpoints: ["isp:eth1", "border"]
  - endpoints: ["censor:eth0", "border"]
  - endpoints: ["web:eth0", "border"]
"""


def test_background_traffic_from_a_topology_meets_the_censor(tmp_path):
    """traffic: on a client node: ordinary HTTPS, HTTP and QUIC from the
    moment the run is up; under the port-443 event every HTTPS connection is
    reset, HTTP and QUIC are untouched; collateral --from-run sums it up;
    down stops it."""
    topo = tmp_path / "busy.yaml"
    topo.write_text(TRAFFIC_TOPOLOGY)
    tw("up", str(topo))
    try:
        state = active_run()
        log = Path(state.log_dir) / "traffic-c1.jsonl"

        def enough():
            lines = log.read_text().splitlines() if log.exists() else []
            kinds = [json.loads(x)["kind"] for x in lines]
            return lines if min(kinds.count(k) for k in ("https", "http", "quic")) >= 3 else None
        wait_for(enough, 90, "three HTTPS, HTTP and QUIC attempts each in the background traffic log")
        out = json.loads(tw("collateral", "--from-run", state.run_id, "--format", "json").stdout)
        outcomes = {}
        for a in out["attempts"]:
            outcomes.setdefault(a["kind"], set()).add(a["outcome"])
        # The port-443 event resets TCP only: QUIC's first flights arrive.
        assert outcomes == {"https": {"reset"}, "http": {"ok"}, "quic": {"ok"}}, out["attempts"]
        assert any(p.name == "traffic-c1" for p in state.processes)
    finally:
        tw("down")
    assert_nothing_left()
