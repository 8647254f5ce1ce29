"""Tor's passive signal: a real tor ClientHello is recognised, ordinary names are not.

Fixtures (tests/fixtures/tor/): three ClientHellos of the real tor 0.4.9.11
client (Debian 12, OpenSSL 3.0.19) to a bridge on loopback; 1,000 common
hostnames (the Moz Top 500 of npm's top-sites 1.1.222, bare and with www.);
2,000 English words. Every non-case goes through the ClientHello a real
OpenSSL client sends (Python's ssl, no ALPN) and the same engine path as a
capture.
"""

import base64
import random
import re
import struct
from pathlib import Path

import pytest
from builders import C2S, DONE, TCP, client_hello, run
from test_engine import tcp_flow

from tunnelwall.middlebox import profiles
from tunnelwall.middlebox.classifiers.labelrandom import looks_random, randomness_score
from tunnelwall.middlebox.classifiers.tls import TOR_HELLOS, Tor, parse_client_hello, tor_signal
from tunnelwall.middlebox.engine import Engine

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tor"
TOR_HELLO_FILES = sorted(FIXTURES.glob("tor-0.4.9.11-client-hello-*.bin"))


def _lines(name: str) -> list[str]:
    return [line for line in (FIXTURES / name).read_text().splitlines() if line and not line.startswith("#")]


HOSTNAMES = _lines("top-hostnames.txt")
WORDS = _lines("dictionary-words.txt")


def test_fixtures_are_what_the_tests_say():
    assert len(TOR_HELLO_FILES) == 3
    assert len(HOSTNAMES) == len(set(HOSTNAMES)) == 1000
    assert len(WORDS) == 2000 and all(re.fullmatch(r"[a-z]{4,25}", w) for w in WORDS)


@pytest.mark.parametrize("path", TOR_HELLO_FILES, ids=lambda p: p.name)
def test_real_tor_client_hello_is_recognised(path):
    raw = path.read_bytes()
    hello = parse_client_hello(raw)
    assert re.fullmatch(r"www\.[a-z2-7]+\.com", hello["sni"]) and hello["alpn"] == []
    result, index = run(Tor(), [(C2S, raw)], proto=TCP)
    assert index == 1 and result.protocol == "tor" and result.signal == "tls-fingerprint"
    assert result.detail["build"] == TOR_HELLOS[0].build


def test_real_tor_client_hello_is_probed_under_gfw_2025():
    engine = Engine(profiles.load("gfw-2025"))
    for i, path in enumerate(TOR_HELLO_FILES):
        flow = tcp_flow(engine, 45000 + i, 9001, path.read_bytes())
        assert flow.verdict.rule == "tor" and flow.verdict.action == "probe" and flow.verdict.then == "drop"
        assert flow.verdict.detection.protocol == "tor"


def test_the_issue_non_cases_are_not_tor():
    """The two captures of issue 28 flagged as Tor: stunnel naming
    www.example.com, simple-obfs naming www.bing.com, both without ALPN."""
    for name in ("www.example.com", "www.bing.com"):
        hello = client_hello(name)
        assert parse_client_hello(hello)["alpn"] == []
        assert run(Tor(), [(C2S, hello)], proto=TCP)[0] is DONE


def test_one_thousand_common_hostnames_are_not_tor():
    flagged = [n for n in HOSTNAMES if run(Tor(), [(C2S, client_hello(n))], proto=TCP)[0] is not DONE]
    assert flagged == []
    shaped = [n for n in HOSTNAMES if re.fullmatch(r"www\.[a-z2-7]{4,25}\.(com|net)", n)]
    assert len(shaped) == 244            # a quarter have tor's name shape: the test is not empty


def test_common_hostnames_through_the_engine_are_not_tor():
    # One server address each: a blocklisted name's residual block on the
    # server 3-tuple must not keep the next flow from being read.
    engine = Engine(profiles.load("gfw-2025"))
    flows = [tcp_flow(engine, 20000 + i, 443, client_hello(n), t0=i * 0.01, server=f"198.18.{i // 200}.{i % 200 + 1}")
             for i, n in enumerate(HOSTNAMES)]
    assert [f.protocol for f in flows].count("tls") == len(HOSTNAMES)
    assert [d for f in flows for d in f.detections if d.protocol == "tor"] == []
    assert [f.verdict.rule for f in flows if f.verdict and f.verdict.rule == "tor"] == []


def test_dictionary_names_without_alpn_are_not_tor():
    for word in WORDS:
        for tld in ("com", "net"):
            hello = parse_client_hello(client_hello(f"www.{word}.{tld}"))
            assert tor_signal(hello) is None, word


def _tor_label(rng: random.Random) -> str:
    """As tor draws its names: a length of 4-25, that many base32 characters."""
    n = rng.randint(4, 25)
    return base64.b32encode(rng.randbytes((n * 5 + 7) // 8)).decode().lower()[:n]


def test_random_labels_are_judged_random_from_eight_characters():
    rng = random.Random(28)
    labels = [_tor_label(rng) for _ in range(4000)]
    long_ones = [label for label in labels if len(label) >= 8]
    rate = sum(looks_random(label) for label in long_ones) / len(long_ones)
    assert 0.85 <= rate <= 0.95                     # 90.5 % measured on 20,000 (labelrandom's docstring)
    assert not any(looks_random(label) for label in labels if len(label) < 8)


def test_randomness_score_orders_words_below_random():
    assert randomness_score("stackoverflow") < 0 < randomness_score("q3fpkrg5shdq")
    assert randomness_score("www-x") == float("-inf")          # outside tor's alphabet


def _hello(sni: str, ciphers: tuple[int, ...], groups: tuple[int, ...], alpn: bool = False) -> bytes:
    raw = sni.encode()
    exts = [(0, struct.pack(">HBH", len(raw) + 3, 0, len(raw)) + raw),
            (10, struct.pack(">H", 2 * len(groups)) + struct.pack(f">{len(groups)}H", *groups))]
    if alpn:
        exts.append((16, b"\x00\x03\x02h2"))
    ext_bytes = b"".join(struct.pack(">HH", t, len(d)) + d for t, d in exts)
    body = (b"\x03\x03" + b"\x22" * 32 + b"\x00" + struct.pack(">H", 2 * len(ciphers))
            + struct.pack(f">{len(ciphers)}H", *ciphers) + b"\x01\x00" + struct.pack(">H", len(ext_bytes)) + ext_bytes)
    hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs


def test_tor_cipher_list_decides_for_short_labels_random_name_for_unknown_builds():
    tor = TOR_HELLOS[0]
    short = parse_client_hello(_hello("www.k7qd.com", tor.ciphers, tor.groups))
    assert tor_signal(short).signal == "tls-fingerprint"
    other_groups = parse_client_hello(_hello("www.k7qd.com", tor.ciphers, (29, 23)))
    assert tor_signal(other_groups) is None                         # short label, unknown build
    unknown = parse_client_hello(_hello("www.43cwuukc5hwdveaby7fmv7je.com", (0x1302, 0x1301), (29, 23)))
    assert tor_signal(unknown).signal == "random-sni"
    with_alpn = parse_client_hello(_hello("www.43cwuukc5hwdveaby7fmv7je.com", tor.ciphers, tor.groups, alpn=True))
    assert tor_signal(with_alpn) is None                            # tor offers no ALPN
    subdomain = parse_client_hello(_hello("mail.43cwuukc5hwdveaby7fmv7je.com", tor.ciphers, tor.groups))
    assert tor_signal(subdomain) is None                            # tor's names start with www.
