"""Snowflake's WebRTC flow as the censor sees it, from datagrams recorded in
the testbed (tcpdump on c1 during a tor-snowflake run, Snowflake 2.11.0,
pion/dtls v3.0.4): ICE's STUN checks first, in both directions, then the
proxy's DTLS ClientHello. tspu-2025 drops it by its JA4 (net4people/bbs 603,
from 2026-03-30); a DTLS hello of another fingerprint passes."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6

from test_integrity_vectors import eth, verdict
from test_profiles_dated import dtls_client_hello, load
from tunnelwall.middlebox.classifiers.dtls import is_stun, parse_dtls_client_hello
from tunnelwall.middlebox.classifiers.fingerprint import ja4
from tunnelwall.middlebox.engine import Engine

# The proxy's (2001:db8:18::10, outside) STUN Binding request to the client,
# the client's (fd00:0:0:1::11) Binding success response, and the proxy's
# DTLS 1.2 ClientHello (the SDP answerer is the DTLS client, RFC 5763).
PROXY_STUN = bytes.fromhex(
    "0001005c2112a44220b2c48c2684ac6fa3fa167d0006002147764562446e74566c705268434777743a7a457648555a7656734777"
    "644844765100000080290008ee33bb88aa79a805002400047effffff00080014d256342eac2125db7fc18dfb2002479a4ac2c01b"
    "80280004e1a70516")
CLIENT_STUN = bytes.fromhex(
    "010100382112a44220b2c48c2684ac6fa3fa167d002000140002cc150113a9fa20aac48c2684ac6fa3fa166d000800141e6f1d2c"
    "366c79abb472f4eeab308c520b5b402a80280004489b59c0")
PROXY_HELLO = bytes.fromhex(
    "16fefd0000000000000000007e010000720000000000000072fefd6b173a0e0acbb5dd4d31955e369bc5561edd9e8631886864a8"
    "0d7e0fc4c8b6b30000000cc02bc02fc00ac014c02cc0300100003c000d0010000e0403050306030401050106010807ff01000100"
    "000a00080006001d00170018000b00020100000e000900060008000700010000170000")
PION_JA4 = "dd2i060600_b94582744588_4bbccbffe950"
CLIENT, PROXY = "fd00:0:0:1::11", "2001:db8:18::10"


def datagram(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    return eth(IPv6(src=src, dst=dst) / UDP(sport=sport, dport=dport) / payload)


def snowflake_flow(engine: Engine, proxy_first: bool):
    """STUN both ways (who sent first decides the censor's "client"), then
    the proxy's ClientHello. Returns the flow after the hello."""
    to_client = datagram(PROXY, CLIENT, 60679, 59970, PROXY_STUN)
    to_proxy = datagram(CLIENT, PROXY, 59970, 60679, CLIENT_STUN)
    first, second = (to_client, to_proxy) if proxy_first else (to_proxy, to_client)
    engine.feed(first, 0.0)
    flow = engine.feed(second, 0.01)
    assert flow.verdict is None                                     # STUN alone decides nothing: still inspecting
    return engine.feed(datagram(PROXY, CLIENT, 60679, 59970, PROXY_HELLO), 0.05)


def test_recorded_hello_parses_to_pions_default_fingerprint():
    hello = parse_dtls_client_hello(PROXY_HELLO)
    assert hello is not None and hello["sni"] is None
    assert hello["ciphers"][:2] == [0xC02B, 0xC02F]             # ECDHE-ECDSA/RSA-AES128-GCM first
    assert ja4(hello, "d") == PION_JA4


def test_stun_is_told_from_dtls_by_its_magic_cookie():
    assert is_stun(PROXY_STUN) and is_stun(CLIENT_STUN)
    assert not is_stun(PROXY_HELLO)
    assert not is_stun(PROXY_STUN[:-4])                            # length field no longer fits
    assert not is_stun(PROXY_STUN[:4] + b"\x00" * 4 + PROXY_STUN[8:])   # no magic cookie


@pytest.mark.parametrize("proxy_first", [True, False], ids=["proxy-check-first", "client-check-first"])
def test_tspu_2025_drops_snowflakes_dtls_whichever_end_sent_first(proxy_first):
    flow = snowflake_flow(Engine(load("tspu-2025")), proxy_first)
    v = verdict(flow)
    assert v.rule == "snowflake-dtls" and v.action == "drop" and v.packet_index == 3
    det = next(d for d in flow.detections if d.protocol == "dtls")
    assert det.detail["ja4"] == PION_JA4
    assert det.detail["hello_from"] == ("client" if proxy_first else "server")


def test_log_only_logs_the_hello_and_lets_it_through():
    flow = snowflake_flow(Engine(load("log-only")), proxy_first=True)
    assert any(d.protocol == "dtls" and d.detail["ja4"] == PION_JA4 for d in flow.detections)
    assert (flow.verdict.action, flow.verdict.rule) == ("allow", None)


def test_another_dtls_fingerprint_passes_tspu_2025():
    engine = Engine(load("tspu-2025"))
    flow = engine.feed(eth(IP(src="10.0.0.11", dst="198.18.0.20") / UDP(sport=50000, dport=443)
                           / dtls_client_hello("vpn.example")), 0)
    assert any(d.protocol == "dtls" and d.detail["ja4"] != PION_JA4 for d in flow.detections)
    assert (flow.verdict.action, flow.verdict.rule) == ("allow", None)
