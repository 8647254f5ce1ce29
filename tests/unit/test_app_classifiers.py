"""TLS, Tor, QUIC, DNS, SSH and HTTP classifiers from bytes."""

import os
import struct

from builders import C2S, DONE, TCP, client_hello, handmade_client_hello, run, sni_extension

from tunnelwall.middlebox.classifiers.plaintext import DNS, HTTP, SSH, parse_dns_query
from tunnelwall.base.quic import client_initial_keys, initial_packet
from tunnelwall.middlebox.classifiers.quic import QUIC, decrypt_initial
from tunnelwall.middlebox.classifiers.tls import TLS, Tor, parse_client_hello


def test_real_client_hello_sni_and_alpn():
    hello = parse_client_hello(client_hello("www.example.org", ["h2", "http/1.1"]))
    assert hello["sni"] == "www.example.org" and hello["alpn"] == ["h2", "http/1.1"]
    result, _ = run(TLS(), [(C2S, client_hello("blocked.example"))], proto=TCP)
    assert result.signal == "client-hello" and result.detail["sni"] == "blocked.example"


def test_esni_and_ech_extensions():
    esni = handmade_client_hello([sni_extension("a.example"), (0xFFCE, b"\x00" * 8)])
    ech = handmade_client_hello([(0xFE0D, b"\x00" * 8)])
    assert run(TLS(), [(C2S, esni)], proto=TCP)[0].signal == "esni"
    assert run(TLS(), [(C2S, ech)], proto=TCP)[0].signal == "ech"


def test_truncated_client_hello_never_yields_a_short_name():
    full = client_hello("www.example.org")
    names = set()
    for cut in range(0, len(full), 7):
        hello = parse_client_hello(full[:cut])
        if hello is not None:
            names.add(hello["sni"])
            assert hello["truncated"] or cut >= len(full)
    assert names == {None, "www.example.org"}          # a name appears whole once all its bytes are there


def test_not_tls():
    assert run(TLS(), [(C2S, b"GET / HTTP/1.1\r\n\r\n")], proto=TCP)[0] is DONE


def test_tor_sni_heuristic():
    tor_like = handmade_client_hello([sni_extension("www.q3fpkrg5shdq.com")])
    assert run(Tor(), [(C2S, tor_like)], proto=TCP)[0].protocol == "tor"
    assert run(Tor(), [(C2S, client_hello("www.wikipedia.org", ["h2"]))], proto=TCP)[0] is DONE


# -- QUIC: build a client Initial with the RFC 9001 procedure, then decrypt it


def quic_initial(sni: str, dcid: bytes = bytes.fromhex("8394c8f03e515708")) -> bytes:
    record = handmade_client_hello([sni_extension(sni)])
    return initial_packet(record[5:], dcid)          # CRYPTO frames carry no record layer


def test_quic_keys_match_rfc9001_appendix_a():
    key, iv, hp = client_initial_keys(bytes.fromhex("8394c8f03e515708"))
    assert key.hex() == "1f369613dd76d5467730efcbe3b1a22d"
    assert iv.hex() == "fa044b2f42a3fd3b46fb255c"
    assert hp.hex() == "9f50449e04a0e810283a1e9933adedd2"


def test_quic_initial_sni():
    packet = quic_initial("www.youtube.com")
    assert decrypt_initial(packet)[0] == 0x01
    result, _ = run(QUIC(), [(C2S, packet)], cport=50000, sport=443)
    assert result.protocol == "quic" and result.detail["sni"] == "www.youtube.com"


def test_quic_port_order_is_a_rule_matter_unless_asked():
    """The GFW reads QUIC only when sport > dport; the profiles say so in the
    rule (sport_gt_dport). The classifier identifies QUIC either way, unless
    its own parameter asks for the censor's blind spot."""
    packet = quic_initial("www.youtube.com")
    assert run(QUIC(), [(C2S, packet)], cport=400, sport=443)[0].protocol == "quic"
    assert run(QUIC({"require_sport_gt_dport": True}), [(C2S, packet)], cport=400, sport=443)[0] is DONE


def test_quic_corrupted_is_not_quic():
    packet = bytearray(quic_initial("x.example"))
    packet[-1] ^= 1
    assert decrypt_initial(bytes(packet)) is None


def dns_query(name: str, qtype: int = 1) -> bytes:
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
    return struct.pack(">6H", 0x1234, 0x0100, 1, 0, 0, 0) + q + struct.pack(">HH", qtype, 1)


def test_dns_query():
    assert parse_dns_query(dns_query("www.twitter.com"))["qname"] == "www.twitter.com"
    result, _ = run(DNS(), [(C2S, dns_query("WWW.Example.ORG"))], sport=53)
    assert result.detail == {"qname": "www.example.org", "qtype": 1}


def test_dns_with_scapy_and_responses_are_not_queries():
    from scapy.layers.dns import DNS as ScapyDNS, DNSQR, DNSRR
    query = bytes(ScapyDNS(rd=1, qd=DNSQR(qname="a.example")))
    assert parse_dns_query(query)["qname"] == "a.example"
    answer = bytes(ScapyDNS(qr=1, qd=DNSQR(qname="a.example"), an=DNSRR(rrname="a.example", rdata="1.2.3.4")))
    assert parse_dns_query(answer) is None
    assert parse_dns_query(os.urandom(40)) is None


def test_ssh_banner_either_direction():
    result, index = run(SSH(), [(1, b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")], proto=TCP, sport=22)
    assert result.protocol == "ssh" and result.detail["banner"].startswith("SSH-2.0-OpenSSH") and index == 1
    assert run(SSH(), [(C2S, b"hello"), (1, b"world")], proto=TCP)[0] is DONE


def test_http_host():
    req = b"GET /x HTTP/1.1\r\nUser-Agent: t\r\nHost: WWW.Twitter.com:8080\r\n\r\n"
    result, _ = run(HTTP(), [(C2S, req)], proto=TCP, sport=80)
    assert result.detail["host"] == "www.twitter.com"
    assert run(HTTP(), [(C2S, b"\x16\x03\x01")], proto=TCP)[0] is DONE
