"""FET rule (Wu et al., USENIX Security 2023): the exemptions at their exact boundaries."""

import random

import pytest
from builders import C2S, DONE, TCP, run

from tunnelwall.middlebox.classifiers.fet import FET, exemption, popcount_per_byte

# Non-printable bytes with known popcounts: 0x83 -> 3, 0xF0 -> 4, 0xF8 -> 5.
# 'U' (0x55) is printable with popcount 4, so it leaves the average alone.
P3, P4, P5 = b"\x83", b"\xf0", b"\xf8"


def test_popcount_exactly_low_threshold_is_exempt():
    payload = P3 * 6 + P4 * 4                    # 34 bits / 10 bytes = 3.4
    assert popcount_per_byte(payload) == pytest.approx(3.4)
    assert exemption(payload) == "Ex1"


def test_popcount_just_above_low_threshold_is_not_exempt():
    payload = P3 * 5 + P4 * 5                    # 3.5
    assert exemption(payload) is None


def test_popcount_exactly_high_threshold_is_exempt():
    payload = P4 * 4 + P5 * 6                    # 4.6
    assert exemption(payload) == "Ex1"


def test_popcount_just_below_high_threshold_is_not_exempt():
    assert exemption(P4 * 5 + P5 * 5) is None    # 4.5


def test_six_printable_first_bytes_exempt_five_not():
    assert exemption(b"U" * 6 + P4 * 44) == "Ex2"
    assert exemption(b"U" * 5 + P4 * 45) is None


def test_more_than_half_printable_exempt_exactly_half_not():
    assert exemption((P4 + b"U") * 25) is None              # exactly 50%
    assert exemption((P4 + b"UU") * 17) == "Ex3"            # 66%


def test_printable_run_of_21_exempt_20_not():
    assert exemption(P4 + b"U" * 21 + P4 * 40) == "Ex4"
    assert exemption(P4 + b"U" * 20 + P4 * 41) is None


def test_tls_and_http_prefixes_exempt():
    assert exemption(b"\x16\x03\x09" + P4 * 47) == "Ex5"
    assert exemption(b"\x17\x03\x03" + P4 * 47) == "Ex5"
    assert exemption(b"\x16\x03\x0a" + P4 * 47) is None     # beyond the paper's 0x09
    assert exemption(b"\x16\x03\x0a" + P4 * 47, tls_max_minor=15) == "Ex5"   # the artifact's range
    for method in (b"GET ", b"PUT ", b"POST ", b"HEAD "):
        assert exemption(method + P4 * 46) in ("Ex2", "Ex5")
    assert exemption(b"GET " + P4 * 46) == "Ex5"


def test_random_payload_is_fet():
    payload = random.Random(7).randbytes(400)
    assert exemption(payload) is None


def test_classifier_only_looks_at_first_client_data_packet():
    clf = FET()
    random_data = random.Random(1).randbytes(200)
    result, index = run(clf, [(1, random_data), (C2S, b"GET / HTTP/1.1\r\n\r\n"), (C2S, random_data)], proto=TCP)
    assert result is DONE and index == 2
    result, index = run(clf, [(C2S, random_data)], proto=TCP)
    assert result.protocol == "fet" and index == 1
