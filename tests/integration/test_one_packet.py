"""Issue 34, live: the QUIC Initial whose CRYPTO frame has length 0 (Zohaib
et al. 2025, Table 3, case 6) sent through the border no longer stops the
censor: gfw-2025 blocks it, as the GFW did; a WireGuard initiation sent
after it gets its verdict (the middlebox is still reading packets, which in
tap placement nothing else shows); HTTPS through the border keeps working.
Before the fix every new connection timed out after that one datagram."""

import pytest
from conftest import assert_nothing_left, in_node, tw, wait_for

from tunnelwall.base.runstate import active_run
from tunnelwall.controller.verdictlog import read as read_verdicts
from tunnelwall.middlebox.fidelity.quic_table3 import crypto_length_0

FETCH = "curl -sk -o /dev/null -w '%{http_code}' --connect-timeout 2 --max-time 4 https://198.18.0.10/bytes/1000"
SEND = ("python3 -c \"import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('', {sport})); "
        "s.sendto(bytes.fromhex('{hex}'), ('198.18.0.10', {dport}))\"")
WG_INITIATION = b"\x01\x00\x00\x00" + bytes(range(144))          # type 1, reserved zero, 148 bytes


@pytest.fixture
def run(request):
    tw("up", *request.param)
    yield active_run()
    tw("down")
    assert_nothing_left()


def verdict_of(run, client_port: int, what: str) -> dict:
    (v,) = wait_for(lambda: [v for v in read_verdicts(run.files.verdict_log)
                             if v["flow"]["client_port"] == client_port], 10, what)
    return v


@pytest.mark.parametrize("run, quic_rule", [
    (["isp", "--profile", "gfw-2025", "--placement", "inline"], "quic-sni"),
    (["isp", "--profile", "gfw-2025", "--placement", "tap"], "quic-sni"),
    (["isp", "--profile", "tspu-2025", "--placement", "inline"], None),
    (["isp", "--profile", "log-only", "--placement", "tap"], None),
], indirect=["run"], ids=["gfw-2025-inline", "gfw-2025-tap", "tspu-2025-inline", "log-only-tap"])
def test_the_datagram_does_not_stop_the_censor(run, quic_rule):
    datagram = crypto_length_0("www.youtube.com")
    assert in_node("c1", SEND.format(sport=50123, dport=443, hex=datagram.hex())).returncode == 0
    if quic_rule:
        assert verdict_of(run, 50123, "the datagram's verdict")["rule"] == quic_rule
    assert in_node("c1", SEND.format(sport=50124, dport=51820, hex=WG_INITIATION.hex())).returncode == 0
    v = verdict_of(run, 50124, "a verdict on a packet sent after the datagram")
    assert (v["protocol"], v["rule"]) == ("wireguard", "wireguard"), v
    codes = [in_node(node, FETCH).stdout for node in ("c1", "c2", "c2", "c1")]
    assert codes == ["200"] * 4, codes
