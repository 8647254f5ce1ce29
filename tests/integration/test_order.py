"""Issue 33, item 3, on the live testbed: packets of one flow sent back to
back reach the middlebox in the order they were sent, inline and tap.

c1 sends 1,000 insertion + request pairs (wire.py pairs: the shapes of
Geneva's strategies 1 and 23 and of an insertion RST), each pair on its own
5-tuple, microseconds apart; tcpdump on the middlebox's port records what
arrives; a pair whose second packet (IP ID 2) arrives before its first is a
reordering. Goal: none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import assert_nothing_left, in_node, tw, wait_for

from tunnelwall.base.runstate import active_run

WIRE = f"{sys.executable} {Path(__file__).with_name('wire.py')}"
WEB4, C1 = "198.18.0.10", "10.0.0.11"
PAIRS = 1000


# Tap reorders a few pairs in 1,000 (5 measured on 2026-12-07; inline 0; with
# the router hops in front of the border, 2026-12-08: none in 2 runs of 3, some in the third):
# Open vSwitch's userspace datapath runs a receive batch's packets grouped
# by datapath flow, exact-match-cache hits first, then classifier hits,
# while a miss is executed at once during its upcall
# (lib/dpif-netdev.c, fast_path_processing/handle_packet_upcall). In tap
# the insertion (a SYN/ACK: tracker lookup and recirculation) and the real
# packet (a SYN: straight to the middlebox) take different datapath flows.
# Not fixed yet (issue 33 item 3): the test says so until it is.
TAP_REORDERS = pytest.mark.xfail(reason="tap: the userspace datapath reorders packets of one flow that take "
                                        "different datapath flows (issue 33 item 3, open)", strict=False)


@pytest.fixture(params=["inline", pytest.param("tap", marks=TAP_REORDERS)])
def censor(request):
    tw("up", "isp", "--profile", "log-only", "--placement", request.param)
    yield active_run()
    tw("down")
    assert_nothing_left()


def reorderings(pcap: Path, ports: set[int]) -> tuple[int, int]:
    """(pairs seen whole, pairs whose IP ID 2 arrived before IP ID 1)."""
    from scapy.layers.inet import IP, TCP
    from scapy.utils import PcapReader
    order: dict[int, list[int]] = {}
    with PcapReader(str(pcap)) as reader:
        for pkt in reader:
            if IP in pkt and TCP in pkt and pkt[IP].src == C1 and pkt[TCP].sport in ports:
                order.setdefault(pkt[TCP].sport, []).append(pkt[IP].id)
    whole = [ids for ids in order.values() if 1 in ids and 2 in ids]
    return len(whole), sum(ids.index(2) < ids.index(1) for ids in whole)


def test_back_to_back_pairs_reach_the_middlebox_in_order(censor):
    pcap = Path(censor.log_dir) / "order.pcap"
    ns = censor.netns_of("censor")
    dump = subprocess.Popen(["ip", "netns", "exec", ns, "tcpdump", "-i", "eth0", "-U", "-w", str(pcap),
                             "-s", "96", f"tcp and src host {C1} and dst port 80"], stderr=subprocess.PIPE)
    try:
        wait_for(lambda: pcap.exists() and pcap.stat().st_size >= 24, 10, "tcpdump on the middlebox's port")
        gw_mac = censor.layout.nodes["isp"].interfaces["eth0"].mac
        res = in_node("c1", f"{WIRE} pairs {WEB4} {gw_mac} {PAIRS}", timeout=120)
        assert res.returncode == 0, res.stderr
        ports = {int(p) for p in res.stdout.split()}
        assert len(ports) == PAIRS
        wait_for(lambda: reorderings(pcap, ports)[0] >= PAIRS * 0.99, 20, "the pairs at the middlebox")
    finally:
        dump.terminate()
        dump.wait(timeout=10)
    seen, reordered = reorderings(pcap, ports)
    print(f"{censor.placement}: {seen} pairs at the middlebox, {reordered} reordered")
    assert reordered == 0
