"""The C walk (middlebox/_fastpath.c) against the pure-Python loop: the same
capture gives byte-for-byte the same flows, counts and stats either way.

The capture mixes what the walk must hand back to Python: SYN/FIN/RST,
undecided flows, IPv4 options and fragments, VLAN tags, non-IP frames,
IPv6, a flow whose server bytes are counted towards a freeze (tspu-2025),
idle gaps past the expiry deadline, a big-endian file and a truncated last
record."""

from __future__ import annotations

import json
import os
import shutil
import struct
import sysconfig

import pytest

from tunnelwall.base.tlshello import client_hello
from tunnelwall.middlebox import offline, profiles
from tunnelwall.middlebox.offline import classify_pcap

MAC = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02"


def ipv4(src: str, dst: str, proto: int, l4: bytes, options: bytes = b"", frag: int = 0) -> bytes:
    ihl = 5 + len(options) // 4
    head = struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(l4), 7, frag, 64, proto, 0,
                       bytes(map(int, src.split("."))), bytes(map(int, dst.split("."))))
    return MAC + b"\x08\x00" + head + options + l4


V6 = {"c": bytes.fromhex("20010db800000000000000000000000b"), "s": bytes.fromhex("20010db800180000000000000000000a")}


def ipv6(src: str, dst: str, proto: int, l4: bytes) -> bytes:
    """Between the client ("c") and the server ("s") of the IPv6 flow."""
    return MAC + b"\x86\xdd" + struct.pack(">IHBB16s16s", 0x60000000, len(l4), proto, 64, V6[src], V6[dst]) + l4


def tcp(sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes = b"") -> bytes:
    return struct.pack(">HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50, flags, 65535, 0, 0) + payload


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload


def tcp_flow(make, c: str, s: str, cport: int, sport: int, first: bytes, replies: int, size: int, end: int):
    """A TCP connection: handshake, a first payload, *replies* server
    segments of *size* bytes with client ACKs, then FIN (end=1) or RST (2)."""
    cs, ss = 1000 + cport, 90000 + cport
    out = [make(c, s, tcp(cport, sport, cs, 0, 0x02)), make(s, c, tcp(sport, cport, ss, cs + 1, 0x12)),
           make(c, s, tcp(cport, sport, cs + 1, ss + 1, 0x10))]
    cs, ss = cs + 1, ss + 1
    out.append(make(c, s, tcp(cport, sport, cs, ss, 0x18, first)))
    cs += len(first)
    for i in range(replies):
        out.append(make(s, c, tcp(sport, cport, ss, cs, 0x18, bytes([i % 251]) * size)))
        ss += size
        out.append(make(c, s, tcp(cport, sport, cs, ss, 0x10)))
    if end == 1:
        out += [make(c, s, tcp(cport, sport, cs, ss, 0x11)), make(s, c, tcp(sport, cport, ss, cs + 1, 0x11)),
                make(c, s, tcp(cport, sport, cs + 1, ss + 1, 0x10))]
    else:
        out.append(make(c, s, tcp(cport, sport, cs, ss, 0x04)))
    return out


def capture_frames() -> list[tuple[float, bytes]]:
    def v4t(a, b, l4):
        return ipv4(a, b, 6, l4)

    def v6t(a, b, l4):
        return ipv6(a, b, 6, l4)
    flows = [
        tcp_flow(v4t, "10.0.0.11", "198.18.0.10", 40001, 443, client_hello("www.example.org"), 30, 1400, 1),
        tcp_flow(v4t, "10.0.0.12", "198.18.0.20", 40002, 80, b"GET / HTTP/1.1\r\nHost: blocked.example\r\n\r\n",
                 5, 600, 2),
        tcp_flow(v4t, "10.0.0.13", "198.18.0.20", 40003, 80, b"GET / HTTP/1.1\r\nHost: www.example.org\r\n\r\n",
                 40, 900, 1),
        tcp_flow(v4t, "10.0.0.14", "198.18.0.20", 40004, 8388, os.urandom(300), 25, 1200, 1),
        tcp_flow(v6t, "c", "s", 40005, 443, client_hello("news.example.com"), 20, 1000, 1),
    ]
    wg = [ipv4("10.0.0.15", "198.18.0.20", 17, udp(40006, 51820, b"\x01\x00\x00\x00" + bytes(144)))]
    wg += [ipv4("198.18.0.20" if i % 2 else "10.0.0.15", "10.0.0.15" if i % 2 else "198.18.0.20", 17,
                udp(51820 if i % 2 else 40006, 40006 if i % 2 else 51820, b"\x04\x00\x00\x00" + bytes(100)))
           for i in range(30)]
    dns = [ipv4("10.0.0.16", "198.18.0.20", 17, udp(40007, 53, struct.pack(">6H", 1, 0x100, 1, 0, 0, 0)
                                                    + b"\x07example\x03org\x00\x00\x01\x00\x01"))]
    odd = [MAC + b"\x08\x06" + bytes(28),                                                     # ARP
           ipv4("10.0.0.13", "198.18.0.20", 6, tcp(40003, 80, 5, 5, 0x10), options=b"\x01\x01\x01\x00"),
           ipv4("10.0.0.17", "198.18.0.20", 17, udp(40008, 9999, bytes(64))[:16], frag=0x2000),
           MAC + b"\x81\x00\x00\x05\x08\x00" + ipv4("10.0.0.13", "198.18.0.20", 6, tcp(40003, 80, 5, 5, 0x10))[14:]]
    # Interleave the flows round-robin, then the odd frames, with an idle gap
    # (past every profile's idle timeout) before a second burst of the HTTP flow.
    frames, ts = [], 1_700_000_000.0
    queues = [list(f) for f in flows] + [wg, dns]
    while any(queues):
        for q in queues:
            if q:
                frames.append((ts, q.pop(0)))
                ts += 0.0007
    for f in odd:
        frames.append((ts, f))
        ts += 0.001
    ts += 4000.0
    for f in tcp_flow(v4t, "10.0.0.13", "198.18.0.20", 40003, 80, b"GET /again HTTP/1.1\r\nHost: a.example\r\n\r\n",
                      10, 500, 1):
        frames.append((ts, f))
        ts += 0.0005
    return frames


def write(path, frames, big: bool = False, truncate: bool = False) -> None:
    e = ">" if big else "<"
    with open(path, "wb") as fh:
        fh.write(struct.pack(e + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for ts, frame in frames:
            sec = int(ts)
            fh.write(struct.pack(e + "IIII", sec, int(round((ts - sec) * 1e6)), len(frame), len(frame)) + frame)
        if truncate:
            fh.write(struct.pack(e + "IIII", 1, 0, 500, 500) + bytes(100))


def outcome(path, profile: str) -> str:
    result = classify_pcap(path, profiles.load(profile), seed=3)
    return json.dumps({"flows": [r.as_dict() for r in result.flows], "summary": result.summary(),
                       "stats": result.stats}, sort_keys=True)


needs_c = pytest.mark.skipif(offline._fastpath is None, reason="the C walk is not built here")


def count_walks(monkeypatch, watch: bool = True) -> list[int]:
    """From now on, how many packets each call of the C walk takes;
    *watch* False: the walk is given no watchers (Engine.watch)."""
    real, taken = getattr(offline._fastpath, "real", offline._fastpath), []

    class Counting:
        @staticmethod
        def walk(*args):
            out = real.walk(*args) if watch else real.walk(*args[:9], None)
            taken.append(out[1])
            return out
    Counting.real = real
    monkeypatch.setattr(offline, "_fastpath", Counting)
    return taken


@needs_c
@pytest.mark.parametrize("profile", ["gfw", "gfw-2022", "tspu-2025", "iran-2026", "log-only"])
@pytest.mark.parametrize("big,truncate", [(False, False), (True, True)])
def test_the_c_walk_and_the_python_loop_give_identical_flows(tmp_path, monkeypatch, profile, big, truncate):
    path = tmp_path / "mix.pcap"
    write(path, capture_frames(), big, truncate)
    accelerated = outcome(path, profile)
    monkeypatch.setattr(offline, "_fastpath", None)
    assert outcome(path, profile) == accelerated
    flows = json.loads(accelerated)["flows"]
    assert len(flows) >= 8 and sum(f["packets"] for f in flows) > 300


@needs_c
def test_the_walk_really_takes_packets_and_hands_the_freeze_back(tmp_path, monkeypatch):
    """On its own the walk takes the decided HTTP flow's plain ACKs and data,
    and stops at a frozen flow's server data (Python counts it) and at SYNs."""
    from tunnelwall.middlebox.engine import Engine
    from tunnelwall.middlebox.pcap import open_pcap
    path = tmp_path / "mix.pcap"
    write(path, capture_frames())
    data, endian, tick, _ = open_pcap(path)
    finished = []
    engine = Engine(profiles.load("tspu-2025"), on_evict=finished.append)
    # First record: a SYN of an unknown flow, left to Python.
    offset, taken, blocked, python_fast = offline._fastpath.walk(engine.flows, data, 24, False, tick, float("inf"))
    assert (offset, taken, blocked, python_fast) == (24, 0, 0, 0)
    taken = count_walks(monkeypatch)
    offline._run_ethernet(engine, data, endian, tick)
    assert sum(taken) > 150                       # the decided flows' plain segments and datagrams
    frozen = [f for f in finished + engine.all_flows() if f.verdict and "frozen" in f.verdict.note]
    assert len(frozen) == 1 and frozen[0].server_port == 443


def test_the_c_walk_is_built_where_a_compiler_is():
    """setup.py builds it as optional; on a machine with gcc and Python's
    headers (scripts/setup.sh installs both) a silent build failure would
    only show as a slower classify, so it is checked here."""
    headers = os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))
    if not (shutil.which("gcc") and headers):
        pytest.skip("no compiler or Python headers: the pure-Python loop is used")
    assert offline._fastpath is not None


def _fields(pkt):
    from tunnelwall.middlebox.packet import Packet
    return None if pkt is None else {name: getattr(pkt, name) for name in Packet.__slots__}


@needs_c
def test_the_c_parser_makes_the_same_packets_as_the_python_one(monkeypatch):
    """Every frame of the mixed capture, and 20,000 mutations of them
    (bytes flipped, cut short, lengths and offsets changed): the C parser
    gives the same Packet, field for field, or leaves the frame to Python."""
    import random
    from tunnelwall.middlebox import packet
    c_parse = packet._parse_common
    frames = [f for _ts, f in capture_frames()]
    rng = random.Random(7)
    mutated = []
    for _ in range(20000):
        f = bytearray(rng.choice(frames))
        for _ in range(rng.randint(1, 3)):
            at = rng.choice([12, 13, 14, 16, 17, 18, 19, 20, 21, 23, 46, 47, 38, 39, 58, 66, 67, rng.randrange(len(f))])
            if at < len(f):
                f[at] = rng.randrange(256)
        if rng.random() < 0.3:
            f = f[:rng.randrange(len(f) + 1)]
        mutated.append(bytes(f))
    taken = 0
    for f in frames + mutated:
        fast = c_parse(f)
        monkeypatch.setattr(packet, "_parse_common", None)
        slow = packet.parse_ethernet(f)
        monkeypatch.setattr(packet, "_parse_common", c_parse)
        if fast is not None:
            taken += 1
            assert _fields(fast) == _fields(slow), f.hex()
    assert taken > 5000                        # it does take the common frames ...
    assert sum(c_parse(f) is not None for f in frames) == len(frames) - 4    # ... all but the four odd ones
    assert c_parse(bytearray(frames[0])) is None            # not bytes: left to Python


def test_letting_go_of_read_pages_changes_nothing(tmp_path, monkeypatch):
    """classify drops the mapped capture's pages behind it (every 64 MB;
    here every 4 kB, so it happens many times on a small file): the flows
    are the same."""
    path = tmp_path / "mix.pcap"
    write(path, capture_frames())
    whole = outcome(path, "gfw")
    calls = []
    real = offline._let_go

    def counting(data, start, end):
        calls.append((start, end))
        return real(data, start, end)
    monkeypatch.setattr(offline, "RELEASE_EVERY", 4096)
    monkeypatch.setattr(offline, "_let_go", counting)
    assert outcome(path, "gfw") == whole
    assert len(calls) > 5


def _handshake_then_acks(acks: int) -> list[tuple[float, bytes]]:
    """A TCP connection that shakes hands and then only acknowledges: no
    data, so the censor never decides it and every ACK meets a flow under
    inspection."""
    c, s, ts = "10.0.0.21", "198.18.0.10", 1_700_000_000.0
    out = [ipv4(c, s, 6, tcp(40021, 443, 100, 0, 0x02)), ipv4(s, c, 6, tcp(443, 40021, 900, 101, 0x12))]
    out += [ipv4(c, s, 6, tcp(40021, 443, 101, 901, 0x10)) if i % 2 == 0
            else ipv4(s, c, 6, tcp(443, 40021, 901, 101, 0x10)) for i in range(acks)]
    return [(ts + i * 0.001, f) for i, f in enumerate(out)]


@needs_c
@pytest.mark.parametrize("refusing", [False, True])
def test_plain_acks_of_flows_under_inspection_are_counted_in_c_unless_the_model_may_refuse_them(
        tmp_path, monkeypatch, refusing):
    """Plain ACKs of an undecided flow are only counters to the engine
    (Engine.quiet_acks), so the walk takes them, until the flow's packet
    budget would end its inspection; a TCP model that checks
    acknowledgements may refuse a segment, and then the walk leaves every
    one of them to Python. The flows are identical either way."""
    import dataclasses
    from tunnelwall.middlebox.flowtable import PACKETS_PER_DATA
    profile = profiles.load("gfw")
    if refusing:
        profile = dataclasses.replace(profile, tcp=dataclasses.replace(profile.tcp, check_ack=True))
    path = tmp_path / "acks.pcap"
    frames = _handshake_then_acks(PACKETS_PER_DATA * profile.inspect_packets + 10)
    write(path, frames)

    def run():
        result = classify_pcap(path, profile, seed=3)
        return json.dumps([r.as_dict() for r in result.flows], sort_keys=True), result
    taken = count_walks(monkeypatch)
    accelerated, result = run()
    # The SYN and SYN/ACK go to Python; the ACKs up to the budget to C
    # (unless refused), the one that spends the budget to Python, which
    # allows the flow, and the rest to C again as packets of a decided flow.
    budget = PACKETS_PER_DATA * profile.inspect_packets
    assert sum(taken) == (len(frames) - 3 if not refusing else len(frames) - budget)
    (report,) = result.flows
    assert report.flow.packets == len(frames) and report.flow.verdict.action == "allow"
    assert report.flow.verdict.packet_index == budget
    monkeypatch.setattr(offline, "_fastpath", None)
    assert run()[0] == accelerated


@needs_c
def test_fins_and_rsts_of_decided_flows_close_them_in_c(tmp_path):
    """A FIN from each end, or a RST, of a decided flow: the walk counts
    them and closes the flow as Engine._lifecycle does (a new SYN on the
    5-tuple then starts a new flow, checked by the identical-flows test)."""
    from tunnelwall.middlebox.engine import Engine
    from tunnelwall.middlebox.pcap import open_pcap
    path = tmp_path / "fin.pcap"
    frames = [f for _ts, f in _handshake_then_acks(0)]
    c, s = "10.0.0.21", "198.18.0.10"
    frames += [ipv4(c, s, 6, tcp(40021, 443, 101, 901, 0x18, b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")),
               ipv4(s, c, 6, tcp(443, 40021, 901, 137, 0x18, b"HTTP/1.1 200 OK\r\n\r\n"))]
    write(path, [(1_700_000_000.0 + i * 0.001, f) for i, f in enumerate(frames)])
    data, endian, tick, _ = open_pcap(path)
    engine = Engine(profiles.load("gfw"))
    offline._run_ethernet(engine, data, endian, tick)
    (flow,) = engine.all_flows()
    assert flow.done and not flow.closed
    tail = [ipv4(c, s, 6, tcp(40021, 443, 137, 920, 0x11)), ipv4(s, c, 6, tcp(443, 40021, 920, 138, 0x11, b"bye"))]
    write(path, [(1_700_000_001.0 + i * 0.001, f) for i, f in enumerate(tail)])
    data, endian, tick, _ = open_pcap(path)
    offset, taken, blocked, _fast = offline._fastpath.walk(engine.flows, data, 24, False, tick, float("inf"))
    assert (taken, offset) == (2, len(data))
    assert flow.closed and flow.fins == 3 and flow.packets == len(frames) + 2
    assert flow.bytes == len(b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n") + 19 + 3     # the server's FIN carried 3


def _conversation(segments: list[tuple[int, bytes]], cport: int, sport: int) -> list[tuple[float, bytes]]:
    """A TCP connection carrying *segments* ((0: client, 1: server), payload)
    in the order given, each acknowledged by the other end; a segment given
    as (direction, payload, seq_offset) is sent at that offset of its
    direction's stream instead of the next byte (to send one out of order)."""
    c, s, ts = "10.0.0.31", "198.18.0.10", 1_700_000_000.0
    isn = [5000, 70000]
    out = [ipv4(c, s, 6, tcp(cport, sport, isn[0], 0, 0x02)), ipv4(s, c, 6, tcp(sport, cport, isn[1], isn[0] + 1, 0x12)),
           ipv4(c, s, 6, tcp(cport, sport, isn[0] + 1, isn[1] + 1, 0x10))]
    sent = [0, 0]
    for direction, payload, *at in segments:
        offset = at[0] if at else sent[direction]
        sent[direction] = max(sent[direction], offset + len(payload))
        seq, ack = isn[direction] + 1 + offset, isn[1 - direction] + 1 + sent[1 - direction]
        ends = (c, s) if direction == 0 else (s, c)
        ports = (cport, sport) if direction == 0 else (sport, cport)
        out.append(ipv4(*ends, 6, tcp(*ports, seq, ack, 0x18, payload)))
        out.append(ipv4(*reversed(ends), 6, tcp(*reversed(ports), ack, isn[direction] + 1 + sent[direction], 0x10)))
    return [(ts + i * 0.001, f) for i, f in enumerate(out)]


def _record(kind: int, length: int) -> bytes:
    return bytes([kind, 3, 3]) + length.to_bytes(2, "big") + bytes(range(7, 7 + 13)) * (length // 13) + bytes(length % 13)


def _taken_with_and_without_watchers(monkeypatch, path, profile):
    """Packets the C walk took with the engine's watchers and without them,
    and the flow reports of the C walk and of the pure-Python loop."""
    def run(watch: bool):
        taken = count_walks(monkeypatch, watch)
        result = classify_pcap(path, profile, seed=3)
        return sum(taken), json.dumps([r.as_dict() for r in result.flows], sort_keys=True)
    with_watch, flows = run(True)
    without, same = run(False)
    monkeypatch.setattr(offline, "_fastpath", None)
    python = json.dumps([r.as_dict() for r in classify_pcap(path, profile, seed=3).flows], sort_keys=True)
    assert flows == same == python
    return with_watch, without, json.loads(flows)


@needs_c
@pytest.mark.parametrize("in_order", [True, False])
def test_the_walk_counts_tls_in_tls_bursts_as_the_classifier_does(tmp_path, monkeypatch, in_order):
    """A TLS flow carrying an inner handshake (Trojan with a resumed outer
    handshake carrying curl, recorded: test_tlsintls.RESUMED): after the
    ClientHello only the tls-in-tls classifier watches it, and the C walk
    counts for it a segment that only grows the current burst and makes
    nothing to judge (take_tls); the handshake, a new burst and a fourth
    burst still judged go to Python. The flows are identical to the Python
    loop's, detection and bursts included, in order or with one server
    segment out of order."""
    from test_tlsintls import RESUMED, packets, rebuild
    payloads = rebuild(packets(RESUMED[1]))
    segments = [(0, client_hello("www.example.org"))] + [(d, p) for d, p in payloads[1:]]
    if not in_order:                  # the inner server flight's two halves swapped
        at = sum(len(p) for d, p in payloads[:5] if d == 1)
        flight = payloads[5][1]
        segments[5:6] = [(1, flight[500:], at + 500), (1, flight[:500], at)]
    path = tmp_path / "tls.pcap"
    write(path, _conversation(segments, 40031, 443))
    profile = profiles.apply_overrides(profiles.load("gfw-2025"), ["tls-in-tls.probability=1"])
    with_watch, without, (flow,) = _taken_with_and_without_watchers(monkeypatch, path, profile)
    assert flow["rule"] == "tls-in-tls" and flow["action"] == "drop"
    assert flow["detection"]["detail"]["bursts"][:3] == [607, 79 + 960, 86 + 177]
    # Taken in C, after the outer handshake: the client's 607 (it opens
    # burst 0), the server's 79 and 960 (burst 1; out of order, both halves
    # of the 960 go to Python), the client's 86 and 177 (burst 2); the
    # server's 83 opens the fourth burst of window 0, which Python judges.
    assert with_watch - without == (5 if in_order else 4)


@needs_c
def test_simple_obfs_carried_in_the_outer_handshake_is_caught_by_the_engine(tmp_path, monkeypatch):
    """simple-obfs tls (recorded: test_tlsintls.SIMPLE_OBFS): its fake
    ClientHello carries the inner ClientHello in its session ticket and its
    fake server flight the inner server flight in an oversized "Finished".
    The whole engine under gfw-2025 flags it as tls-in-tls, with the same
    flows from the C walk and from the Python loop."""
    from test_tlsintls import SIMPLE_OBFS, packets, rebuild, simple_obfs_hello
    _name, spec, ticket = SIMPLE_OBFS
    segments = rebuild(packets(spec), hello=simple_obfs_hello(ticket))
    path = tmp_path / "obfs.pcap"
    write(path, _conversation(segments, 40035, 443))
    profile = profiles.apply_overrides(profiles.load("gfw-2025"), ["tls-in-tls.probability=1"])
    _with_watch, _without, (flow,) = _taken_with_and_without_watchers(monkeypatch, path, profile)
    assert flow["rule"] == "tls-in-tls", flow
    assert flow["detection"]["detail"]["bursts"][:3] == [ticket, 1004, 103]


@needs_c
def test_the_walk_counts_a_plain_https_download_for_tls_in_tls(tmp_path, monkeypatch):
    """Plain HTTPS (two requests, the second answered by 30 full segments):
    the segments that only grow a burst and make nothing to judge are
    counted in C, and the flow is the Python loop's (no detection)."""
    from test_tlsintls import packets, rebuild
    spec = (">517[16:512] <1200[16:122,14:1,17:38,17:460,17:500] >80[14:1,17:69] >125[17:120] "
            "<1448[17:6000] <1448 <1448 <1448 <228 >125[17:120] <1448[17:43400]" + " <1448" * 29)
    payloads = rebuild(packets(spec))
    segments = [(0, client_hello("www.example.org"))] + [(d, p) for d, p in payloads[1:]]
    path = tmp_path / "https.pcap"
    write(path, _conversation(segments, 40033, 443))
    profile = profiles.apply_overrides(profiles.load("gfw-2025"), ["tls-in-tls.probability=1"])
    with_watch, without, (flow,) = _taken_with_and_without_watchers(monkeypatch, path, profile)
    assert flow["rule"] is None
    # Taken in C: the first request (it opens burst 0), the first answer's
    # five segments (burst 1, never a fourth), the second request (burst 2)
    # and the second answer's segments 2 to 6 (its first opens the fourth
    # burst of window 0: Python judges); the 7th fills the 16 kB the censor
    # reassembles and goes to Python.
    assert with_watch - without == 1 + 5 + 1 + 5


@needs_c
@pytest.mark.parametrize("recurring", [False, True])
def test_the_walk_runs_openvpns_opcode_test_as_the_classifier_does(tmp_path, monkeypatch, recurring):
    """A fully encrypted-looking TCP flow (gfw-2025 has no FET rule, so
    OpenVPN's opcode test goes on watching it alone) whose segments each
    start one record header: the walk counts the header values (take_ovpn)
    until the segment that makes 20 records with 5 distinct values, where
    the classifier detects OpenVPN (Python); or, *recurring*, until the
    server's first value comes back, which ends the test (Python again).
    Identical flows either way."""
    import random
    rng = random.Random(5)

    def segment(value: int) -> bytes:
        return b"\xff\xff" + bytes([value]) + rng.randbytes(500)
    values = [0x21, 0x32, 0x43]
    rest = [values[i % 3] for i in range(30)]
    if recurring:
        rest[8] = 0x6b
    segments = [(0, segment(0x5a)), (1, segment(0x6b))] + [(i % 2, segment(v)) for i, v in enumerate(rest)]
    path = tmp_path / "ovpn.pcap"
    write(path, _conversation(segments, 40032, 8388))
    with_watch, without, (flow,) = _taken_with_and_without_watchers(monkeypatch, path, profiles.load("gfw-2025"))
    if recurring:
        assert flow["action"] == "allow" and flow["protocol"] != "openvpn", flow
        assert with_watch - without == 8       # the segments before the recurring value
    else:
        assert flow["rule"] == "openvpn" and flow["detection"]["signal"] == "opcode-sequence"
        assert flow["detection"]["detail"] == {"distinct_opcodes": 5, "records": 20}
        assert with_watch - without == 17      # records 3 to 19; the 20th detects, in Python
