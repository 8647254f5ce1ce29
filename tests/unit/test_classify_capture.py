"""``classify`` on anyone's capture: --inside, --set, the frame number of the
deciding packet, and the warnings (a last record cut short, direction rules
that found no flow crossing the border)."""

import json
import os

import pytest
from builders import client_hello
from test_engine import frame

from tunnelwall.base.quic import initial_packet
from tunnelwall.cli.main import main
from tunnelwall.middlebox import profiles
from tunnelwall.middlebox.offline import classify_pcap
from tunnelwall.middlebox.pcap import PcapngWriter, Writer, frames

WG = b"\x01\x00\x00\x00" + bytes(144)          # a WireGuard handshake initiation's layout


def quic_initial(sni: str) -> bytes:
    hello = client_hello(sni)
    return initial_packet(hello[5:], bytes.fromhex("8394c8f03e515708"))


def write(path, records, ng=False):
    with (PcapngWriter(path) if ng else Writer(path)) as w:
        for i, f in enumerate(records):
            w.write(1700000000 + i * 0.01, f)
    return path


def tls_flow(client, server, cport, sname):
    """SYN, SYN/ACK, ACK, ClientHello of one TCP connection."""
    return [frame(client, server, cport, 443, proto="tcp", flags=0x02),
            frame(server, client, 443, cport, proto="tcp", flags=0x12),
            frame(client, server, cport, 443, proto="tcp", flags=0x10),
            frame(client, server, cport, 443, client_hello(sname), proto="tcp")]


@pytest.mark.parametrize("ng", [False, True], ids=["pcap", "pcapng"])
def test_frame_number_beside_packet_index(tmp_path, ng):
    """Two interleaved connections: the ClientHello that decides the second
    is its 4th packet and the file's 9th frame (Wireshark counts from 1)."""
    a = tls_flow("10.0.0.11", "198.18.0.20", 40000, "www.example.org")
    b = tls_flow("10.0.0.12", "198.18.0.21", 40001, "www.twitter.com")
    records = [frame("10.0.0.13", "198.18.0.22", 40002, 51820, WG)] + [x for pair in zip(a, b) for x in pair]
    path = write(tmp_path / ("c.pcapng" if ng else "c.pcap"), records, ng)
    rows = {r.flow.id.client: r.as_dict() for r in classify_pcap(path, profiles.load("gfw-2025")).flows}
    assert (rows["10.0.0.13"]["rule"], rows["10.0.0.13"]["packet_index"], rows["10.0.0.13"]["frame"]) == ("wireguard", 1, 1)
    assert (rows["10.0.0.12"]["rule"], rows["10.0.0.12"]["packet_index"], rows["10.0.0.12"]["frame"]) == ("sni-blocklist", 4, 9)
    assert rows["10.0.0.11"]["decided"] is False and rows["10.0.0.11"]["frame"] is None


def test_table_shows_the_frame_column(tmp_path, capsys):
    path = write(tmp_path / "c.pcap", [frame("10.0.0.13", "198.18.0.22", 40002, 51820, b"x")] * 2
                 + [frame("10.0.0.13", "198.18.0.22", 40003, 51820, WG)])
    assert main(["classify", str(path), "--profile", "gfw-2025"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    assert header[:8] == ["FLOW", "PROTOCOL", "RULE", "ACTION", "PKT", "FRAME", "MS", "PACKETS"]
    row = next(line for line in lines if "40003" in line)
    assert "wireguard" in row and row.split()[7:9] == ["1", "3"]        # pkt 1 of the flow, frame 3 of the file


@pytest.mark.parametrize("ng", [False, True], ids=["pcap", "pcapng"])
def test_truncated_last_record_is_warned(tmp_path, capsys, ng):
    records = [frame("10.0.0.13", "198.18.0.22", 40000 + i, 51820, WG) for i in range(3)]
    whole = write(tmp_path / ("w.pcapng" if ng else "w.pcap"), records, ng)
    assert classify_pcap(whole, profiles.load("gfw-2025")).warnings == []
    cut = tmp_path / ("cut.pcapng" if ng else "cut.pcap")
    cut.write_bytes(whole.read_bytes()[:-10])
    result = classify_pcap(cut, profiles.load("gfw-2025"))
    assert len(result.flows) == 2
    (warning,) = result.warnings
    assert warning.startswith(f"{cut}: ") and "cut short" in warning
    assert ("block after frame 2" if ng else "frame 3 is cut short") in warning
    said = []
    assert len(list(frames(cut, on_truncated=said.append))) == 2 and len(said) == 1
    assert main(["classify", str(cut)]) == 0
    assert "tunnelwall: warning: " in capsys.readouterr().err


def test_cut_in_a_record_header_is_warned(tmp_path):
    whole = write(tmp_path / "w.pcap", [frame("10.0.0.13", "198.18.0.22", 40000, 51820, WG)])
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole.read_bytes() + b"\x00" * 7)
    (warning,) = classify_pcap(cut, profiles.load("gfw-2025")).warnings
    assert "frame 2 is cut short in its record header (7 of 16 bytes)" in warning


QUIC_CLIENT, QUIC_SERVER = "10.66.0.1", "10.66.0.2"


def quic_capture(tmp_path, client=QUIC_CLIENT, server=QUIC_SERVER):
    return write(tmp_path / "q.pcap", [frame(client, server, 50000, 443, quic_initial("www.youtube.com"))])


def test_both_ends_inside_warns_and_inside_decides(tmp_path, capsys):
    """The issue's capture: a QUIC Initial to www.youtube.com between two
    addresses of 10.0.0.0/8, which gfw-2025 counts as inside: quic-sni is a
    direction rule and never fires. --inside names the capture's own side."""
    path = quic_capture(tmp_path)
    assert main(["classify", str(path), "--profile", "gfw-2025", "--format", "json"]) == 0
    out = capsys.readouterr()
    flow, summary = (json.loads(line) for line in out.out.splitlines())
    assert flow["protocol"] == "quic" and flow["rule"] is None
    assert "every flow stayed on one side of the border" in out.err and "quic-sni" in out.err
    assert summary["warnings"] and "--inside" in summary["warnings"][0]
    assert main(["classify", str(path), "--profile", "gfw-2025", "--format", "json", "--inside", "10.66.0.1/32"]) == 0
    out = capsys.readouterr()
    flow, summary = (json.loads(line) for line in out.out.splitlines())
    assert (flow["rule"], flow["action"], flow["frame"]) == ("quic-sni", "drop", 1)
    assert summary["warnings"] == [] and "warning" not in out.err


def test_no_client_inside_warns(tmp_path):
    path = quic_capture(tmp_path, client="192.0.2.1", server="198.51.100.1")
    (warning,) = classify_pcap(path, profiles.load("gfw-2025")).warnings
    assert "no flow was started from inside (10.0.0.0/8, fd00::/8)" in warning
    assert classify_pcap(path, profiles.load("gfw-2022")).warnings == []       # no direction rule there


def test_inside_replaces_the_profile_list(tmp_path, capsys):
    """--inside replaces, not adds: with 192.0.2.0/24 inside, the 10.66.0.1
    client is outside, so nothing leaves the country."""
    path = quic_capture(tmp_path)
    assert main(["classify", str(path), "--format", "json", "--inside", "192.0.2.0/24, 2001:db8::/32"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out.splitlines()[0])["rule"] is None
    assert "no flow was started from inside (192.0.2.0/24, 2001:db8::/32)" in out.err


@pytest.mark.parametrize("value", ["10.0.0.300/8", "", "quic"])
def test_bad_inside_is_one_line(tmp_path, capsys, value):
    path = quic_capture(tmp_path)
    assert main(["classify", str(path), "--inside", value]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tunnelwall: --inside") and err.count("\n") == 1


def test_set_overrides_a_rule_as_verify_does(tmp_path, capsys):
    path = write(tmp_path / "t.pcap", tls_flow("10.0.0.11", "198.18.0.20", 40000, "www.twitter.com"))
    assert main(["classify", str(path), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["action"] == "reset"
    assert main(["classify", str(path), "--format", "json", "--set", "sni-blocklist.action=drop",
                 "--set", "sni-blocklist.residual=0"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["action"] == "drop"
    assert main(["classify", str(path), "--set", "nosuchrule.action=drop"]) == 2
    err = capsys.readouterr().err
    assert "has no rule 'nosuchrule'" in err and err.count("\n") == 1


def test_random_bytes_capture_never_traceback(tmp_path, capsys):
    path = tmp_path / "junk.pcap"
    path.write_bytes(os.urandom(100))
    assert main(["classify", str(path)]) != 0
    assert capsys.readouterr().err.startswith("tunnelwall: ")
