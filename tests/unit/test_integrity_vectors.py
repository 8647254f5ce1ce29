"""Holes in the emulation, each closed: byte-exact frames through the engine.

Every test builds the frames a client would send (scapy), feeds them to the
engine with a profile, and checks the verdict. The censor must not be
blind to split, reordered or overlapping segments, IPv6, IP fragments,
stacked VLAN tags or reused 5-tuples, and its TCP state machine must do what
the profile's ``tcp:`` says.
"""

from __future__ import annotations

import os
import random

import pytest
from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

from builders import handmade_client_hello, sni_extension
from tunnelwall.middlebox import profiles
from tunnelwall.middlebox.defrag import Defragmenter
from tunnelwall.middlebox.engine import Engine
from tunnelwall.middlebox.inject import tcp_resets
from tunnelwall.middlebox.packet import parse_ethernet
from tunnelwall.middlebox.stream import Stream

C4, S4 = "10.0.0.11", "198.18.0.10"
C6, S6 = "fd00:0:0:1::11", "fd00:198:18::10"
HELLO = handmade_client_hello([sni_extension("www.twitter.com"), (0x0017, b"")])
SNI_AT = HELLO.index(b"www.twitter.com")
HTTP_BLOCKED = b"GET / HTTP/1.1\r\nHost: www.twitter.com\r\nUser-Agent: t\r\n\r\n"
WG_INIT = b"\x01\x00\x00\x00" + bytes(range(4, 148))
ISN, SISN = 1000, 5000


def gfw(*overrides: str):
    return profiles.apply_overrides(profiles.load("gfw"), list(overrides))


def eth(l3, tags=()):
    frame = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    for layer in tags:
        frame = frame / layer
    return bytes(frame / l3)


class Conn:
    """A TCP connection as the censor sees it, v4 or v6."""

    def __init__(self, engine: Engine, v6: bool = False, sport: int = 40000, dport: int = 443, isn: int = ISN):
        self.engine, self.v6, self.sport, self.dport = engine, v6, sport, dport
        self.isn, self.t = isn, 0.0

    def ip(self, reverse=False):
        c, s = (C6, S6) if self.v6 else (C4, S4)
        src, dst = (s, c) if reverse else (c, s)
        return IPv6(src=src, dst=dst) if self.v6 else IP(src=src, dst=dst)

    def send(self, flags, seq=None, payload=b"", reverse=False, ack=None, **tcp):
        self.t += 0.001
        sport, dport = (self.dport, self.sport) if reverse else (self.sport, self.dport)
        seg = TCP(sport=sport, dport=dport, flags=flags, seq=self.isn + 1 if seq is None else seq,
                  ack=(SISN + 1 if not reverse else self.isn + 1) if ack is None else ack, **tcp)
        return self.engine.feed(eth(self.ip(reverse) / seg / Raw(payload) if payload else self.ip(reverse) / seg),
                                self.t)

    def handshake(self):
        self.send("S", seq=self.isn, ack=0)
        self.send("SA", seq=SISN, reverse=True)
        return self.send("A")

    def data(self, offset: int, payload: bytes, **kw):
        return self.send("PA", seq=self.isn + 1 + offset, payload=payload, **kw)


def verdict(flow):
    assert flow is not None and flow.verdict is not None, "no verdict"
    return flow.verdict


# -- TCP reassembly -------------------------------------------------------

@pytest.mark.parametrize("cuts", [[SNI_AT - 9], [SNI_AT + 3], [20, SNI_AT + 5], [5, 60, SNI_AT + 1, SNI_AT + 8]],
                         ids=["before-sni", "inside-name", "three-pieces", "five-pieces"])
@pytest.mark.parametrize("order", ["in-order", "reversed"])
def test_split_client_hello_is_reassembled_and_reset(cuts, order):
    conn = Conn(Engine(gfw()))
    conn.handshake()
    bounds = [0, *cuts, len(HELLO)]
    pieces = [(a, HELLO[a:b]) for a, b in zip(bounds, bounds[1:])]
    if order == "reversed":
        pieces.reverse()
    for offset, data in pieces:
        flow = conn.data(offset, data)
    v = verdict(flow)
    assert (v.rule, v.action) == ("sni-blocklist", "reset")
    assert v.detection.detail["sni"] == "www.twitter.com"


def test_without_reassembly_a_split_name_is_never_reported_short():
    """With ``tcp.reassemble=false`` each packet is read alone (a censor of
    the single-packet kind): the piece that ends inside the name yields no
    name at all, never the truncated 'www'."""
    conn = Conn(Engine(gfw("tcp.reassemble=false")))
    conn.handshake()
    flow = conn.data(0, HELLO[:SNI_AT + 3])
    conn.data(SNI_AT + 3, HELLO[SNI_AT + 3:])
    v = verdict(flow)
    assert v.action == "allow"
    assert all(d.detail.get("sni") is None for d in flow.detections if d.protocol == "tls")


def test_split_host_header_is_reassembled():
    conn = Conn(Engine(gfw()), dport=80)
    conn.handshake()
    conn.data(0, HTTP_BLOCKED[:12])                 # a 12-byte first segment
    flow = conn.data(12, HTTP_BLOCKED[12:30])       # ends inside the host name
    assert flow.verdict is None
    flow = conn.data(30, HTTP_BLOCKED[30:])
    assert (verdict(flow).rule, verdict(flow).action) == ("http-host", "reset")


@pytest.mark.parametrize("policy,sni", [("first", "x" * 15), ("last", "www.twitter.com")])
def test_overlapping_out_of_order_segments_follow_the_profile(policy, sni):
    """Segment 2 arrives twice before segment 1: a decoy, then the real
    bytes. Which copy the censor reads is ``tcp.overlap``."""
    conn = Conn(Engine(gfw(f"tcp.overlap={policy}")))
    conn.handshake()
    cut = SNI_AT - 9
    decoy = HELLO[cut:SNI_AT] + b"x" * 15 + HELLO[SNI_AT + 15:]
    conn.data(cut, decoy)
    conn.data(cut, HELLO[cut:])
    flow = conn.data(0, HELLO[:cut])
    assert [d.detail["sni"] for d in flow.detections if d.protocol == "tls"] == [sni]
    assert flow.blocking == (policy == "last")


def test_retransmission_of_delivered_bytes_changes_nothing():
    stream = Stream(limit=100, max_segments=4)
    stream.start(10)
    assert stream.add(10, b"abcd") == 4
    assert stream.add(10, b"XYZW") == 0             # already delivered: the first copy stands
    assert stream.add(12, b"cdef") == 2             # overlaps: only the new tail is added
    assert stream.data == b"abcdef"


def test_stream_bounds_and_sequence_wraparound():
    stream = Stream(limit=12, max_segments=2)
    stream.start(0xFFFFFFFE)
    assert stream.add(0xFFFFFFFE + 4 - 2**32, b"EF") == 0          # out of order across the wrap
    assert stream.add(0xFFFFFFFE, b"ABCD") == 6
    assert stream.data == b"ABCDEF" and stream.next == 4
    assert stream.add(2 + 2**31, b"far") == 0                      # outside the window: ignored
    assert stream.add(6, b"xy") == 0 and stream.add(8, b"zz") == 0 and stream.add(1, b"!!") == 0
    assert stream.add(0, b"12") == 0 and len(stream.waiting) == 2   # at most max_segments held
    assert stream.add(4, b"GHIJKL") == 6 and stream.full and stream.data == b"ABCDEFGHIJKL"


def test_client_hello_over_several_tls_records_is_a_switch():
    body = HELLO[5:]
    split = SNI_AT - 5 - 3
    two_records = (b"\x16\x03\x01" + len(body[:split]).to_bytes(2, "big") + body[:split]
                   + b"\x16\x03\x01" + len(body[split:]).to_bytes(2, "big") + body[split:])
    for records, expected in ((False, "allow"), (True, "reset")):
        profile = profiles.loads(f"""
name: sni-only
params: {{tls: {{records: {str(records).lower()}}}}}
rules:
  - {{name: sni, match: {{protocol: tls, sni: twitter.com}}, action: reset}}
""")
        conn = Conn(Engine(profile))
        conn.handshake()
        assert verdict(conn.data(0, two_records)).action == expected


# -- the censor's TCP model ---------------------------------------------------

def test_the_client_is_the_syn_sender_even_after_a_synack_sent_first():
    conn = Conn(Engine(gfw()), dport=80)
    conn.send("SA", seq=ISN - 500, ack=0)           # TCB turnaround attempt
    conn.handshake()
    flow = conn.data(0, HTTP_BLOCKED)
    assert verdict(flow).rule == "http-host"
    assert flow.client_port == 40000 and flow.server_port == 80


@pytest.mark.parametrize("flags", ["R", "RA", "FA"])
def test_insertion_rst_or_fin_tears_down_the_gfw_state(flags):
    """Geneva's TCB-teardown strategies (bad checksum, so the server drops
    the insertion packet): the GFW forgets the connection, the request passes."""
    conn = Conn(Engine(gfw()), dport=80)
    conn.handshake()
    conn.send(flags, chksum=0xDEAD)
    assert verdict(conn.data(0, HTTP_BLOCKED)).action == "allow"


def test_a_censor_that_checks_checksums_ignores_the_insertion():
    conn = Conn(Engine(gfw("tcp.check_checksum=true")), dport=80)
    conn.handshake()
    conn.send("R", chksum=0xDEAD)
    assert verdict(conn.data(0, HTTP_BLOCKED)).rule == "http-host"


def test_rst_ignore_and_resync():
    conn = Conn(Engine(gfw("tcp.rst=ignore")), dport=80)
    conn.handshake()
    conn.send("R")
    assert verdict(conn.data(0, HTTP_BLOCKED)).rule == "http-host"
    # resync: the next data packet's sequence number is the new base
    conn = Conn(Engine(gfw("tcp.rst=resync")), dport=80, sport=40001)
    conn.handshake()
    conn.send("R")
    assert verdict(conn.data(777, HTTP_BLOCKED)).rule == "http-host"


def test_md5_option_insertion_reaches_the_gfw_but_not_a_checking_censor():
    for check, expected in (("false", "allow"), ("true", "reset")):
        conn = Conn(Engine(gfw(f"tcp.check_md5={check}")), dport=80)
        conn.handshake()
        conn.send("R", options=[(19, b"\x00" * 16)])
        assert verdict(conn.data(0, HTTP_BLOCKED)).action == expected


def test_payload_on_a_syn_is_not_data():
    conn = Conn(Engine(gfw()), dport=80)
    conn.send("S", seq=ISN, ack=0, payload=b"GET / HTTP/1.1\r\nHost: harmless.example\r\n\r\n")
    conn.send("SA", seq=SISN, reverse=True)
    conn.send("A")
    assert verdict(conn.data(0, HTTP_BLOCKED)).rule == "http-host"


def test_second_syn_resynchronises_and_desyncs_the_stream():
    """A second SYN with another ISN re-bases the censor (GFW re-sync state):
    the real data, on the first ISN's numbering, is then out of its window."""
    conn = Conn(Engine(gfw()), dport=80)
    conn.handshake()
    conn.send("S", seq=ISN + 3_000_000, ack=0)
    flow = conn.data(0, HTTP_BLOCKED)
    assert flow.verdict is None and flow.detections == [] and flow.streams[0].data == b""
    conn = Conn(Engine(gfw("tcp.second_syn=ignore")), dport=80, sport=40002)
    conn.handshake()
    conn.send("S", seq=ISN + 3_000_000, ack=0)
    assert verdict(conn.data(0, HTTP_BLOCKED)).rule == "http-host"


def test_data_without_a_handshake_is_not_inspected_when_the_censor_requires_one():
    conn = Conn(Engine(gfw()), dport=80)
    v = verdict(conn.data(0, HTTP_BLOCKED))
    assert v.action == "allow" and "handshake" in v.note
    conn = Conn(Engine(gfw("tcp.require_syn=false")), dport=80)
    assert verdict(conn.data(0, HTTP_BLOCKED)).rule == "http-host"


# -- flow lifecycle -------------------------------------------------------------

def test_reused_five_tuple_is_a_new_flow_with_its_own_verdict():
    engine = Engine(gfw())
    conn = Conn(engine, dport=80)
    conn.handshake()
    first = conn.data(0, b"GET / HTTP/1.1\r\nHost: ok.example\r\n\r\n")
    assert verdict(first).action == "allow"
    conn.send("FA", seq=ISN + 100)
    conn.send("FA", seq=SISN + 1, reverse=True)
    again = Conn(engine, dport=80, isn=ISN + 1_000_000)
    again.handshake()
    second = again.data(0, HTTP_BLOCKED)
    assert second is not first and verdict(second).rule == "http-host"
    assert first.evicted == "replaced"


def test_idle_flows_expire_and_the_table_is_bounded():
    engine = Engine(gfw("flows.max=1000", "flows.idle_timeout=10"))
    rng = random.Random(3)
    for i in range(5000):
        payload = rng.randbytes(40)
        engine.feed(eth(IP(src=f"10.1.{i // 250}.{i % 250 + 1}", dst=S4) / UDP(sport=1024 + i, dport=9) / payload),
                    i * 0.001)
    assert engine.live == 1000 and len(engine.flows) == 2000
    assert engine.stats["evicted_full"] == 4000
    engine.feed(eth(IP(src=C4, dst=S4) / UDP(sport=1, dport=9) / (b"x" * 40)), 100.0)
    assert engine.live == 1 and engine.stats["evicted_idle"] == 1000


def test_busy_flow_survives_expiry_while_idle_ones_go():
    engine = Engine(gfw("flows.idle_timeout=10"))
    busy = eth(IP(src=C4, dst=S4) / UDP(sport=5000, dport=9) / (b"\x17" * 60))
    idle = eth(IP(src=C4, dst=S4) / UDP(sport=5001, dport=9) / (b"\x17" * 60))
    engine.feed(idle, 0.0)
    for t in range(0, 40):
        flow = engine.feed(busy, float(t))
    assert engine.live == 1 and flow.packets == 40 and not flow.evicted


# -- IPv6 -------------------------------------------------------------------------

def test_ipv6_sni_is_reset_and_the_forged_rst_is_ipv6():
    conn = Conn(Engine(gfw()), v6=True)
    conn.handshake()
    flow = conn.data(0, HELLO)
    assert (verdict(flow).rule, flow.id.client) == ("sni-blocklist", C6)
    trigger = parse_ethernet(eth(IPv6(src=C6, dst=S6) / TCP(sport=40000, dport=443, flags="PA", seq=ISN + 1) / HELLO))
    for frame in tcp_resets(trigger):
        pkt = Ether(frame)
        assert IPv6 in pkt and pkt[TCP].flags == "RA"
        sent = pkt[TCP].chksum
        del pkt[TCP].chksum
        assert Ether(bytes(pkt))[TCP].chksum == sent            # scapy computes the same checksum


def test_ipv6_wireguard_behind_extension_headers_is_dropped():
    engine = Engine(gfw())
    frame = eth(IPv6(src=C6, dst=S6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / UDP(sport=51000, dport=51820)
                / WG_INIT)
    v = verdict(engine.feed(frame, 1.0))
    assert (v.rule, v.action, v.flow.transport) == ("wireguard", "drop", "udp")


# -- IP fragments --------------------------------------------------------------------

@pytest.mark.parametrize("order", ["in-order", "reversed", "shuffled"])
def test_fragmented_wireguard_initiation_is_reassembled_and_dropped(order):
    engine = Engine(gfw())
    frags = fragment(IP(src=C4, dst=S4, id=77) / UDP(sport=51000, dport=51820) / WG_INIT, fragsize=48)
    assert len(frags) == 4
    if order == "reversed":
        frags.reverse()
    elif order == "shuffled":
        random.Random(5).shuffle(frags)
    results = [engine.feed(eth(f), i * 0.001) for i, f in enumerate(frags)]
    assert results[:-1] == [None] * 3 and engine.fragments and len(engine.fragments) == 4
    v = verdict(results[-1])
    assert (v.rule, v.action) == ("wireguard", "drop")


def test_overlapping_fragments_are_rejected_and_never_classified():
    engine = Engine(gfw())
    whole = bytes(IP(src=C4, dst=S4, id=9, proto=17) / UDP(sport=51000, dport=51820) / WG_INIT)[20:]
    first = IP(src=C4, dst=S4, id=9, proto=17, flags="MF", frag=0) / Raw(whole[:64])
    overlap = IP(src=C4, dst=S4, id=9, proto=17, flags="MF", frag=4) / Raw(whole[32:96])
    last = IP(src=C4, dst=S4, id=9, proto=17, frag=8) / Raw(whole[64:])
    assert [engine.feed(eth(p), 0.0) for p in (first, overlap, last)] == [None, None, None]
    assert engine.live == 0 and engine.defrag.stats["overlapping"] == 1


def test_ipv6_fragments_are_reassembled():
    engine = Engine(gfw())
    whole = bytes(UDP(sport=51000, dport=51820, len=8 + len(WG_INIT)) / WG_INIT)
    ip = IPv6(src=C6, dst=S6)
    a = ip / IPv6ExtHdrFragment(nh=17, id=5, offset=0, m=1) / Raw(whole[:80])
    b = ip / IPv6ExtHdrFragment(nh=17, id=5, offset=10, m=0) / Raw(whole[80:])
    assert engine.feed(eth(b), 0.0) is None
    assert verdict(engine.feed(eth(a), 0.01)).rule == "wireguard"


def test_unfinished_datagrams_expire_and_are_bounded():
    d = Defragmenter(timeout=1.0, max_datagrams=2)
    for ident in range(3):
        pkt = parse_ethernet(eth(IP(src=C4, dst=S4, id=ident, proto=17, flags="MF") / Raw(b"x" * 16)))
        assert d.add(pkt, 0.0) == (None, [])
    assert len(d.pending) == 2 and d.stats["over_limit"] == 1
    pkt = parse_ethernet(eth(IP(src=C4, dst=S4, id=9, proto=17, flags="MF") / Raw(b"x" * 16)))
    d.add(pkt, 5.0)
    assert d.stats["expired"] == 2 and len(d.pending) == 1


# -- VLAN ----------------------------------------------------------------------------

def test_stacked_vlan_tags_are_parsed_and_kept_on_injected_packets():
    tags = (Dot1AD(vlan=100), Dot1Q(vlan=200))
    frame = eth(IP(src=C4, dst=S4) / TCP(sport=40000, dport=443, flags="PA", seq=5, ack=9) / HELLO, tags)
    pkt = parse_ethernet(frame)
    assert pkt is not None and pkt.dport == 443 and len(pkt.vlan) == 8
    for forged in tcp_resets(pkt):
        parsed = Ether(forged)
        assert parsed[Dot1AD].vlan == 100 and parsed[Dot1Q].vlan == 200 and parsed[TCP].flags == "RA"
    engine = Engine(gfw("tcp.require_syn=false"))
    assert verdict(engine.feed(frame, 0.0)).rule == "sni-blocklist"


def test_too_many_vlan_tags_are_refused_not_crashed():
    frame = eth(IP(src=C4, dst=S4) / UDP() / b"x", tuple(Dot1Q(vlan=i) for i in range(1, 10)))
    assert parse_ethernet(frame) is None
    assert parse_ethernet(os.urandom(3) + frame[3:20]) is None


# -- inspection budgets ----------------------------------------------------------------

def test_openvpn_ack_filter_gets_its_packets_through_the_engine():
    """The ACK filter needs 100 client data packets; the profile inspects
    100 packets in all. The classifier's own budget keeps the flow open."""
    text = open(profiles.load("gfw").source).read().replace(
        "openvpn: {handshake: true, opcode_sequence: true}",
        "openvpn: {handshake: false, opcode_sequence: false, ack_filter: true}")
    engine = Engine(profiles.loads(text))
    conn = Conn(engine, dport=443)
    conn.handshake()
    rng = random.Random(1)
    hello = handmade_client_hello([sni_extension("cdn.example")])
    # A TLS tunnel carrying OpenVPN: the 3rd client packet's size (66) is the
    # ACK size; ACK-sized packets per 10-packet bin as the paper's filter expects.
    sizes = [len(hello), 300, 66, 120, 66, 500, 800, 900, 1000, 1100]
    sizes += [66, 200, 66, 300, 66, 400, 500, 600, 700, 800]
    sizes += [66] * 3 + [1300] * 7 + [66] * 2 + [1300] * 8 + [66] * 2 + [1300] * 8
    sizes += [1300] * 50
    offset, flow = 0, None
    for i, size in enumerate(sizes):
        flow = conn.data(offset, hello if i == 0 else rng.randbytes(size))
        offset += size
        conn.send("A", reverse=True, seq=SISN + 1, ack=ISN + 1 + offset)
        if flow.verdict is not None:
            break
    v = verdict(flow)
    assert v.rule == "openvpn" and v.detection.signal == "ack-pattern" and flow.c2s_data == 100


# -- issue 33: a new connection on a reused 5-tuple ----------------------------------

@pytest.mark.parametrize("profile", ["gfw-2020", "gfw-2025"])
@pytest.mark.parametrize("rst_first", [True, False])
def test_fake_synack_then_the_real_syn_is_still_censored(profile, rst_first):
    """Geneva's strategy 23 (3 % in China): the client's SYN/ACK, the real SYN
    with the same ISN; the server's RST for the SYN/ACK reaches the censor
    before or after the SYN. A RST that does not acknowledge the SYN is not
    acceptable in SYN-SENT (RFC 793) and tears nothing down."""
    engine = Engine(profiles.apply_overrides(profiles.load(profile), ["http-host.residual=0"]))
    conn = Conn(engine, dport=80)
    conn.send("SA", seq=ISN, ack=0)
    if rst_first:
        conn.send("R", seq=0, ack=0, reverse=True)
    conn.send("S", seq=ISN, ack=0)
    if not rst_first:
        conn.send("R", seq=0, ack=0, reverse=True)
    conn.send("SA", seq=SISN, reverse=True)
    conn.send("A")
    assert verdict(conn.data(0, HTTP_BLOCKED)).rule == "http-host"


def test_a_server_rst_that_acknowledges_the_syn_still_closes_it():
    engine = Engine(gfw())
    conn = Conn(engine, dport=80)
    conn.send("S", seq=ISN, ack=0)
    flow = conn.send("RA", seq=0, ack=ISN + 1, reverse=True)
    assert flow.closed and verdict(flow).action == "allow"       # refused: nothing left to inspect


def test_closed_allowed_flows_are_not_offloaded_and_replaced_ones_are_retracted():
    from tunnelwall.middlebox.enforcer import Enforcer, held_syn, must_retract
    engine = Engine(gfw())
    conn = Conn(engine, dport=80)
    conn.handshake()
    flow = conn.data(0, b"GET / HTTP/1.1\r\nHost: www.example.org\r\n\r\n")
    enforcer = Enforcer(port=None, bypass_vlan=4093)
    assert verdict(flow).action == "allow" and enforcer.bypassed(flow)
    conn.send("R", seq=ISN + 100)
    assert flow.closed and not enforcer.bypassed(flow)            # a tagged RST would mark the tracker
    assert must_retract(flow, [0.0, 0]) is False                  # not replaced yet
    conn.send("S", seq=ISN + 5_000_000, ack=0)                    # a new connection on the 5-tuple
    assert flow.evicted == "replaced"
    assert must_retract(flow, [0.0, 0]) and not must_retract(flow, [0.0, 40]) and not must_retract(flow, None)
    syn = eth(IP(src=C4, dst=S4) / TCP(sport=40000, dport=80, flags="S"))
    assert held_syn(syn) and not held_syn(eth(IP(src=C4, dst=S4) / TCP(sport=40000, dport=80, flags="SA")))
