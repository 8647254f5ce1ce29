"""Geneva's published strategies (Bock et al., CCS 2019): the project's own
interpreter of the strategy language, byte for byte, and what the censor's
engine decides on each strategy's packets under the two GFW eras."""

from __future__ import annotations

import random

import pytest
from scapy.layers.inet import IP, TCP
from scapy.packet import Raw

from tunnelwall.harness import geneva
from tunnelwall.middlebox import profiles

REQUEST = geneva.request_bytes("www.twitter.com")


def request_packet(flags="PA", payload=REQUEST):
    pkt = IP(src="10.0.0.11", dst="198.18.0.10", ttl=64) / TCP(sport=40000, dport=80, flags=flags, seq=1001, ack=5001)
    return pkt / Raw(payload) if payload else pkt


def run(sid, pkt):
    return [IP(raw) for raw in geneva.apply(geneva.parse(geneva.BY_ID[sid].dna), pkt, random.Random(1))]


def checksum_ok(p) -> bool:
    stored = p[TCP].chksum
    fresh = IP(bytes(p))
    fresh[TCP].chksum = None
    return IP(bytes(fresh))[TCP].chksum == stored


def test_all_24_published_strings_parse_and_are_numbered_as_published():
    assert [s.id for s in geneva.STRATEGIES] == [f"s{i:02d}" for i in range(1, 25)]
    for s in geneva.STRATEGIES:
        assert geneva.parse(s.dna).outbound
    assert {s.id for s in geneva.STRATEGIES if s.insertion_by_ttl} == {"s02", "s06", "s11", "s14", "s17"}
    s19 = geneva.parse(geneva.BY_ID["s19"].dna)
    assert [t.trigger.value for t in s19.outbound] == ["PA", "A"]


@pytest.mark.parametrize("bad,where", [("[TCP:flags:PA]-duplicate(,-|", "unknown action ''"),
                                        ("[TCP:flags]-drop-|", "trigger"),
                                        ("[TCP:flags:A]-explode-|", "unknown action 'explode'"),
                                        ("[TCP:flags:A]-tamper{TCP:seq:maybe}-|", "tamper{")])
def test_a_bad_strategy_string_says_where(bad, where):
    with pytest.raises(geneva.GenevaSyntaxError, match="character"):
        geneva.parse(bad)
    with pytest.raises(geneva.GenevaSyntaxError, match=where.replace("{", r"\{").replace("(", r"\(")):
        geneva.parse(bad)


def test_duplicate_with_data_offset_10_and_a_bad_checksum():
    first, second = run("s01", request_packet())
    assert first[TCP].dataofs == 10 and not checksum_ok(first)
    assert bytes(first[TCP])[20:] == REQUEST            # the same bytes, read with 20 of them as options
    assert bytes(second) == bytes(IP(bytes(request_packet())))  # the real request, untouched
    assert checksum_ok(second)


def test_insertion_rst_after_the_ack_and_ttl_insertion():
    ack, rst = run("s11", request_packet("A", b""))
    assert str(ack[TCP].flags) == "A" and str(rst[TCP].flags) == "R" and rst.ttl == 10 and checksum_ok(rst)
    assert run("s11", request_packet()) and len(run("s11", request_packet())) == 1   # a PSH/ACK does not fire [A]


def test_segmentation_in_order_and_out_of_order():
    a, b, c = run("s20", request_packet())
    assert [bytes(p[TCP].payload) for p in (a, b, c)] == [REQUEST[:8], REQUEST[8:12], REQUEST[12:]]
    assert [p[TCP].seq for p in (a, b, c)] == [1001, 1009, 1013] and all(checksum_ok(p) for p in (a, b, c))
    second, first = run("s19", request_packet())
    assert bytes(second[TCP].payload) == REQUEST[8:] and second[TCP].seq == 1009
    assert bytes(first[TCP].payload) == REQUEST[:8]
    half = run("s21", request_packet())
    assert [len(p[TCP].payload) for p in half] == [len(REQUEST) // 2, len(REQUEST) - len(REQUEST) // 2]


def test_ip_length_options_and_flags_tampering():
    short, real = run("s09", request_packet())
    assert short.len == 64 and len(bytes(short)) == len(bytes(real))   # the bytes stay; the header lies
    fin, _ = run("s22", request_packet())
    assert str(fin[TCP].flags) == "F" and fin.len == 78
    (uto,) = run("s24", request_packet())
    assert any(o[0] in (28, "UTO") for o in uto[TCP].options) and uto[TCP].dataofs == 6 and checksum_ok(uto)
    synack, syn = run("s23", request_packet("S", b""))
    assert str(synack[TCP].flags) == "SA" and str(syn[TCP].flags) == "S" and synack[TCP].seq == syn[TCP].seq
    wscale, _ = run("s04", request_packet())
    assert wscale[TCP].dataofs == 8                     # set after the option was added: kept
    syn, corrupt = run("s08", request_packet("S", b""))
    assert not syn[TCP].payload and len(corrupt[TCP].payload) == geneva.EMPTY_LOAD_BYTES


def offline(profile):
    prof = profiles.apply_overrides(profiles.load(profile), ["http-host.residual=0"])
    return {s.id: geneva.offline_replay(s, prof).evaded for s in geneva.STRATEGIES}


def test_offline_replay_the_two_eras_differ_where_reassembly_does():
    old, new = offline("gfw-2020"), offline("gfw-2025")
    # Segmentation got through in 2019 (Geneva 94 %, 98 %), not since the GFW reassembles (GFWeb 2024).
    assert old["s19"] and old["s20"] and not new["s19"] and not new["s20"]
    # Teardown and desynchronisation work in both; a second SYN or a SYN/ACK first does not.
    for sid in ("s01", "s05", "s10", "s13", "s16"):
        assert old[sid] and new[sid], sid
    for sid in ("s08", "s23", "s24"):
        assert not old[sid] and not new[sid], sid
    published = {s.id: s.evades for s in geneva.STRATEGIES}
    assert sum(old[k] == published[k] for k in old) >= 21
    assert sum(new[k] == published[k] for k in new) >= 21
