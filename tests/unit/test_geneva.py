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


def linux_request(tsval=1000, tsecr=2000):
    """The request as a Linux client sends it: NOP, NOP, timestamp (32-byte header)."""
    pkt = IP(src="10.0.0.11", dst="198.18.0.10", ttl=64) / TCP(
        sport=40000, dport=80, flags="PA", seq=1001, ack=5001, options=geneva.client_options("PA", tsval, tsecr))
    return pkt / Raw(REQUEST)


def test_a_linux_client_s_options_are_what_geneva_tampered():
    syn = IP(bytes(IP(dst="198.18.0.10") / TCP(flags="S", options=geneva.client_options("S", 7))))
    assert [o[0] for o in syn[TCP].options] == ["MSS", "SAckOK", "Timestamp", "NOP", "WScale"]
    assert syn[TCP].dataofs == 10 and geneva.timestamp_of(syn[TCP]) == 7
    data = IP(bytes(linux_request()))
    assert data[TCP].dataofs == 8 and bytes(data[TCP])[20:32] == bytes.fromhex("0101080a000003e8000007d0")


def test_s04_the_server_reads_the_window_scale_option_as_data_in_front_of_the_request():
    """Issue 33: with a bare 20-byte header, s04's data offset of 8 words
    swallowed "GET / HT" as options and the server could not read the
    request (controls 0/5). Geneva tampers the client's own packets, whose
    header already holds a timestamp (32 bytes): the appended window-scale
    option makes it 36, the offset of 8 cuts it back to 32, and the
    option's 4 bytes are read as data before the whole request."""
    fake, real = run("s04", linux_request())
    raw = bytes(fake[TCP])
    assert fake[TCP].dataofs == 8 and len(raw) == 36 + len(REQUEST)
    assert raw[20:32] == bytes.fromhex("0101080a000003e8000007d0")       # NOP NOP timestamp: still options
    assert raw[32:34] == b"\x03\x03" and raw[35:36] == b"\x00"          # kind 3, length 3, a value, padding
    assert raw[36:] == REQUEST and checksum_ok(fake)
    assert bytes(real) == bytes(IP(bytes(linux_request())))             # the real request, untouched


def test_s22_the_fin_copy_of_a_linux_client_holds_26_request_bytes():
    fin, _ = run("s22", linux_request())
    # IP length 78: 20 + 32 header bytes, so 26 bytes of data as the censor reads them: no whole Host line.
    assert fin.len == 78 and bytes(fin[TCP])[32:78 - 20] == REQUEST[:26] == b"GET / HTTP/1.1\r\nHost: www."
