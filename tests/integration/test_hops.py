"""Issue 33, item 1, on the live testbed: the isp topology's router hops
(isp.yaml: hops 1 before the border, 9 after ix) are real routers. Every
one decrements the TTL (IPv6 hop limit) and answers a packet whose TTL runs
out with ICMP time exceeded, in path order; a packet with TTL k from c1
reaches the censor from k = 3 and the web server only from k = 13, so a
TTL-limited insertion packet (Geneva's TTL 8-10) is seen by the censor and
dies before the server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import assert_nothing_left, in_node, tw, wait_for

from tunnelwall.base.runstate import active_run

WEB4, WEB6 = "198.18.0.10", "2001:db8:18::10"
# The router that answers TTL k (its address towards c1), k = 1..12: isp,
# isp_h1, ix, then ix_h1..ix_h9 (transit /31s of 100.64.1.0/24, see
# topologies/loader.py).
PATH4 = ["10.0.0.1", "100.64.0.1", "198.18.254.2", *(f"100.64.1.{2 * k - 1}" for k in range(1, 10))]
PATH6 = ["fd00:0:0:1::1", "2001:db8:7477::2", "2001:db8:18:254::2",
         *(f"2001:db8:7477:{0x100 + k - 1:x}::2" for k in range(1, 10))]


@pytest.fixture
def isp():
    tw("up", "isp", "--profile", "log-only", "--placement", "inline")
    yield active_run()
    tw("down")
    assert_nothing_left()


def answer(node: str, target: str, ttl: int, six: bool = False) -> str:
    """Who answered one ping with TTL *ttl*: the router's address (time
    exceeded), 'reply' (the target), or '' (nothing)."""
    res = in_node(node, f"ping {'-6 ' if six else ''}-n -c1 -W2 -t {ttl} {target}")
    if res.returncode == 0:
        return "reply"
    # iputils: "Time to live exceeded" (IPv4), "Time exceeded: Hop limit" (IPv6)
    m = re.search(r"From (\S+?):? icmp_seq=\d+ Time (?:to live|exceeded)", res.stdout)
    return m.group(1) if m else ""


def test_every_router_decrements_the_ttl_in_path_order(isp):
    for path, target, six in ((PATH4, WEB4, False), (PATH6, WEB6, True)):
        seen = [answer("c1", target, k, six) for k in range(1, len(path) + 1)]
        assert seen == path, "IPv6" if six else "IPv4"
        assert answer("c1", target, len(path) + 1, six) == "reply"
    # The routers behind whose interfaces the chains stand reach across them
    # (they send from an address the far side can answer, not the transit one).
    for node, target in (("isp", WEB4), ("isp", WEB6), ("ix", WEB4), ("ix", WEB6), ("ix", "10.0.0.11")):
        res = in_node(node, f"ping -c1 -W2 {target}")
        assert res.returncode == 0, f"{node} -> {target}: {res.stdout}"
    # inspect says how far: the chains and their routers.
    out = tw("inspect").stdout
    assert "hops isp:eth1 -> border: 1 router hop (isp_h1)" in out
    assert "hops ix:eth1 -> dc: 9 router hops (ix_h1 .. ix_h9)" in out


def test_a_ttl_limited_packet_reaches_the_censor_and_dies_before_the_server(isp):
    """SYNs from c1 with TTL 2, 3, 8, 10, 12 and 13 on their own ports:
    tcpdump on the middlebox's port and on the server's interface."""
    ttls = {2: 41002, 3: 41003, 8: 41008, 10: 41010, 12: 41012, 13: 41013}
    logs = Path(isp.log_dir)
    dumps = {}
    for node, iface in (("censor", "eth0"), ("web", "eth0")):
        out = logs / f"hops-{node}.txt"
        fh = out.open("w")
        dumps[node] = (subprocess.Popen(["ip", "netns", "exec", isp.netns_of(node), "tcpdump", "-l", "-n", "-v",
                                         "-i", iface, f"tcp and src host 10.0.0.11 and dst port 80 and "
                                                      f"tcp[tcpflags] & tcp-syn != 0"],
                                        stdout=fh, stderr=subprocess.PIPE, text=True), fh, out)
    try:
        for proc, _fh, _out in dumps.values():
            wait_for(lambda p=proc: "listening on" in (p.stderr.readline() or ""), 10, "tcpdump to start")
        sends = "; ".join(f"send(IP(dst='{WEB4}', ttl={ttl}) / TCP(sport={port}, dport=80, flags='S', seq=1), "
                          f"verbose=0)" for ttl, port in ttls.items())
        res = in_node("c1", f"{sys.executable} -c \"from scapy.all import IP, TCP, send; {sends}\"")
        assert res.returncode == 0, res.stderr

        def arrived(node):
            text = dumps[node][2].read_text()
            # tcpdump -v: "(tos 0x0, ttl 6, ... ) 10.0.0.11.41008 > 198.18.0.10.80: Flags [S]"
            return {int(port): int(ttl) for ttl, port in
                    re.findall(r"ttl (\d+),.*?\n?\s*10\.0\.0\.11\.(\d+) >", text, re.S)}
        # The censor sees every SYN that passes the two routers before the border.
        wait_for(lambda: set(arrived("censor")) >= set(ttls.values()) - {ttls[2]}, 10, "the SYNs at the censor")
        wait_for(lambda: ttls[13] in arrived("web"), 10, "the TTL-13 SYN at the server")
    finally:
        for proc, fh, _out in dumps.values():
            proc.terminate()
            proc.wait(timeout=10)
            fh.close()
    at_censor, at_web = arrived("censor"), arrived("web")
    # Each arrives with its TTL less the routers it passed: 2 before the censor, 12 before the server.
    assert at_censor == {port: ttl - 2 for ttl, port in ttls.items() if ttl >= 3}
    assert at_web == {ttls[13]: 1}
