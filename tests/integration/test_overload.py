"""The inline middlebox past its capacity: the profile's declared overload
policy (open: frames forwarded unexamined; closed: dropped), counted and
shown in /api/health. First with the limit at 0 ms, so every frame is past
it (the policy alone, deterministically), then by overloading it on purpose
with a flood of new flows."""

import sys

import pytest

from tunnelwall.base.runstate import active_run
from tunnelwall.harness import spec
from tunnelwall.harness.runner import PASSED, run_tool
from tunnelwall.runtime.api import Api

from conftest import assert_nothing_left, in_node, tw, wait_for


def load(state) -> dict:
    return Api(state).health()["middlebox_load"]


@pytest.mark.parametrize("policy", ["open", "closed"])
def test_overload_policy_decides_what_happens_to_frames_past_capacity(policy):
    tw("up", "isp", "--profile", "gfw-2025", "--placement", "inline", "--set", "flows.max_lag_ms=0",
       "--set", f"profile.overload={policy}")
    try:
        state = active_run()
        result = run_tool(state, spec.load("wireguard"))
        report = wait_for(lambda: (lambda l: l if l.get("shed", 0) > 0 else None)(load(state)), 10,
                          "a load report with shed frames")
        assert report["policy"] == policy and report["max_lag_limit_ms"] == 0
        assert report["shed"] <= report["frames"]
        if policy == "open":
            # Unexamined, WireGuard (blocked at its first packet otherwise) gets through.
            assert result.outcome == PASSED and not result.detected
            assert result.bytes_through == result.bytes_expected
        else:
            # Nothing examined, nothing forwarded: not even the handshake arrives.
            assert result.bytes_through == 0 and not result.detected
    finally:
        tw("down")
    assert_nothing_left()


FLOOD = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.monotonic() + float(sys.argv[2])
n = 0
while time.monotonic() < end:
    for port in range(2000, 62000):            # every datagram a new flow for the censor
        s.sendto(b"x" * 32, (sys.argv[1], port))
        n += 1
        if n % 1000 == 0 and time.monotonic() >= end:
            break
print(n)
"""


def test_a_flood_of_new_flows_overloads_the_inline_middlebox_and_is_counted():
    tw("up", "isp", "--profile", "gfw-2025", "--placement", "inline", "--set", "flows.max_lag_ms=20",
       "--set", "profile.overload=open")
    try:
        state = active_run()
        before = wait_for(lambda: load(state) or None, 10, "the first load report")
        res = in_node("c1", f"{sys.executable} -c '{FLOOD}' 198.18.0.10 3", timeout=60)
        sent = int(res.stdout.strip())
        after = wait_for(lambda: (lambda l: l if l["frames"] > before["frames"] and l["max_lag_ms"] > 20 else None)(
            load(state)), 15, "a load report showing the backlog")
        assert sent > 10_000
        assert after["shed"] + after["kernel_drops"] > 0       # past capacity, and said so
        # The censor recovers: once the backlog is gone, a tool is judged as usual.
        wait_for(lambda: load(state)["lag_ms"] < 20, 60, "the middlebox caught up")
        wg = run_tool(state, spec.load("wireguard"))
        assert wg.detected and wg.rule == "wireguard"
    finally:
        tw("down")
    assert_nothing_left()
