"""Issue 34, live, under every profile, inline and tap: the QUIC Initial
whose CRYPTO frame has length 0 (Zohaib et al. 2025, Table 3, case 6) sent
through the border no longer stops the censor: gfw-2025 blocks it, as the
GFW did; a WireGuard initiation sent after it gets its verdict (the
middlebox is still reading packets, which in tap placement nothing else
shows); HTTPS through the border gets what it got before the datagram
(200, or the profile's own block). Before the fix every new connection
timed out after that one datagram."""

import pytest
from conftest import in_node, wait_for

from tunnelwall.controller.verdictlog import read as read_verdicts
from tunnelwall.middlebox.fidelity.quic_table3 import crypto_length_0

# The fetch names example.org (iran-2026 allowlists it): without an SNI that profile drops
# the fetch and penalises the client 60 s, and in tap placement the first fetch can finish
# before the drop is installed, so "before" would be a race, not the profile's answer.
FETCH = ("curl -sk -o /dev/null -w '%{http_code}' --connect-timeout 2 --max-time 4 "
         "--resolve example.org:443:198.18.0.10 https://example.org/bytes/1000")
SEND = ("python3 -c \"import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('', {sport})); "
        "s.sendto(bytes.fromhex('{hex}'), ('198.18.0.10', {dport}))\"")
WG_INITIATION = b"\x01\x00\x00\x00" + bytes(range(144))          # type 1, reserved zero, 148 bytes


def verdict_of(run, client_port: int, what: str) -> dict:
    (v,) = wait_for(lambda: [v for v in read_verdicts(run.files.verdict_log)
                             if v["flow"]["client_port"] == client_port], 10, what)
    return v


PROFILES = ["gfw-2025", "gfw-2022", "gfw-2025-08-443", "tspu-2021", "tspu", "tspu-2025", "iran-whitelist", "iran-2026",
            "log-only"]
CASES = [(["isp", "--profile", p, "--placement", placement], "quic-sni" if p == "gfw-2025" else None)
         for p in PROFILES for placement in ("inline", "tap")]


@pytest.mark.parametrize("run, quic_rule", CASES, indirect=["run"], ids=[f"{c[0][2]}-{c[0][4]}" for c in CASES])
def test_the_datagram_does_not_stop_the_censor(run, quic_rule):
    before = in_node("c2", FETCH).stdout              # what HTTPS gets under this profile (some block it)
    datagram = crypto_length_0("www.youtube.com")
    assert in_node("c1", SEND.format(sport=50123, dport=443, hex=datagram.hex())).returncode == 0
    if quic_rule:
        assert verdict_of(run, 50123, "the datagram's verdict")["rule"] == quic_rule
    assert in_node("c1", SEND.format(sport=50124, dport=51820, hex=WG_INITIATION.hex())).returncode == 0
    v = verdict_of(run, 50124, "a verdict on a packet sent after the datagram")
    assert v["protocol"] in ("wireguard", None), v     # None: an address rule decided first (iran-2026: all UDP)
    codes = [in_node("c2", FETCH).stdout for _ in range(4)]
    assert codes == [before] * 4, (before, codes)
    if run.profile in ("gfw-2025", "tspu-2025", "iran-2026", "log-only"):
        assert before == "200"
