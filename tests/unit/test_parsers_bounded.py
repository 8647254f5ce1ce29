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


# -- the offline path: `tunnelwall classify` on a capture holding the datagram

def write_capture(path, payloads: list[bytes]) -> None:
    """A pcap of UDP datagrams from 10.0.0.11:50000 to 198.18.0.10:443."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from tunnelwall.middlebox.pcap import Writer
    with Writer(path) as w:
        for i, payload in enumerate(payloads):
            frame = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.0.0.11", dst="198.18.0.10") \
                / UDP(sport=50000, dport=443) / payload
            w.write(1.0 + i * 0.01, bytes(frame))


def test_classify_returns_on_a_capture_holding_the_datagram(tmp_path):
    """The issue's `classify` never returned; now it does, and gfw-2025
    blocks the datagram as the GFW did (Table 3, case 6)."""
    import json
    capture = tmp_path / "crypto-length-0.pcap"
    write_capture(capture, [crypto_length_0_initial()])
    done = subprocess.run([sys.executable, "-m", "tunnelwall", "classify", str(capture), "--profile", "gfw-2025",
                           "--format", "json"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    flow, summary = (json.loads(line) for line in done.stdout.splitlines())
    assert (flow["protocol"], flow["rule"], flow["action"], flow["packet_index"]) == ("quic", "quic-sni", "drop", 1)
    assert summary["stats"]["unparsed"] == 0 and summary["unparsed"] == []


def test_a_capture_that_trips_the_budget_names_flow_and_packet(tmp_path, monkeypatch, capsys):
    """With a budget too small for a real Initial (the default read takes
    unit per frame), the QUIC parse of the datagram trips it: one line says
    which flow and packet, no traceback, and the run goes on to the end."""
    from tunnelwall.cli.main import main
    from tunnelwall.middlebox.fidelity.quic_table3 import crypto_among_ping_padding
    capture = tmp_path / "trip.pcap"
    write_capture(capture, [crypto_among_ping_padding("google.com"), b"\x00" * 8])
    monkeypatch.setattr(budget, "UNITS_PER_PACKET", 2)
    assert main(["classify", str(capture), "--profile", "log-only"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("unparsed:")]
    assert lines == ["unparsed: udp 10.0.0.11:50000 -> 198.18.0.10:443 packet 1: classifier quic: "
                     "work budget exceeded in quic frames"]
    assert "Traceback" not in err and "2 packets, 1 flows" in err


def test_classify_returns_or_says_why_on_any_capture_file():
    """Captures with their record and block headers mutated (lengths,
    link types, byte orders, cut anywhere), pcap and pcapng: classify
    returns, or raises the one-line PcapError the CLI prints; nothing
    loops (every reader advances by a record's or block's length)."""
    import random
    import tempfile
    import time
    from pathlib import Path

    from fuzzing import frames_of, mutate, structured_input
    from tunnelwall.middlebox import profiles
    from tunnelwall.middlebox.offline import classify_pcap
    from tunnelwall.middlebox.pcap import PcapError, PcapngWriter, Writer

    rng = random.Random(34)
    profile = profiles.load("gfw-2025")
    outcomes = {"returned": 0, "refused": 0}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(150):
            path = Path(tmp) / f"{i}.cap"
            with (Writer if i % 2 else PcapngWriter)(path) as w:
                for j in range(rng.randint(1, 3)):
                    for k, frame in enumerate(frames_of(structured_input(rng))):
                        w.write(j + k * 0.001, frame)
            data = bytearray(path.read_bytes())
            for _ in range(rng.randint(1, 4)):                     # a header field, or anywhere
                at = rng.choice([rng.randrange(len(data)), rng.randrange(min(len(data), 64))])
                data[at] = rng.randrange(256)
            path.write_bytes(mutate(rng, bytes(data), rounds=1) if rng.random() < 0.3 else bytes(data))
            t0 = time.process_time()
            try:
                classify_pcap(path, profile, on_flow=lambda report: None)
                outcomes["returned"] += 1
            except PcapError as err:
                assert "\n" not in str(err)
                outcomes["refused"] += 1
            assert time.process_time() - t0 < 2.0, path.read_bytes()[:64].hex()
    assert outcomes["returned"] >= 50 and outcomes["refused"] >= 5, outcomes
