"""Zohaib et al. 2025, Table 3: the ten QUIC Initials as byte vectors and
what the GFW did with each; the QUIC classifier plus gfw-2025 agree on all
ten (issue 28, item 2)."""

from __future__ import annotations

import pytest

from tunnelwall.middlebox import profiles
from tunnelwall.middlebox.classifiers.quic import QUIC, open_initial
from tunnelwall.middlebox.engine import Engine
from tunnelwall.middlebox.fidelity import quic_table3
from tunnelwall.middlebox.fidelity.quic_table3 import VECTORS, emulate
from tunnelwall.middlebox.packet import UDP, Packet, ip_bytes
from builders import C2S, run

BY_NAME = {v.name: v for v in VECTORS}


def test_the_ten_cases_and_their_published_outcomes():
    assert [v.case for v in VECTORS] == list(range(1, 11))
    assert {v.name for v in VECTORS if v.blocked} == {"pn-1-byte", "cids-empty", "crypto-length-0"}
    assert all("USENIX Security 2025" in v.source for v in VECTORS)


def test_vectors_are_built_as_the_paper_describes():
    one = BY_NAME["pn-1-byte"].build("google.com")
    assert open_initial(one)[:4] == b"\x06\x00\x40\x42"                # one CRYPTO frame, its 2-byte length (66)
    assert BY_NAME["last-byte-removed"].build("google.com") == one[:-1]
    v2_v1 = BY_NAME["version-2-v1-keys"].build("google.com")
    assert v2_v1[1:5] == b"\x00\x00\x00\x02" and v2_v1[5:] == one[5:]
    assert BY_NAME["cids-empty"].build("google.com")[5:7] == b"\x00\x00"
    assert BY_NAME["cid-length-255"].build("google.com")[5] == 255
    assert open_initial(BY_NAME["crypto-length-0"].build("google.com"))[:8] == b"\x06\x00\x00\x00\x01\x00\x00\x3e"
    mixed = BY_NAME["crypto-among-ping-padding"].build("google.com")
    assert len(mixed) == 1250 and open_initial(mixed)[:2] == b"\x01\x00" and open_initial(mixed)[-3:] == b"\x01\x01\x01"
    assert BY_NAME["quic-v2"].build("google.com")[1:5] == bytes.fromhex("6b3343cf")
    assert BY_NAME["quic-v2"].build("google.com")[0] & 0x30 == 0x10      # v2's Initial type bits


def test_gfw_2025_agrees_with_every_published_outcome():
    outcomes = emulate(profiles.load("gfw-2025"))
    table = "\n".join(f"{o.vector.case:2} {o.vector.name:26} published {'blocked' if o.vector.blocked else 'passed':7} "
                      f"emulated {'blocked' if o.blocked else 'passed':7} {o.rule or '-'}" for o in outcomes)
    assert all(o.agrees for o in outcomes), table
    assert {o.rule for o in outcomes if o.blocked} == {"quic-sni"}


def test_the_same_with_another_blocked_name():
    assert all(o.agrees for o in emulate(profiles.load("gfw-2025"), name="www.youtube.com"))


def test_ech_the_outer_name_decides():
    """Case 9 passes because its outer SNI (cloudflare-ech.com) is not on the
    list; the same construction with a listed outer name is blocked."""
    hello = quic_table3.hello_message([quic_table3.ech_outer_extension(b"\x42" * 200),
                                       quic_table3.sni_extension("www.youtube.com")])
    packet = quic_table3._initial(quic_table3.crypto_frame(hello), dcid=b"", scid=b"")
    result, _ = run(QUIC({"first_frame_only": True}), [(C2S, packet)], cport=50000)
    assert (result.signal, result.detail["sni"]) == ("ech", "www.youtube.com")
    engine = Engine(profiles.load("gfw-2025"))
    flow = engine.feed_packet(Packet(ip_bytes("10.0.0.11"), ip_bytes("198.18.0.10"), UDP, 50000, 443, packet), 0.0)
    assert flow.verdict.rule == "quic-sni"


@pytest.mark.parametrize("name", ["crypto-among-ping-padding", "crypto-length-0"])
def test_a_standard_reader_differs_from_the_gfw_on_the_frame_cases(name):
    """The frame cases are where the GFW's reading departs from RFC 9000:
    the default classifier (what TSPU profiles use) reads the other way."""
    packet = BY_NAME[name].build("google.com")
    standard, _ = run(QUIC(), [(C2S, packet)], cport=50000)
    gfw, _ = run(QUIC({"first_frame_only": True}), [(C2S, packet)], cport=50000)
    found = {"standard": getattr(standard, "detail", {}).get("sni"), "gfw": getattr(gfw, "detail", {}).get("sni")}
    if name == "crypto-among-ping-padding":
        assert found == {"standard": "www.google.com", "gfw": None}
    else:
        assert found == {"standard": None, "gfw": "google.com"}


def test_only_the_first_packet_of_a_4_tuple_is_read():
    engine = Engine(profiles.load("gfw-2025"))
    client, server = ip_bytes("10.0.0.11"), ip_bytes("198.18.0.10")
    engine.feed_packet(Packet(client, server, UDP, 50000, 443, b"hello world"), 0.0)
    flow = engine.feed_packet(Packet(client, server, UDP, 50000, 443, BY_NAME["pn-1-byte"].build("google.com")), 1.0)
    assert not flow.blocking


def udp_frame(payload: bytes) -> bytes:
    from scapy.layers.inet import IP, UDP as ScapyUDP
    from scapy.layers.l2 import Ether
    return bytes(Ether() / IP(src="10.0.0.11", dst="198.18.0.10") / ScapyUDP(sport=50000, dport=443) / payload)


@pytest.mark.parametrize("via", ["packet", "frame"])
@pytest.mark.parametrize("gap, blocked", [(59.0, False), (61.0, True)])
def test_a_4_tuple_is_remembered_for_60_seconds(gap, blocked, via):
    """The GFW keeps a UDP 4-tuple for 60 s after its last packet (the
    paper's artifact, flow-tracking-time): a datagram, then the Initial
    59 s later is still the flow's second packet (not read); 61 s later it
    is a new flow's first packet (read, blocked). As a frame, the Initial
    meets the decided flow on the fast path, which expires idle flows first."""
    engine = Engine(profiles.load("gfw-2025"))
    client, server = ip_bytes("10.0.0.11"), ip_bytes("198.18.0.10")
    initial = BY_NAME["pn-1-byte"].build("google.com")
    if via == "packet":
        first = engine.feed_packet(Packet(client, server, UDP, 50000, 443, b"hello world"), 0.0)
        flow = engine.feed_packet(Packet(client, server, UDP, 50000, 443, initial), gap)
    else:
        first = engine.feed(udp_frame(b"hello world"), 0.0)
        flow = engine.feed(udp_frame(initial), gap)
    assert first.done and not first.blocking
    assert (flow is not first, flow.blocking) == (blocked, blocked)


def test_tcp_flows_keep_the_profiles_idle_time():
    profile = profiles.load("gfw-2025")
    assert (profile.flows.udp_idle_timeout, profile.flows.idle_timeout) == (60, 300.0)
    engine = Engine(profile)
    client, server = ip_bytes("10.0.0.11"), ip_bytes("198.18.0.10")
    syn = engine.feed_packet(Packet(client, server, 6, 50000, 443, b"", flags=0x02, seq=1), 0.0)
    later = engine.feed_packet(Packet(client, server, 6, 50000, 443, b"x", flags=0x18, seq=2), 200.0)
    assert later is syn
