"""Issue 3: capture real tools' traffic between namespaces, classify offline."""

import json
import signal
import subprocess

from conftest import assert_nothing_left, tw

from tunnelwall.harness import spec
from tunnelwall.harness.runner import PASSED, run_tool
from tunnelwall.base.runstate import active_run


def test_classify_a_capture_of_real_tools(tmp_path):
    pcap = tmp_path / "tools.pcap"
    tw("up", "isp", "--profile", "log-only")
    try:
        state = active_run()
        dump = subprocess.Popen(["ip", "netns", "exec", "tw-c1", "tcpdump", "-i", "eth0", "-U", "-s", "0", "-w",
                                 str(pcap), "ip"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert "listening on" in dump.stderr.readline()      # tcpdump says so once its capture is open
        tools = ["openvpn-udp", "openvpn-tcp", "wireguard", "shadowsocks", "https"]
        for tool in tools:
            result = run_tool(state, spec.load(tool), )
            assert result.outcome == PASSED, (tool, result.error)
        dump.send_signal(signal.SIGINT)           # -U wrote every packet as it came; SIGINT flushes the rest
        dump.wait(timeout=10)
    finally:
        tw("down")
    assert_nothing_left()
    res = tw("classify", str(pcap), "--profile", "gfw-2022", "--format", "json", "--seed", "1")
    flows = [json.loads(line) for line in res.stdout.splitlines()]
    summary = flows.pop()["summary"]
    assert summary
    # Each decided flow names the record of tcpdump's file that decided it
    # (1-based, as Wireshark counts): never before its own packet index.
    decided = [f for f in flows if f["decided"]]
    assert decided and all(f["frame"] >= f["packet_index"] >= 1 for f in decided), decided

    def flow_to(port, transport):
        matches = [f for f in flows if f["server_port"] == port and f["transport"] == transport]
        assert matches, f"no {transport} flow to port {port} in the capture"
        return max(matches, key=lambda f: f["packets"])

    assert flow_to(1194, "udp")["protocol"] == "openvpn" and flow_to(1194, "udp")["action"] == "drop"
    assert flow_to(1195, "tcp")["protocol"] == "openvpn" and flow_to(1195, "tcp")["action"] == "drop"
    assert flow_to(51820, "udp")["protocol"] == "wireguard" and flow_to(51820, "udp")["action"] == "drop"
    # The Shadowsocks check opens two connections. The first is FET-flagged
    # (blocked or spared: the 26.3% draw decides) unless its random bytes hit an
    # exemption; a later one may meet the first one's residual block instead.
    ss = [f for f in flows if f["server_port"] == 8388 and f["transport"] == "tcp"]
    assert len(ss) == 2 and any(f["protocol"] == "fet" for f in ss), ss
    https = flow_to(443, "tcp")
    assert https["protocol"] == "tls" and https["action"] == "allow"
