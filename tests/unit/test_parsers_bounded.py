"""One packet must never stop the censor (issue 34): the QUIC Initial whose
CRYPTO frame has length 0 (Zohaib et al. 2025, Table 3, case 6), the
per-packet work budget, and the offline path on a capture holding it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tunnelwall.base.quic import crypto_frame, protect_initial, varint
from tunnelwall.base.tlshello import hello_message, sni_extension
from tunnelwall.middlebox import budget
from tunnelwall.middlebox.classifiers.quic import crypto_stream, decrypt_initial, first_crypto_frame, open_initial

DCID = bytes.fromhex("ef751b897969b518")
HELLO = hello_message([sni_extension("www.youtube.com")])


def crypto_length_0_initial() -> bytes:
    """The issue's datagram: a CRYPTO frame at offset 0 whose length field
    (two zero bytes, as the paper wrote it) says 0, the ClientHello after it."""
    return protect_initial(b"\x06" + varint(0) + b"\x00\x00" + HELLO, DCID, b"", pn=0, pn_len=1, pad_to=0)


def finishes(code: str, seconds: float = 30.0) -> subprocess.CompletedProcess:
    """Run *code* in a fresh interpreter; fail the test (and kill it) if it
    is still running after *seconds*: a hang must fail, not hang the suite."""
    try:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                              timeout=seconds, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {seconds} s (a parser loops):\n{code}")


def test_crypto_length_0_initial_decrypts_to_the_papers_frames():
    packet = crypto_length_0_initial()
    assert packet[1:5] == b"\x00\x00\x00\x01" and len(packet) == 1 + 4 + 1 + 8 + 1 + 1 + 2 + 1 + 4 + len(HELLO) + 16
    assert open_initial(packet) == b"\x06\x00\x00\x00" + HELLO


def test_crypto_length_0_does_not_hang_decrypt_initial():
    """Before the fix the reassembly kept a 0-length chunk at offset 0 and
    added it forever; the child process then never returned."""
    done = finishes(f"""
        from tunnelwall.middlebox.classifiers.quic import decrypt_initial
        print(decrypt_initial(bytes.fromhex("{crypto_length_0_initial().hex()}")).hex())
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""         # a standard reading finds no CRYPTO data at offset 0


def test_crypto_length_0_read_the_standard_way_and_the_gfws_way():
    packet = crypto_length_0_initial()
    assert decrypt_initial(packet) == b""
    assert decrypt_initial(packet, first_frame_only=True) == HELLO


def test_zero_length_and_repeated_crypto_frames_reassemble():
    frames = crypto_frame(b"", 0) + crypto_frame(HELLO[:10], 0) + crypto_frame(b"", 10) + crypto_frame(HELLO[10:], 10)
    assert crypto_stream(frames) == HELLO
    assert crypto_stream(crypto_frame(b"", 0) * 500) == b""


def test_ack_with_a_huge_range_count_ends_at_once():
    ack = b"\x02" + varint(5) + varint(0) + b"\xbf\xff\xff\xff" + varint(0)   # 2^30 - 1 ranges claimed
    assert crypto_stream(ack + crypto_frame(HELLO)) == b""


def test_first_crypto_frame_reads_only_a_leading_crypto_frame():
    assert first_crypto_frame(crypto_frame(HELLO) + b"\x00" * 20) == HELLO
    assert first_crypto_frame(b"\x01" + crypto_frame(HELLO)) == b""
    assert first_crypto_frame(crypto_frame(HELLO, offset=5)) == b""
    assert first_crypto_frame(b"\x06") == b""


def test_budget_trips_a_runaway_loop_only_when_metered():
    def runaway():
        while True:
            budget.spend(1, "test loop")
    budget.start(1000)
    with pytest.raises(budget.BudgetExceeded, match="test loop"):
        runaway()
    budget.stop()
    for _ in range(3 * budget.UNITS_PER_PACKET):     # unmetered: spending never trips
        budget.spend(1, "test")
