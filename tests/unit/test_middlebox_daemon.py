"""The live middlebox's handling of each frame (middlebox/daemon.py), with
its switch port and controller channel replaced by socket pairs: what it
sends back to the switch, byte for byte, and what it tells the controller.

Here: the conntrack offload (flows.offload: conntrack), whose VLAN tag on
a frame tells the switch to let the rest of the flow by."""

from __future__ import annotations

import json
import socket

import pytest
from test_engine import C, frame

from tunnelwall.middlebox import controllink, daemon
from tunnelwall.middlebox import port as port_module

S = "198.18.0.10"
TAG = b"\x81\x00" + (4093).to_bytes(2, "big")
GET = b"GET / HTTP/1.1\r\nHost: www.example.org\r\n\r\n"


@pytest.fixture
def middlebox(monkeypatch):
    made = []

    def make(placement: str, offload: str = "conntrack"):
        port, switch = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        ctrl, controller = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        switch.setblocking(False)
        made.extend((port, switch, ctrl, controller))
        monkeypatch.setattr(daemon, "open_port", lambda iface: port)
        monkeypatch.setattr(daemon, "connect_controller", lambda path, timeout=30.0: ctrl)
        mb = daemon.Middlebox({"iface": "eth0", "profile": "gfw-2025", "placement": placement, "socket": "-",
                               "offload": offload, "bypass_vlan": 4093 if offload == "conntrack" else None})
        return mb, switch, controller
    yield make
    for s in made:
        s.close()


def sent(switch) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(switch.recv(65535))
        except BlockingIOError:
            return out


def verdicts(controller) -> list[dict]:
    controller.setblocking(False)
    data = b""
    while True:
        try:
            data += controller.recv(65536)
        except BlockingIOError:
            break
    return [m for m in map(json.loads, data.decode().splitlines()) if m["type"] == "verdict"]


def handshake_and_request(cport: int) -> list[bytes]:
    return [frame(C, S, cport, 80, proto="tcp", flags=0x02), frame(S, C, 80, cport, proto="tcp", flags=0x12),
            frame(C, S, cport, 80, proto="tcp", flags=0x10), frame(C, S, cport, 80, GET, proto="tcp"),
            frame(S, C, 80, cport, b"HTTP/1.1 200 OK\r\n\r\n", proto="tcp")]


def test_inline_the_verdict_frame_and_the_rest_of_an_allowed_flow_go_back_tagged(middlebox):
    mb, switch, controller = middlebox("inline")
    frames = handshake_and_request(41001)
    for f in frames:
        mb.on_frame(f)
    back = sent(switch)
    # The handshake as it came, but for the server's SYN/ACK, which the
    # switch copied and sent on itself; from the request (the verdict) on,
    # with the tag.
    assert back == [frames[0], frames[2]] + [f[:12] + TAG + f[12:] for f in frames[3:]]
    assert mb.port.load["copies"] == 1
    mb.link.flush()
    (v,) = verdicts(controller)
    assert v["verdict"]["action"] == "allow" and v["install"] is False
    assert mb.port.load["tagged"] == 2


def test_tap_sends_a_tagged_copy_only_of_allowed_flows(middlebox):
    mb, switch, _controller = middlebox("tap")
    frames = handshake_and_request(41002)
    for f in frames:
        mb.on_frame(f)
    assert sent(switch) == [f[:12] + TAG + f[12:] for f in frames[3:]]
    # A blocked flow (WireGuard under gfw-2025): nothing goes back for it.
    mb.on_frame(frame(C, S, 41003, 51820, b"\x01\x00\x00\x00" + bytes(144)))
    assert sent(switch) == []


def test_a_frame_that_comes_with_the_tag_is_never_passed_on(middlebox):
    mb, switch, _controller = middlebox("inline")
    for f in handshake_and_request(41004)[:3]:
        mb.on_frame(f)
    sent(switch)
    request = frame(C, S, 41004, 80, GET, proto="tcp")
    mb.on_frame(request[:12] + TAG + request[12:])
    assert sent(switch) == [] and mb.port.load["forged_tags"] == 1


def test_rule_offload_sends_frames_back_as_they_came(middlebox):
    mb, switch, controller = middlebox("inline", offload="rules")
    frames = handshake_and_request(41005)
    for f in frames:
        mb.on_frame(f)
    assert sent(switch) == frames[:1] + frames[2:] and mb.port.load["tagged"] == 0      # not the SYN/ACK: a copy
    mb.link.flush()
    (v,) = verdicts(controller)
    assert v["install"] is False                          # deferred: the rule comes after offload_after packets


def test_verdicts_that_only_need_logging_go_together_and_never_overtake_a_blocking_one(middlebox):
    """An allowed flow's verdict (no rule now) waits for others, at most
    LOG_BATCH_SECONDS (the run loop flushes it); any other message sends the
    batch first, so the controller sees them in the order they were reached."""
    mb, _switch, controller = middlebox("inline", offload="rules")
    for cport in (41006, 41007):
        for f in handshake_and_request(cport):
            mb.on_frame(f)
    assert verdicts(controller) == [] and len(mb.link.batch) == 2
    assert mb.link.batch_due <= __import__("time").monotonic() + controllink.LOG_BATCH_SECONDS
    mb.on_frame(frame(C, S, 41008, 51820, b"\x01\x00\x00\x00" + bytes(144)))     # WireGuard: drop
    got = [(v["verdict"]["flow"]["client_port"], v["verdict"]["action"]) for v in verdicts(controller)]
    assert got == [(41006, "allow"), (41007, "allow"), (41008, "drop")] and mb.link.batch == []


def test_a_synack_is_a_copy_only_when_the_switch_surely_copied_it():
    """packet.plain_synack says "copied" only for what the switch's SYN/ACK
    rule surely matched (controller/pipeline.py): a held frame taken for a
    copy would be lost. An IPv6 SYN/ACK behind an extension header may be
    copied too; saying "no" there only re-sends a duplicate."""
    from tunnelwall.middlebox.packet import plain_synack
    synack = frame(S, C, 80, 41010, proto="tcp", flags=0x12)
    assert plain_synack(synack)
    assert plain_synack(synack[:12] + TAG + synack[12:])                 # one 802.1Q tag: Open vSwitch parses it
    assert plain_synack(frame(S, C, 80, 41010, b"data", proto="tcp", flags=0x12))
    tcp = synack[34:]
    v6 = synack[:12] + b"\x86\xdd" + b"\x60\x00\x00\x00" + len(tcp).to_bytes(2, "big") + b"\x06\x40" + bytes(32) + tcp
    assert plain_synack(v6)
    assert not plain_synack(v6[:20] + b"\x00" + v6[21:])                  # hop-by-hop first: says no (safe)
    assert not plain_synack(v6[:-1])
    for flags in (0x02, 0x10, 0x18, 0x11, 0x04):                         # SYN, ACK, data, FIN, RST
        assert not plain_synack(frame(S, C, 80, 41010, proto="tcp", flags=flags))
    assert not plain_synack(frame(S, C, 80, 41010, proto="udp"))
    assert not plain_synack(synack[:-1])                                 # cut off: the switch sees no flags
    more = bytearray(synack)
    more[20] |= 0x20                                                     # more fragments: held, as fragments are
    assert not plain_synack(bytes(more))
    offset = bytearray(synack)
    offset[21] = 1                                                       # a later fragment
    assert not plain_synack(bytes(offset))
    assert not plain_synack(synack[:12] + TAG + TAG + synack[12:])       # two tags: not parsed that far
    short_offset = bytearray(synack)
    short_offset[14 + 20 + 12] = 0x40                                    # TCP data offset 16 bytes: invalid
    assert not plain_synack(bytes(short_offset))


def test_inline_a_copied_synack_is_not_sent_back_even_when_shed(middlebox, monkeypatch):
    mb, switch, _controller = middlebox("inline")
    monkeypatch.setattr(mb.profile, "overload", "open")
    synack = frame(S, C, 80, 41011, proto="tcp", flags=0x12)
    request = frame(C, S, 41011, 80, GET, proto="tcp")
    mb.port.shed(synack, mb.profile.overload)
    mb.port.shed(request, mb.profile.overload)
    assert sent(switch) == [request] and mb.port.load["shed"] == 2


@pytest.mark.parametrize("in_c", [True, False])
def test_draining_the_port_reads_every_queued_frame_once_in_c_or_with_recvmsg(middlebox, monkeypatch, in_c):
    """drain_port reads what waits on the port (one recvmmsg in C, or one
    recvmsg per frame without the C module), measures each frame's wait from
    the kernel's timestamp and handles the frames in order."""
    if in_c and port_module._receive is None:
        pytest.skip("the C module is not built here")
    if not in_c:
        monkeypatch.setattr(port_module, "_receive", None)
    mb, switch, _controller = middlebox("inline", offload="rules")
    frames = handshake_and_request(41012)
    for f in frames:
        switch.send(f)
    mb.drain_port()
    assert sent(switch) == frames[:1] + frames[2:]           # as on_frame sends them (the SYN/ACK is a copy)
    assert mb.port.load["frames"] == len(frames) and mb.port.load["shed"] == 0
    assert 0.0 < mb.port.window_lag < 5.0                          # each frame's kernel timestamp was read


def test_a_classifier_that_raises_is_counted_and_the_frame_still_goes_on(middlebox, monkeypatch):
    """Issue 34: a parse that overruns its budget (or raises) on a packet is
    an "unparsed" outcome: the frame is forwarded as any other, the count
    reaches the controller in the load report (/api/health)."""
    from tunnelwall.middlebox.classifiers.quic import QUIC

    def broken(self, state, flow, pkt, direction):
        raise IndexError("a parse bug")
    monkeypatch.setattr(QUIC, "update", broken)
    mb, switch, controller = middlebox("inline", offload="none")
    datagram = frame(C, S, 50000, 443, b"\xc3" + b"\x00" * 60)
    mb.on_frame(datagram)
    assert sent(switch) == [datagram] and mb.errors == 0
    mb.report_load(0.0)
    controller.setblocking(False)
    loads = [m for m in map(json.loads, controller.recv(65536).decode().splitlines()) if m["type"] == "load"]
    assert loads[-1]["unparsed"] == 1


def test_a_profile_reload_gives_the_watchdog_a_deadline_not_a_stall(middlebox, tmp_path, monkeypatch):
    """Loading a profile is work the loop does on purpose: the heartbeat is
    written RELOAD_GRACE ahead, so a slow load on a busy machine is not taken
    for a stuck middlebox (which the supervisor would restart with the run's
    first profile)."""
    from tunnelwall.base import heartbeat
    mb, _switch, controller = middlebox("inline")
    mb.beat = heartbeat.Heartbeat(tmp_path / "beat")
    slow = daemon.profiles.load

    def load(name):
        assert heartbeat.last_beat(tmp_path / "beat") > __import__("time").monotonic() + daemon.RELOAD_GRACE - 5
        return slow(name)
    monkeypatch.setattr(daemon.profiles, "load", load)
    mb.reload("log-only")
    assert mb.profile.name == "log-only"
    assert heartbeat.stalled_for(tmp_path / "beat") == 0.0
