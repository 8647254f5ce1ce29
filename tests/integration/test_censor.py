"""Issue 4: the live censor. Verdicts become OpenFlow rules on the border switch."""

import subprocess
import time
import urllib.error
import urllib.request

import pytest
from conftest import assert_nothing_left, in_node, listening, tw, wait_for

from tunnelwall.controller.verdictlog import read as read_verdicts
from tunnelwall.runtime.api import Api
from tunnelwall.harness import spec
from tunnelwall.harness.runner import BLOCKED, PASSED, run_tool
from tunnelwall.base.runstate import active_run
from tunnelwall.runtime.network import down
from tunnelwall.topologies.datapath import DPCTL_NAME


@pytest.fixture
def censored(request):
    args = request.param if hasattr(request, "param") else ["isp", "--profile", "gfw-2022"]
    tw("up", *args)
    state = active_run()
    yield state
    tw("down")
    assert_nothing_left()


def border_flows() -> str:
    return subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", "tw-border"], capture_output=True,
                          text=True).stdout


@pytest.mark.parametrize("censored", [["isp", "--profile", "gfw-2022"]], indirect=True)
def test_gfw_blocks_wireguard_and_openvpn_passes_https(censored):
    https = run_tool(censored, spec.load("https"))
    assert https.outcome == PASSED and https.bytes_through == https.bytes_expected
    for tool, rule, max_packet in (("wireguard", "wireguard", 1), ("openvpn-udp", "openvpn", 3)):
        result = run_tool(censored, spec.load(tool))
        assert result.outcome == BLOCKED, (tool, result.error)
        assert result.bytes_through == 0                       # no data after the verdict
        assert result.rule == rule and result.packets_to_detection <= max_packet
    flows = border_flows()
    assert "udp,nw_src=10.0.0.11,nw_dst=198.18.0.20" in flows and "actions=drop" in flows
    # Every verdict is in the JSON-lines log, complete.
    log = read_verdicts(censored.files.verdict_log)
    rules = {v["rule"] for v in log}
    assert {"wireguard", "openvpn"} <= rules
    assert all({"time", "flow", "rule", "action", "packet_index", "ms"} <= set(v) for v in log)
    # Decision latency: the drop rule is sent within the first 3 packets of each blocked flow.
    for v in log:
        if v["rule"] in ("wireguard", "openvpn"):
            assert v["packet_index"] <= 3 and v["installed"] and v["install_ms"] < 1000


@pytest.mark.parametrize("censored", [["isp", "--profile", "log-only"]], indirect=True)
def test_log_only_passes_everything_and_logs_the_right_rule(censored):
    for tool, rule in (("wireguard", "wireguard"), ("openvpn-udp", "openvpn"), ("https", None)):
        result = run_tool(censored, spec.load(tool))
        assert result.outcome == PASSED, (tool, result.error, result.log)
        assert result.rule == rule and (result.action == "log" if rule else result.action is None)
    assert "actions=drop" not in border_flows().replace("priority=0 actions=drop", "")


@pytest.mark.parametrize("censored", [["isp", "--profile", "gfw-2022", "--set", "fet.probability=1",
                                       "--set", "fet.residual=4"]], indirect=True)
def test_residual_blocking_of_the_server_port_then_expiry(censored):
    # A TCP server on the VPN host's port 8388 that answers anything.
    server = subprocess.Popen(["ip", "netns", "exec", "tw-vpn", "python3", "-m", "tunnelwall.services.webserver",
                               "--http", "8388"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: listening("vpn", 8388), 10, "the test server on vpn:8388")
        fetch = "curl -s -o /dev/null -w '%{http_code}' --connect-timeout 2 --max-time 3 http://198.18.0.20:8388/"
        assert in_node("c1", fetch).stdout == "200"               # plain HTTP: exempt (Ex5), allowed
        # A fully encrypted first packet triggers the FET rule (probability forced to 1).
        trigger = ("python3 -c \"import socket,os; s=socket.create_connection(('198.18.0.20',8388),2); "
                   "s.send(os.urandom(300)); s.close()\"")
        in_node("c1", trigger)
        wait_for(lambda: any(b["server_port"] == 8388 and b["rule"] == "fet" for b in Api(censored).blocks()), 5,
                 "the residual block")
        blocked_at = time.monotonic()
        # A new, innocent connection to the same server port now fails ...
        assert in_node("c1", fetch).stdout != "200"
        assert "tcp,nw_src=10.0.0.11,nw_dst=198.18.0.20,tp_dst=8388" in border_flows()
        # ... while another client is not affected (the block is the client's 3-tuple) ...
        assert in_node("c2", fetch).stdout == "200"
        # ... and after the residual timeout (4 s) it works again, not before.
        wait_for(lambda: in_node("c1", fetch).stdout == "200", 12, "the residual block to expire")
        assert time.monotonic() - blocked_at > 3
    finally:
        server.terminate()
        server.wait()


@pytest.mark.parametrize("censored", [["classroom"]], indirect=True)
def test_tap_placement_still_blocks_after_the_verdict(censored):
    assert censored.placement == "tap"
    result = run_tool(censored, spec.load("wireguard"))
    assert result.outcome == BLOCKED and result.rule == "wireguard"
    https = run_tool(censored, spec.load("https"))
    assert https.outcome == PASSED


@pytest.mark.parametrize("censored", [["minimal", "--profile", "gfw-2022"]], indirect=True)
def test_rest_api_token_loopback_and_hot_reload(censored):
    port = censored.api.port
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5)
    assert err.value.code == 401
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health?token=wrong", timeout=5)
    assert err.value.code == 401
    listening = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout
    local_addresses = [line.split()[3] for line in listening.splitlines()]
    assert local_addresses == [f"127.0.0.1:{port}"], listening
    api = Api(censored)
    assert api.health()["profile"] == "gfw-2022"
    blocked = run_tool(censored, spec.load("wireguard"), )
    assert blocked.outcome == BLOCKED
    assert api.reload("log-only")["profile"] == "log-only"
    assert api.health()["profile"] == "log-only"
    passed = run_tool(censored, spec.load("wireguard"))
    assert passed.outcome == PASSED and passed.rule == "wireguard" and passed.action == "log"
    with pytest.raises(Exception, match="unknown censor profile"):
        api.reload("no-such-profile")


def fetch_rate_kbit(node: str, name: str, seconds: int = 6) -> float:
    """Download from the outside web server with *name* in the SNI for a few
    seconds; the average rate in kbit/s."""
    out = in_node(node, f"curl -sk -o /dev/null --max-time {seconds} -w '%{{speed_download}}' "
                        f"--resolve {name}:443:198.18.0.10 https://{name}/bytes/20000000").stdout
    return float(out or 0) * 8 / 1000


@pytest.mark.parametrize("censored", [["isp", "--profile", "tspu-2021"]], indirect=True)
def test_tspu_2021_throttles_twitter_by_sni_with_a_meter(censored):
    """Throttling, not blocking: data keeps flowing at about the rule's
    130 kbit/s through per-direction OpenFlow meters; names the loose
    "*t.co*" glob catches are slowed too; others run at full speed."""
    fast = fetch_rate_kbit("c2", "www.example.org", seconds=2)
    assert fast > 20_000, fast
    for node, name in (("c1", "www.twitter.com"), ("c3", "www.reddit.com")):
        rate = fetch_rate_kbit(node, name)
        assert 40 < rate < 200, (name, rate)
    log = read_verdicts(censored.files.verdict_log)
    throttled = [v for v in log if v["rule"] == "twitter-throttle"]
    assert len(throttled) == 2 and all(v["action"] == "throttle" and v["installed"] for v in throttled)
    meters = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-meters", "tw-border"], capture_output=True,
                            text=True).stdout
    assert meters.count("type=drop rate=130") == 4, meters          # two flows, one meter per direction
    assert border_flows().count("meter:") == 4


def _allow_rule(flows: str, port: int) -> bool:
    """An allow rule (5-tuple, on to the forwarding table) for the client port *port*."""
    return any(f"tp_src={port}" in line and "goto_table" in line for line in flows.splitlines())


@pytest.mark.parametrize("censored", [["isp", "--profile", "gfw-2025", "--set", "flows.offload=rules"]],
                         indirect=True)
def test_a_short_allowed_connection_costs_no_rule_and_a_long_one_gets_its_rule(censored):
    """Issue 17, flows.offload: rules: an allowed flow's verdict is logged at
    once, but its rule goes on the switch only once the flow has sent
    flows.offload_after (32) more packets: short connections pass through
    the middlebox and never cost the controller and the switch a rule; long
    ones are offloaded."""
    short = in_node("c1", "curl -s --local-port 41001 -o /dev/null -w '%{http_code}' http://198.18.0.10/bytes/200")
    assert short.stdout.strip() == "200"
    long_ = in_node("c1", "curl -s --local-port 41002 -o /dev/null -w '%{size_download}' "
                          "http://198.18.0.10/bytes/3000000")
    assert long_.stdout.strip() == "3000000"
    log = wait_for(lambda: [v for v in read_verdicts(censored.files.verdict_log)
                            if v["flow"]["client_port"] in (41001, 41002)] or None, 10, "both verdicts logged")
    by_port = {v["flow"]["client_port"]: v for v in log}
    assert set(by_port) == {41001, 41002}
    assert all(v["action"] == "allow" and v["offload"] == "deferred" and not v["installed"] for v in log)
    flows = border_flows()
    assert not _allow_rule(flows, 41001) and _allow_rule(flows, 41002)
    assert Api(censored).health()["offloaded_verdicts"] >= 1


@pytest.mark.parametrize("censored", [["isp", "--profile", "gfw-2025", "--set", "flows.offload=rules",
                                       "--set", "flows.offload_after=0"]], indirect=True)
def test_offload_after_zero_puts_every_allowed_flow_on_the_switch_at_its_verdict(censored):
    short = in_node("c1", "curl -s --local-port 41003 -o /dev/null -w '%{http_code}' http://198.18.0.10/bytes/200")
    assert short.stdout.strip() == "200"
    wait_for(lambda: _allow_rule(border_flows(), 41003), 10, "the short flow's allow rule")
    (v,) = [v for v in read_verdicts(censored.files.verdict_log) if v["flow"]["client_port"] == 41003]
    assert v["installed"] and "offload" not in v


def _conntrack(zone: int) -> str:
    """The run's zone in the run's datapath, named (a machine can have both)."""
    name = DPCTL_NAME[active_run().datapath]
    return subprocess.run(["ovs-appctl", "dpctl/dump-conntrack", name, f"zone={zone}"], capture_output=True,
                          text=True).stdout


@pytest.mark.parametrize("placement", ["inline", "tap"])
def test_conntrack_offload_lets_an_allowed_connection_by_at_its_verdict(placement):
    """flows.offload: conntrack (the default; issue 17): at an allowed flow's verdict the
    middlebox tags the frame, the switch's connection tracker marks the
    connection (the run's zone), and the rest of the flow skips the
    middlebox with no rule and no controller round. Blocking verdicts are
    rules as before. A profile reload changes the mark; the run's zone is
    flushed at teardown. (A host's frame that carries the tag itself is
    never passed on: tests/unit/test_middlebox_daemon.py.)"""
    tw("up", "minimal", "--profile", "gfw-2025", "--placement", placement, "--set", "flows.offload=conntrack")
    state = active_run()
    zone = state.ct_zone
    try:
        api = Api(state)
        got = in_node("c1", "curl -s --local-port 41011 -o /dev/null -w '%{size_download}' "
                            "http://10.0.0.20/bytes/3000000")
        assert got.stdout.strip() == "3000000"
        (v,) = wait_for(lambda: [v for v in read_verdicts(state.files.verdict_log)
                                 if v["flow"]["client_port"] == 41011] or None, 10, "the download's verdict")
        assert v["action"] == "allow" and v["offload"] == "conntrack" and not v["installed"]
        assert not _allow_rule(border_flows(), 41011)
        tracked = [line for line in _conntrack(zone).splitlines() if "sport=41011" in line]
        assert len(tracked) == 1 and "mark=1" in tracked[0], _conntrack(zone)
        # About 3,000 frames went by; the middlebox saw the handshake and the request.
        load = wait_for(lambda: (h := api.health()["middlebox_load"]).get("tagged") and h, 10, "a load report")
        assert load["frames"] < 300, load
        blocked = run_tool(state, spec.load("wireguard"))
        assert blocked.outcome == BLOCKED and blocked.rule == "wireguard"
        api.reload("log-only")
        wait_for(lambda: "ct_mark=0x2" in border_flows(), 10, "the new generation's rule")
    finally:
        removed = down(state)
    assert f"conntrack zone {zone}" in removed, removed
    assert_nothing_left()
