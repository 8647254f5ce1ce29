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

from tunnelwall.middlebox import daemon

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
    # The handshake as it came; from the request (the verdict) on, with the tag.
    assert back == frames[:3] + [f[:12] + TAG + f[12:] for f in frames[3:]]
    mb.flush()
    (v,) = verdicts(controller)
    assert v["verdict"]["action"] == "allow" and v["install"] is False
    assert mb.load["tagged"] == 2


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
    assert sent(switch) == [] and mb.load["forged_tags"] == 1


def test_rule_offload_sends_frames_back_as_they_came(middlebox):
    mb, switch, controller = middlebox("inline", offload="rules")
    frames = handshake_and_request(41005)
    for f in frames:
        mb.on_frame(f)
    assert sent(switch) == frames and mb.load["tagged"] == 0
    mb.flush()
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
    assert verdicts(controller) == [] and len(mb.batch) == 2
    assert mb.batch_due <= __import__("time").monotonic() + daemon.LOG_BATCH_SECONDS
    mb.on_frame(frame(C, S, 41008, 51820, b"\x01\x00\x00\x00" + bytes(144)))     # WireGuard: drop
    got = [(v["verdict"]["flow"]["client_port"], v["verdict"]["action"]) for v in verdicts(controller)]
    assert got == [(41006, "allow"), (41007, "allow"), (41008, "drop")] and mb.batch == []
