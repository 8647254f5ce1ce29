"""Issue 33, item 2, on the live testbed: a new connection on the 5-tuple of
a torn-down or closed one is inspected again, inline and tap, with either
offload (the switch's connection tracker, or 5-tuple rules put on at the
verdict). Two sequences from c1, 5 trials each (benchmarks/geneva.py runs
20): Geneva's fake SYN/ACK (strategy 23: the client's SYN/ACK first, the
server's RST, the real SYN with the same ISN), and an allowed connection
ended by the client's RST followed at once by a new one asking for a
blocked Host."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import assert_nothing_left, in_node, tw

from tunnelwall.base.runstate import active_run
from tunnelwall.controller.verdictlog import read as read_verdicts

WIRE = f"{sys.executable} {Path(__file__).with_name('wire.py')}"
WEB4 = "198.18.0.10"
TRIALS = 5


@pytest.fixture(params=[("inline", "conntrack"), ("inline", "rules"), ("tap", "conntrack"), ("tap", "rules")],
                ids=lambda p: "-".join(p))
def censor(request):
    placement, offload = request.param
    tw("up", "isp", "--profile", "gfw", "--placement", placement, "--set", f"flows.offload={offload}",
       "--set", "flows.offload_after=0", "--set", "http-host.residual=0", "--set", "sni-blocklist.residual=0")
    yield active_run(), placement
    tw("down")
    assert_nothing_left()


def blocked_verdicts(state, ports: set[int]) -> set[int]:
    return {v["flow"]["client_port"] for v in read_verdicts(state.files.verdict_log)
            if v.get("rule") == "http-host" and v["flow"]["client_port"] in ports}


def test_fake_synack_then_syn_on_the_same_5_tuple_is_inspected(censor):
    state, placement = censor
    gw_mac = state.layout.nodes["isp"].interfaces["eth0"].mac
    res = in_node("c1", f"{sys.executable} -m tunnelwall.harness.geneva trials --server {WEB4} --gw-mac {gw_mac} "
                        f"--strategies s23 --trials {TRIALS} --controls 0", timeout=120)
    assert res.returncode == 0, res.stderr
    trials = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert len(trials) == TRIALS
    ports = {t["sport"] for t in trials}
    assert blocked_verdicts(state, ports) == ports          # every request was inspected and caught
    if placement == "inline":
        assert [t["outcome"] for t in trials] == ["reset"] * TRIALS, trials


def test_rst_then_new_syn_on_an_allowed_5_tuple_is_inspected(censor):
    state, placement = censor
    gw_mac = state.layout.nodes["isp"].interfaces["eth0"].mac
    res = in_node("c1", f"{WIRE} reuse {WEB4} www.example.org www.twitter.com {gw_mac} {TRIALS}", timeout=120)
    assert res.returncode == 0, res.stderr
    pairs = [line.split() for line in res.stdout.splitlines() if line.strip()]
    assert len(pairs) == TRIALS and all(outcome != "control-failed" for _, outcome in pairs), pairs
    ports = {int(port) for port, _ in pairs}
    assert blocked_verdicts(state, ports) == ports
    if placement == "inline":
        assert [outcome for _, outcome in pairs] == ["reset"] * TRIALS, pairs
