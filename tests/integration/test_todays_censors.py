"""Issue 14 on the live testbed: today's censors' detections with real tools."""

from __future__ import annotations

import pytest
from conftest import assert_nothing_left, in_node, tw

from tunnelwall.base.runstate import active_run
from tunnelwall.controller.verdictlog import read as read_verdicts
from tunnelwall.harness import spec
from tunnelwall.harness.runner import BLOCKED, PASSED, RunOptions, run_tool


@pytest.fixture
def run(request):
    tw("up", "isp", *request.param)
    yield active_run()
    tw("down")
    assert_nothing_left()


@pytest.mark.parametrize("run", [["--profile", "gfw-2025", "--set", "tls-in-tls.probability=1"]], indirect=True)
def test_tls_in_tls_blocked_while_https_passes(run):
    https = run_tool(run, spec.load("https"), RunOptions(bytes=300_000))
    assert https.outcome == PASSED, (https.error, https.log)
    wrapped = run_tool(run, spec.load("stunnel-https"), RunOptions(bytes=300_000))
    assert wrapped.outcome == BLOCKED and wrapped.rule == "tls-in-tls", (wrapped.error, wrapped.log)
    log = read_verdicts(run.files["verdict_log"])
    hits = [v for v in log if v.get("rule") == "tls-in-tls"]
    assert hits and all(v["flow"]["server_port"] == 4433 for v in hits)
    assert hits[0]["detection"]["detail"]["model"] == "openssl-curl"


def fetch(node: str, url: str) -> tuple[int, str]:
    res = in_node(node, f"curl -gsk -o /dev/null -w '%{{size_download}} %{{http_code}}' --max-time 8 {url}", timeout=30)
    size, _, code = res.stdout.strip().partition(" ")
    return int(size or 0), code


@pytest.mark.parametrize("run", [["--profile", "tspu-2025"]], indirect=True)
def test_tspu_freezes_tls_to_a_listed_datacenter_near_16_kb(run):
    listed, _code = fetch("c1", "https://198.18.0.10/bytes/200000")
    assert listed < 200_000                       # the transfer stalled (silently: no RST, curl timed out)
    unlisted, code = fetch("c1", "https://198.18.0.20/bytes/200000")
    assert (unlisted, code) == (200_000, "200")
    log = read_verdicts(run.files["verdict_log"])
    frozen = [v for v in log if v.get("rule") == "datacenter-freeze"]
    assert [v["action"] for v in frozen] == ["freeze", "drop"]
    assert all(v["flow"]["server"] == "198.18.0.10" for v in frozen)
    # What the server got through before the freeze: 16 KB and at most one segment more.
    passed = int(frozen[1]["note"].split("frozen: ")[1].split(" ")[0])
    assert 16_384 <= passed < 16_384 + 1_500
