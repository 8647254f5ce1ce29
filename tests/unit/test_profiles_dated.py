"""Today's censors (issue 14): dated profiles and the detections they use,
byte-exact through the engine."""

from __future__ import annotations

import hashlib
import struct

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6

from builders import handmade_client_hello, sni_extension
from test_app_classifiers import quic_initial
from test_integrity_vectors import Conn, eth, verdict
from tunnelwall.middlebox import profiles
from tunnelwall.middlebox.classifiers.dtls import parse_dtls_client_hello
from tunnelwall.middlebox.classifiers.fingerprint import ja3_string, ja4
from tunnelwall.middlebox.classifiers.tls import parse_client_hello
from tunnelwall.middlebox.engine import Engine
from tunnelwall.middlebox.inject import tcp_resets
from tunnelwall.middlebox.packet import parse_ethernet


def load(name: str, *overrides: str):
    return profiles.apply_overrides(profiles.load(name), list(overrides))


def rec(kind: int, length: int) -> bytes:
    return bytes((kind, 3, 3)) + length.to_bytes(2, "big") + b"\x00" * length


# -- the catalogue ----------------------------------------------------------------

def test_gfw_is_todays_gfw_and_the_fet_era_has_its_own_name():
    assert profiles.load("gfw").name == "gfw-2025"
    rules_2025 = {r.name for r in profiles.load("gfw-2025").rules}
    rules_2022 = {r.name for r in profiles.load("gfw-2022").rules}
    assert "fet" in rules_2022 and "fet" not in rules_2025 and "tls-in-tls" in rules_2025
    for name in ("gfw-2020", "gfw-2022", "gfw-2025", "gfw-2025-08-443", "tspu-2025", "iran-2026"):
        p = profiles.load(name)
        assert p.period and p.sources and all(r.source or r.action == "log" for r in p.rules if r.action != "allow"), name


def test_rules_read_in_words():
    words = {r.name: profiles.describe_rule(r) for r in profiles.load("tspu-2025").rules}
    assert "let 16384 bytes from the server through, then drop silently" in words["datacenter-freeze"]
    assert "signal ech sni cloudflare-ech.com" in words["ech"]
    iran = {r.name: profiles.describe_rule(r) for r in profiles.load("iran-2026").rules}
    assert "unless sni example.org (and 1 more)" in iran["sni-allowlist"]


# -- QUIC SNI, gfw-2025 ---------------------------------------------------------------

def quic_flow(engine, client, server, sport, dport, payloads):
    flow = None
    for i, payload in enumerate(payloads):
        ip = IPv6(src=client, dst=server) if ":" in client else IP(src=client, dst=server)
        flow = engine.feed(eth(ip / UDP(sport=sport, dport=dport) / payload), i * 0.01)
    return flow


def test_quic_sni_blocking_needs_sport_gt_dport_outbound_and_the_first_packet():
    blocked = quic_initial("www.youtube.com")
    assert verdict(quic_flow(Engine(load("gfw")), "10.0.0.11", "198.18.0.10", 50000, 443, [blocked])).rule == "quic-sni"
    # source port below destination port: identified, not blocked (Zohaib et al. 2025)
    low = quic_flow(Engine(load("gfw")), "10.0.0.11", "198.18.0.10", 400, 443, [blocked])
    assert low.protocol == "quic" and not low.blocking and verdict(low).action == "allow"
    # traffic entering the country: not blocked since 2025-03-13
    inbound = quic_flow(Engine(load("gfw")), "198.18.0.10", "10.0.0.11", 50000, 443, [blocked])
    assert inbound.protocol == "quic" and not inbound.blocking
    # a random UDP datagram first on the same 4-tuple: the Initial is not read
    flow = quic_flow(Engine(load("gfw")), "10.0.0.11", "198.18.0.10", 50000, 443, [b"\x17" * 30, blocked])
    assert not flow.blocking


# -- TLS-in-TLS -------------------------------------------------------------------------

def tunnel(conn: Conn, inner: bool):
    """An outer TLS 1.3 connection; inside it, a TLS handshake (*inner*) or a
    plain HTTP request. Returns the flow after the last record."""
    conn.handshake()
    hello = handmade_client_hello([sni_extension("cdn.example")])
    c = s = 0

    def client(data):
        nonlocal c
        flow = conn.data(c, data)
        c += len(data)
        return flow

    def server(data):
        nonlocal s
        conn.send("PA", seq=5001 + s, payload=data, reverse=True)
        s += len(data)

    client(hello)
    server(rec(0x16, 90) + rec(0x14, 1) + rec(0x17, 2000))
    if inner:       # bursts after the client's Finished: [555, 1204, 210, 3 x 1024]
        client(rec(0x14, 1) + rec(0x17, 53) + rec(0x17, 550))
        server(rec(0x17, 1199))
        client(rec(0x17, 205))
        for _ in range(3):
            server(rec(0x17, 1019))
        return conn.data(c, rec(0x17, 40))
    client(rec(0x14, 1) + rec(0x17, 53) + rec(0x17, 120))          # Finished, GET
    for _ in range(3):
        server(rec(0x17, 16000))
    return client(rec(0x17, 30))


def test_tls_in_tls_is_caught_and_plain_https_is_not():
    flow = tunnel(Conn(Engine(load("gfw", "tls-in-tls.probability=1")), dport=443), inner=True)
    v = verdict(flow)
    assert (v.rule, v.action) == ("tls-in-tls", "drop")
    # packets, not records, and the client's Finished (58 bytes) left out
    assert v.detection.detail["bursts"][:3] == [555, 1204, 210]
    plain = tunnel(Conn(Engine(load("gfw", "tls-in-tls.probability=1")), dport=443, sport=40001), inner=False)
    assert not plain.blocking and not any(d.protocol == "tls-in-tls" for d in plain.detections)


# -- tspu-2025 ---------------------------------------------------------------------------

def test_tls_to_a_listed_datacenter_freezes_after_16_kb():
    engine = Engine(load("tspu-2025"))
    conn = Conn(engine, dport=443)                  # 198.18.0.10: listed
    conn.handshake()
    v = verdict(conn.data(0, handmade_client_hello([sni_extension("site.example")])))
    assert v.action == "freeze" and v.after_bytes == 16384 and not engine.pending[-1].blocks
    sent = 0
    flow = None
    while sent < 20000:
        flow = conn.send("PA", seq=5001 + sent, payload=b"\x17" * 1400, reverse=True)
        sent += 1400
        if flow.blocking:
            break
    assert flow.blocking and 16384 <= sent < 16384 + 1400
    assert flow.verdict.action == "drop" and "frozen" in flow.verdict.note
    assert [x.action for x in engine.drain()] == ["freeze", "drop"]


def test_tls_to_an_unlisted_network_is_not_frozen():
    engine = Engine(load("tspu-2025"))
    conn = Conn(engine, dport=443)
    conn.v6 = False
    conn.ip = lambda reverse=False: IP(src="198.18.0.20", dst="10.0.0.11") if reverse else IP(src="10.0.0.11",
                                                                                              dst="198.18.0.20")
    conn.handshake()
    assert verdict(conn.data(0, handmade_client_hello([sni_extension("site.example")]))).action == "allow"


@pytest.mark.parametrize("sni,ech,blocked", [("cloudflare-ech.com", True, True), ("other.example", True, False),
                                             ("cloudflare-ech.com", False, False)])
def test_ech_is_blocked_only_with_the_cloudflare_sni(sni, ech, blocked):
    exts = [sni_extension(sni)] + ([(0xFE0D, b"\x00" * 40)] if ech else [])
    conn = Conn(Engine(load("tspu-2025")), dport=443)
    conn.ip = lambda reverse=False: IP(src="198.18.0.20", dst="10.0.0.11") if reverse else IP(src="10.0.0.11",
                                                                                              dst="198.18.0.20")
    conn.handshake()
    flow = conn.data(0, handmade_client_hello(exts))
    assert flow.blocking == blocked


# -- iran-2026 ----------------------------------------------------------------------------

def test_iran_2026_allowlists():
    engine = Engine(load("iran-2026"))
    v6 = engine.feed(eth(IPv6(src="fd00:0:0:1::11", dst="2001:db8:18::10") / UDP(sport=5000, dport=53) / b"x"), 0)
    assert verdict(v6).rule == "ipv6"
    assert verdict(engine.feed(eth(IP(src="10.0.0.11", dst="198.18.0.20") / UDP(sport=5000, dport=9) / b"x"), 0)).rule == "udp"
    allowed_udp = engine.feed(eth(IP(src="10.0.0.11", dst="198.18.0.10") / UDP(sport=5001, dport=9) / (b"x" * 20)), 0)
    assert not allowed_udp.blocking
    syn = engine.feed(eth(IP(src="10.0.0.11", dst="198.18.0.20") / TCP(sport=40000, dport=443, flags="S")), 0)
    assert verdict(syn).rule == "ip-allowlist"
    for sni, rule, action in (("www.example.org", None, "allow"), ("news.example", "sni-allowlist", "drop"),
                              ("twitter.com", "sni-blocklist", "reset")):
        conn = Conn(Engine(load("iran-2026")), dport=443)
        conn.handshake()
        v = verdict(conn.data(0, handmade_client_hello([sni_extension(sni)])))
        assert (v.rule, v.action) == (rule, action), sni
        if rule == "sni-allowlist":
            assert v.residual == 60


# -- gfw-2025-08-443 -----------------------------------------------------------------------

def test_port_443_event_resets_every_syn_with_three_shaped_rsts():
    engine = Engine(load("gfw-2025-08-443"))
    frame = eth(IP(src="10.0.0.11", dst="198.18.0.10") / TCP(sport=40000, dport=443, flags="S", seq=777))
    v = verdict(engine.feed(frame, 0))
    assert (v.action, v.resets) == ("reset", {"count": 3, "windows": [1980, 1982]})
    forged = [TCP(bytes(IP(f[14:]))[20:]) for f in tcp_resets(parse_ethernet(frame), **v.resets)]
    to_client = [t for t in forged if t.dport == 40000]
    assert [t.window for t in to_client] == [1980, 1981, 1982]
    assert all(t.flags == "RA" and t.ack == 778 for t in to_client)
    other = engine.feed(eth(IP(src="10.0.0.11", dst="198.18.0.10") / TCP(sport=40001, dport=80, flags="S")), 0)
    assert not other.blocking


# -- fingerprints and DTLS ------------------------------------------------------------------

def test_ja3_and_ja4_leave_out_grease_and_follow_their_definitions():
    exts = [(0x0A0A, b""), sni_extension("a.example"), (10, b"\x00\x04\x0a\x0a\x00\x1d"), (11, b"\x01\x00"),
            (13, b"\x00\x04\x04\x03\x08\x04"), (16, b"\x00\x03\x02h2"), (43, b"\x04\x1a\x1a\x03\x04")]
    hello = parse_client_hello(handmade_client_hello(exts))
    assert ja3_string(hello) == "771,4865,0-10-11-13-16-43,29,0"
    a, b, c = ja4(hello, "t").split("_")
    assert a == "t13d0106h2"                         # TLS 1.3, SNI, 1 cipher, 6 extensions, ALPN h2
    assert b == hashlib.sha256(b"1301").hexdigest()[:12]
    assert c == hashlib.sha256(b"000a,000b,000d,002b_0403,0804").hexdigest()[:12]


def dtls_client_hello(sni: str | None, version: int = 0xFEFD) -> bytes:
    exts = b"" if sni is None else struct.pack(">HH", 0, len(sni) + 5) + struct.pack(">HBH", len(sni) + 3, 0, len(sni)) + sni.encode()
    body = struct.pack(">H", version) + b"\x22" * 32 + b"\x00" + b"\x00" + b"\x00\x02\xc0\x2b" + b"\x01\x00"
    body += struct.pack(">H", len(exts)) + exts
    hs = b"\x01" + len(body).to_bytes(3, "big") + b"\x00\x00" + b"\x00\x00\x00" + len(body).to_bytes(3, "big") + body
    return b"\x16" + struct.pack(">H", 0xFEFF) + b"\x00\x00" + b"\x00" * 6 + struct.pack(">H", len(hs)) + hs


def test_dtls_client_hello_is_identified_with_its_fingerprint():
    hello = parse_dtls_client_hello(dtls_client_hello("vpn.example"))
    assert hello["sni"] == "vpn.example" and hello["ciphers"] == [0xC02B]
    engine = Engine(load("log-only"))
    flow = engine.feed(eth(IP(src="10.0.0.11", dst="198.18.0.20") / UDP(sport=50000, dport=443)
                           / dtls_client_hello("vpn.example")), 0)
    det = next(d for d in flow.detections if d.protocol == "dtls")
    assert det.detail["ja4"].startswith("dd2d010100_") and len(det.detail["ja3"]) == 32   # DTLS 1.2, SNI, 1 cipher, 1 ext
    assert parse_dtls_client_hello(b"\x16\xfe\xfd" + b"\x00" * 30) is None
