"""The engine end to end on crafted frames: rules, residual blocking,
probabilities, log-only, negative controls, malformed input, profiles."""

import os
import random
import struct
from pathlib import Path

import pytest
from builders import client_hello
from hypothesis import given, settings, strategies as st

from tunnelwall.middlebox import profiles
from tunnelwall.middlebox.engine import Engine
from tunnelwall.middlebox.offline import classify_pcap
from tunnelwall.middlebox.pcap import PcapError, Writer, frames
from tunnelwall.base.errors import SourceError, TunnelwallError

BAD = Path(__file__).resolve().parents[1] / "fixtures" / "bad_profiles"


def _csum(data: bytes) -> int:
    s = sum(struct.unpack(f">{len(data) // 2}H", data + b"\0" * (len(data) % 2)))
    s = (s >> 16) + (s & 0xFFFF)
    return ~(s + (s >> 16)) & 0xFFFF


def frame(src: str, dst: str, sport: int, dport: int, payload: bytes = b"", proto: str = "udp",
          flags: int = 0x18) -> bytes:
    import socket
    if proto == "udp":
        l4 = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload
        pnum = 17
    else:
        l4 = struct.pack(">HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 65535, 0, 0) + payload
        pnum = 6
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, 64, pnum, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack(">H", _csum(ip)) + ip[12:]
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + l4


C, S = "10.0.0.11", "198.18.0.20"


def tcp_flow(engine, cport, sport, first_payload, t0=0.0, server=S):
    engine.feed(frame(C, server, cport, sport, proto="tcp", flags=0x02), t0)
    engine.feed(frame(server, C, sport, cport, proto="tcp", flags=0x12), t0 + 0.001)
    engine.feed(frame(C, server, cport, sport, proto="tcp", flags=0x10), t0 + 0.002)
    return engine.feed(frame(C, server, cport, sport, first_payload, proto="tcp"), t0 + 0.003)


def profile_with(text: str):
    return profiles.loads(text)


FET_CERTAIN = """
name: fet-certain
rules:
  - name: fet
    match: {protocol: fet}
    action: drop
    residual: 180
"""


def test_residual_block_of_server_3tuple_then_expiry():
    engine = Engine(profile_with(FET_CERTAIN))
    first = tcp_flow(engine, 40000, 8388, random.Random(1).randbytes(300), t0=0)
    assert first.verdict.rule == "fet" and first.verdict.action == "drop" and first.verdict.packet_index == 4
    # A new, innocent connection to the same server port within 180 s: blocked on its first packet.
    again = tcp_flow(engine, 40001, 8388, b"GET / HTTP/1.1\r\n\r\n", t0=100)
    assert again.verdict.action == "drop" and "residual" in again.verdict.note and again.verdict.packet_index == 1
    # Another port of the same server is not affected.
    other = tcp_flow(engine, 40002, 443, client_hello("ok.example"), t0=101)
    assert not other.blocking
    # After the timeout the same 3-tuple works again.
    later = tcp_flow(engine, 40003, 8388, b"GET / HTTP/1.1\r\n\r\n", t0=181)
    assert not later.blocking


def test_probability_is_seeded_and_near_the_published_rate():
    gfw = profiles.load("gfw-2022")

    def outcomes(seed):
        engine = Engine(gfw, seed=seed)
        rng = random.Random(42)
        out = []
        for i in range(1000):
            f = tcp_flow(engine, 20000 + i, 9000, rng.randbytes(200), t0=i * 200.0, server=f"198.18.{i // 250}.{i % 250 + 1}")
            out.append(bool(f.verdict and f.verdict.blocks))
        return out

    a, b = outcomes(11), outcomes(11)
    assert a == b
    assert 0.22 < sum(a) / len(a) < 0.31       # p = 0.263 in the gfw profile
    assert outcomes(12) != a


def test_log_only_logs_and_never_blocks():
    engine = Engine(profiles.load("log-only"))
    wg = engine.feed(frame(C, S, 40000, 51820, b"\x01\x00\x00\x00" + os.urandom(144)), 0)
    ovpn_c = engine.feed(frame(C, S, 40001, 1194, bytes([7 << 3]) + os.urandom(20)), 0)
    engine.feed(frame(S, C, 1194, 40001, bytes([8 << 3]) + os.urandom(30)), 0.01)
    fet = tcp_flow(engine, 40002, 8388, random.Random(2).randbytes(300))
    for f, rule in ((wg, "wireguard"), (ovpn_c, "openvpn"), (fet, "fet")):
        assert f.verdict.rule == rule and f.verdict.action == "log"
    assert engine.stats["blocked_packets"] == 0


def test_negative_controls_under_gfw():
    engine = Engine(profiles.load("gfw-2022"))
    tls = tcp_flow(engine, 41000, 443, client_hello("www.example.org", ["h2"]))
    http = tcp_flow(engine, 41001, 80, b"GET / HTTP/1.1\r\nHost: www.example.org\r\n\r\n")
    ssh = tcp_flow(engine, 41002, 22, b"SSH-2.0-OpenSSH_9.2p1\r\n")
    dns = engine.feed(frame(C, S, 41003, 53, struct.pack(">6H", 1, 0x100, 1, 0, 0, 0) + b"\x07example\x03org\x00\x00\x01\x00\x01"), 0)
    for f, proto in ((tls, "tls"), (http, "http"), (ssh, "ssh"), (dns, "dns")):
        assert f.protocol == proto
        assert not f.blocking, (proto, f.verdict)
        assert not any(d.protocol in ("fet", "openvpn", "wireguard") for d in f.detections)


def test_sni_blocklist_resets_with_penalty_box():
    engine = Engine(profiles.load("gfw-2022"))
    f = tcp_flow(engine, 42000, 443, client_hello("www.twitter.com"))
    assert f.verdict.rule == "sni-blocklist" and f.verdict.action == "reset" and f.verdict.residual == 90



@pytest.mark.parametrize("sni,throttled", [("twitter.com", True), ("abs.twimg.com", True), ("t.co", True),
                                           ("www.reddit.com", True), ("microsoft.com", True),
                                           ("www.example.org", False), ("wikipedia.org", False)])
def test_tspu_2021_throttles_by_a_loose_sni_glob(sni, throttled):
    """"*t.co*" catches reddi-t.co-m and microsof-t.co-m too, as in 2021."""
    engine = Engine(profiles.load("tspu-2021"))
    f = tcp_flow(engine, 42010, 443, client_hello(sni))
    if throttled:
        assert f.verdict.rule == "twitter-throttle" and f.verdict.action == "throttle" and f.verdict.rate_kbit == 130
    else:
        assert f.verdict.action == "allow" and not f.blocking

def test_dns_poisoning_verdict_carries_the_forged_answer():
    engine = Engine(profiles.load("gfw-2022"))
    q = struct.pack(">6H", 1, 0x100, 1, 0, 0, 0) + b"\x03www\x07twitter\x03com\x00\x00\x01\x00\x01"
    f = engine.feed(frame(C, S, 42001, 53, q), 0)
    assert f.verdict.action == "forge-dns" and f.verdict.answer == "198.19.255.254"


def test_iran_allowlist():
    engine = Engine(profiles.load("iran-whitelist"))
    ok = tcp_flow(engine, 43000, 443, client_hello("a.example"))
    assert not ok.blocking
    bad = tcp_flow(engine, 43001, 443, b"\x05\x01\x00" + os.urandom(30))      # SOCKS5 on 443
    assert bad.verdict.rule == "protocol-allowlist" and bad.verdict.residual == 60
    elsewhere = tcp_flow(engine, 43002, 8443, b"\x05\x01\x00" + os.urandom(30), server="198.18.0.21")
    assert not elsewhere.blocking


def test_address_rules_decide_on_the_first_packet():
    prof = profile_with("""
name: ipblock
rules:
  - name: blocked-range
    match: {server_ip: 198.18.7.0/24, server_port: [443, 8000-8100]}
    action: drop
""")
    engine = Engine(prof)
    hit = engine.feed(frame(C, "198.18.7.9", 40000, 8050, b"x"), 0)
    miss = engine.feed(frame(C, "198.18.7.9", 40001, 22, b"x"), 0)
    assert hit.verdict.rule == "blocked-range" and hit.verdict.packet_index == 1
    assert (miss.verdict.action, miss.verdict.rule, miss.blocking) == ("allow", None, False)


# -- malformed input never raises


def test_truncated_and_bogus_frames():
    engine = Engine(profiles.load("gfw-2022"))
    good = frame(C, S, 1, 2, b"payload", proto="tcp")
    for cut in range(len(good)):
        engine.feed(good[:cut], 0)
    # Fresh engines below: a decided flow's packets take the fast path and are not parsed at all.
    bogus_total = bytearray(good)
    bogus_total[16:18] = b"\xff\xff"                 # IP total length past the frame
    assert Engine(profiles.load("gfw-2022")).feed(bytes(bogus_total), 0).packets == 1
    bogus_ihl = bytearray(good)
    bogus_ihl[14] = 0x42                             # IHL 8 bytes (< 20)
    assert Engine(profiles.load("gfw-2022")).feed(bytes(bogus_ihl), 0) is None
    bogus_doff = bytearray(good)
    bogus_doff[14 + 20 + 12] = 0xF0                  # TCP data offset 60 > segment
    assert Engine(profiles.load("gfw-2022")).feed(bytes(bogus_doff), 0) is None


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_random_frames_never_raise(data):
    engine = Engine(profiles.load("gfw-2022"))
    flow = engine.feed(b"\x02" * 12 + b"\x08\x00" + data, 0)
    _invariants(engine)
    assert engine.stats["packets"] == 1
    if flow is None:        # not IP, or a fragment held for its datagram
        assert engine.stats["non_ip"] + engine.stats["fragments_held"] == 1
    else:
        assert flow.packets == 1 and flow in engine.all_flows()


def _invariants(engine: Engine) -> None:
    """What must hold after any input: every flow under both its keys, the
    count right, decided flows with a verdict and blocking only if it blocks."""
    flows = engine.all_flows()
    assert engine.live == len(flows) and len(engine.flows) == 2 * engine.live
    for f in flows:
        assert engine.flows[f.key][0] is f
        assert (f.verdict is not None) == f.done
        assert f.blocking == (f.verdict is not None and f.verdict.blocks)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["udp", "tcp"]), st.integers(0, 65535), st.binary(max_size=400),
       st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6))
def test_mutated_frames_never_raise(proto, port, payload, mutations):
    engine = Engine(profiles.load("gfw-2022"))
    base = bytearray(frame(C, S, 40000, port, payload, proto=proto))
    engine.feed(bytes(base), 0)
    for pos, value in mutations:
        if pos < len(base):
            base[pos] = value
        engine.feed(bytes(base), 0.1)
        _invariants(engine)
    assert engine.stats["packets"] == 1 + len(mutations)


# -- profiles and pcap files


PROFILE_CASES = {
    "unknown_action.yaml": (5, "rules.0.action: 'block' must be one of: allow, log, drop"),
    "unknown_protocol.yaml": (5, "unknown protocol 'openvnp'"),
    "bad_probability.yaml": (6, "rules.0.probability: 1.5 is out of range (maximum 1)"),
    "unknown_list.yaml": (6, "unknown list '@blockd'"),
    "unknown_param.yaml": (3, "unknown parameter(s) popcount_lo"),
    "throttle_without_rate.yaml": (3, "throttle needs 'rate'"),
    "bad_fail_mode.yaml": (2, "fail: 'maybe' must be one of: open, closed"),
    "bad_overload.yaml": (3, "overload: 'sometimes' must be one of: open, closed"),
    "negative_lag.yaml": (3, "flows.max_lag_ms: -5 is out of range (minimum 0)"),
    "bad_offload.yaml": (4, "flows.offload: 'learn' must be one of: rules, conntrack"),
}


def test_overload_policy_defaults_to_fail_and_can_be_overridden():
    tspu, gfw = profiles.load("tspu-2025"), profiles.load("gfw-2025")
    assert (tspu.fail, tspu.overload) == ("open", "open") and (gfw.fail, gfw.overload) == ("closed", "closed")
    assert gfw.flows.max_lag_ms == 250
    profiles.apply_overrides(gfw, ["profile.overload=open", "flows.max_lag_ms=0"])
    assert (gfw.overload, gfw.flows.max_lag_ms) == ("open", 0)
    with pytest.raises(TunnelwallError, match=r"profile\.overload=open\|closed"):
        profiles.apply_overrides(gfw, ["profile.overload=sometimes"])


@pytest.mark.parametrize("name", sorted(PROFILE_CASES))
def test_bad_profiles(name):
    line, words = PROFILE_CASES[name]
    with pytest.raises(SourceError) as err:
        profiles.load(str(BAD / name))
    assert str(err.value).startswith(f"{BAD / name}:{line}: ") and words in str(err.value), str(err.value)


def test_unknown_profile_name():
    with pytest.raises(TunnelwallError, match="unknown censor profile 'gfww'"):
        profiles.load("gfww")


def test_pcap_roundtrip_and_errors(tmp_path):
    path = tmp_path / "a.pcap"
    with Writer(path) as w:
        w.write(1.5, frame(C, S, 40000, 51820, b"\x01\x00\x00\x00" + os.urandom(144)))
    assert [ts for ts, _ in frames(path)] == [1.5]
    result = classify_pcap(path, profiles.load("gfw-2022"))
    assert result.flows[0].as_dict()["rule"] == "wireguard"
    (tmp_path / "bad.pcap").write_bytes(b"not a pcap file at all....")
    with pytest.raises(PcapError, match="not a pcap file"):
        list(frames(tmp_path / "bad.pcap"))
    truncated = tmp_path / "t.pcap"
    truncated.write_bytes(path.read_bytes()[:-10])
    assert list(frames(truncated)) == []


def test_pcapng_written_and_read_back_classifies_like_pcap(tmp_path):
    """classify reads pcapng (dumpcap's and Wireshark's default) exactly as it
    reads pcap: same flows, same verdicts; timestamps survive."""
    from tunnelwall.middlebox.pcap import PcapngWriter
    frames_in = [frame(C, S, 40000 + i, 51820, b"\x01\x00\x00\x00" + bytes(144), proto="udp") for i in range(3)]
    frames_in.append(frame(C, S, 41000, 80, b"GET / HTTP/1.1\r\nHost: www.twitter.com\r\n\r\n"))
    classic, ng = tmp_path / "a.pcap", tmp_path / "a.pcapng"
    with Writer(classic) as w, PcapngWriter(ng, name="eth0") as n:
        for i, f in enumerate(frames_in):
            w.write(1700000000 + i * 0.25, f)
            n.write(1700000000 + i * 0.25, f)
    raw = ng.read_bytes()
    assert raw[:4] == b"\x0a\x0d\x0d\x0a" and raw[8:12] == b"\x4d\x3c\x2b\x1a"       # SHB, little-endian
    got = list(frames(ng))
    assert [f for _, f in got] == frames_in
    assert [round(ts, 6) for ts, _ in got] == [1700000000 + i * 0.25 for i in range(4)]
    prof = profiles.load("gfw-2022")
    a = [r.as_dict() for r in classify_pcap(classic, prof).flows]
    b = [r.as_dict() for r in classify_pcap(ng, prof).flows]
    assert a == b and {r["rule"] for r in a} == {"wireguard", None}


def test_pcapng_with_nanosecond_interfaces_and_big_endian(tmp_path):
    import struct as st
    body_idb = st.pack(">HHI", 1, 0, 65535) + st.pack(">HHB3x", 9, 1, 9) + st.pack(">HH", 0, 0)
    f = frame(C, S, 40000, 53, b"\x00" * 20, proto="udp")
    ns = 1_700_000_000_123_456_789
    epb = st.pack(">IIIII", 0, ns >> 32, ns & 0xFFFFFFFF, len(f), len(f)) + f + b"\x00" * (-len(f) % 4)

    def block(t, body):
        return st.pack(">II", t, 12 + len(body)) + body + st.pack(">I", 12 + len(body))
    data = block(0x0A0D0D0A, st.pack(">IHHq", 0x1A2B3C4D, 1, 0, -1)) + block(1, body_idb) + block(6, epb)
    path = tmp_path / "be.pcapng"
    path.write_bytes(data + b"\x00\x00\x00\x06\x00\x00")          # a truncated last block ends quietly
    ((ts, got),) = list(frames(path))
    assert got == f and abs(ts - ns / 1e9) < 1e-6


def test_a_compiled_name_list_answers_as_its_entries_do():
    """ruleset.NameSet (one set lookup per label) against name_matches on
    every entry, over names and lists built to hit the edges: the domain
    itself, subdomains, look-alike suffixes without a dot, globs, a leading
    dot, an empty entry."""
    import random
    from tunnelwall.middlebox.ruleset import NameSet, name_matches
    rng = random.Random(11)
    labels = ["t", "co", "example", "org", "www", "a", "xt", "twitter", "com", "", "news"]
    pool = ["example.org", "t.co", "*t.co*", "twitter.com", ".example.org", "org", "", "x*e.org", "co", "www.a.t"]
    checked = hits = 0
    for _ in range(3000):
        name = ".".join(rng.choice(labels) for _ in range(rng.randint(1, 4))).strip(".") or "t.co"
        entries = rng.sample(pool, rng.randint(1, 5))
        expected = any(name_matches(name, e) for e in entries)
        assert NameSet(entries).matches(name) == expected, (name, entries)
        checked += 1
        hits += expected
    assert checked == 3000 and 200 < hits < 2800          # both answers well represented
